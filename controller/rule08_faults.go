package controller

// faultRule is rule 8: an input that becomes unknown raises sensor_fault
// (critical for a panic point and for the lock; one alert per input, and per
// panic point) and counts as its worse reading: the lock as locked, presence
// as detected (no vacancy end), the door as not opened, the staff input as
// not pressed, a panic point as not released (its panic cannot clear).
// Presence faults that arise during a visit or an inspection are held and
// announced when it ends (rule 9). Faults of roomd itself (the outbox, the
// state file, the clock) come in as Fault events and raise system_fault, so
// a fault makes roomd louder. Its transcripts: testdata/rule08_*.txt.
type faultRule struct{ hooks }

func (faultRule) input(c *Controller, ch change) {
	k := alertKey{kind: AlertSensorFault, input: ch.Input}
	if ch.Input == InputPanic {
		k.point = ch.Point
	}
	a := c.find(k)
	switch {
	case ch.Level == LevelUnknown && a == nil:
		sev := SeverityWarning
		if ch.Input == InputPanic || ch.Input == InputLock || ch.Tamper {
			sev = SeverityCritical // a tampered loop is critical whatever it is (rule 17)
		}
		c.raise(Alert{Kind: AlertSensorFault, Severity: sev, Input: ch.Input, Point: k.point, Detail: ch.Detail}, c.s.Now)
	case ch.Level != LevelUnknown && a != nil:
		c.clear(a)
	}
}

// system raises or clears the system_fault of e's source.
func (faultRule) system(c *Controller, e Fault) {
	a := c.find(alertKey{kind: AlertSystemFault, source: e.Source})
	switch {
	case e.Active && a == nil:
		c.raise(Alert{Kind: AlertSystemFault, Severity: e.Severity, Source: e.Source, Detail: e.Detail, ClearOnAck: e.ClearOnAck}, c.s.Now)
	case !e.Active && a != nil:
		c.clear(a)
	}
}

func (faultRule) settle(c *Controller) {
	for i := range c.s.Alerts {
		if a := &c.s.Alerts[i]; a.Active() && a.Kind == AlertSystemFault && a.ClearOnAck && a.Acked {
			c.clear(a)
		}
	}
}
