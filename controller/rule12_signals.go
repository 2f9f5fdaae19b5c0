package controller

// signalRule is rule 12: the outputs follow from the state, at the end of
// every step.
//
//   - in_use: on while a visit runs.
//   - warning (inside): blinks in overtime and while the lock counts as
//     engaged during a visit; after a warning, steady with as many chime
//     pulses first as the warning's number.
//   - alarm_light (door): while any critical alert is active. It shows the
//     pattern of the most urgent unacknowledged one (panic, then
//     door_locked, then faults, then time_up: ModePanic, ModeDoorLocked,
//     ModeFault, ModeTimeUp), and is steady once all are acknowledged.
//   - alarm_sounder (door): the same pattern while a critical alert is
//     unacknowledged; acknowledgement silences it, a reannouncement wakes
//     it.
//   - reassurance (inside): blinks while a panic is registered and not
//     acknowledged, steady once every panic is acknowledged ("help is
//     coming"), off when they clear.
//
// Its transcripts: testdata/rule12_*.txt.
type signalRule struct{ hooks }

// pattern returns the alarm pattern of an alert kind and its urgency
// (higher wins).
func (signalRule) pattern(k AlertKind) (Mode, int) {
	switch k {
	case AlertPanic:
		return ModePanic, 4
	case AlertDoorLocked:
		return ModeDoorLocked, 3
	case AlertTimeUp:
		return ModeTimeUp, 1
	default:
		return ModeFault, 2
	}
}

func (r signalRule) settle(c *Controller) {
	var want [OutputReassurance + 1]SetOutput
	for _, o := range Outputs {
		want[o] = SetOutput{Output: o}
	}
	if c.s.Phase.InVisit() {
		want[OutputInUse] = SetOutput{Output: OutputInUse, Mode: ModeOn}
		v := c.s.Visit
		switch {
		case c.s.Phase == PhaseOvertime || lockRule{}.engaged(c):
			want[OutputWarning] = SetOutput{Output: OutputWarning, Mode: ModeBlink}
		case v.Shown > 0:
			want[OutputWarning] = SetOutput{Output: OutputWarning, Mode: ModeOn, Pulses: uint8(min(v.Shown, 255))}
		}
	}
	critical, urgency := false, 0
	alarm := ModeOff
	panics, unackedPanic := false, false
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if !a.Active() {
			continue
		}
		if a.Kind == AlertPanic {
			panics = true
			unackedPanic = unackedPanic || !a.Acked
		}
		if a.Severity < SeverityCritical {
			continue
		}
		critical = true
		if m, u := r.pattern(a.Kind); !a.Acked && u > urgency {
			alarm, urgency = m, u
		}
	}
	switch {
	case alarm != ModeOff:
		want[OutputAlarmLight] = SetOutput{Output: OutputAlarmLight, Mode: alarm}
		want[OutputAlarmSounder] = SetOutput{Output: OutputAlarmSounder, Mode: alarm}
	case critical:
		want[OutputAlarmLight] = SetOutput{Output: OutputAlarmLight, Mode: ModeOn}
	}
	switch {
	case unackedPanic:
		want[OutputReassurance] = SetOutput{Output: OutputReassurance, Mode: ModeBlink}
	case panics:
		want[OutputReassurance] = SetOutput{Output: OutputReassurance, Mode: ModeOn}
	}
	for _, o := range Outputs {
		if c.s.Outputs[o] != want[o] {
			c.s.Outputs[o] = want[o]
			c.set(want[o])
			c.changed()
		}
	}
}
