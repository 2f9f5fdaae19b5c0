package controller

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// SnapshotVersion is the version of the Snapshot layout.
const SnapshotVersion = 1

// Visit is the running visit.
type Visit struct {
	ID        string
	StartedAt time.Time
	EndsAt    time.Time
	Max       time.Duration // the policy maximum when the visit started
	// WarningsDone is how many of the policy's warnings (largest offset
	// first) have passed for the current deadline.
	WarningsDone int
	// Shown is the number of the warning the occupants were last given
	// (0: none since the start or the last extension).
	Shown int
	// DoorOpenedAt is when the door last opened during the visit (vacancy rule).
	DoorOpenedAt time.Time
	// Armed: the vacancy rule may end the visit (door opened, nobody
	// detected inside since it closed again).
	Armed      bool
	WelfareDue time.Time
}

// Snapshot is the whole state of a controller, plain data to persist and
// restore. It is internal to roomd and not a public contract.
type Snapshot struct {
	Version int
	Now     time.Time
	Phase   Phase
	Visit   *Visit

	ServiceReason string

	Levels map[Input]Level
	Seen   map[Input]bool
	// Since is when each input reached its current level.
	Since map[Input]time.Time

	Alerts    []Alert // active alerts, in the order raised
	Seq       uint64
	NextAlert uint64

	// VacateSince is when presence started to count against vacate_timeout
	// after a visit ended; zero when no such watch runs.
	VacateSince time.Time
	// HeldFaults are presence faults that arose during a visit: they are
	// announced only when it ends (privacy rule).
	HeldFaults map[Input]string

	Outputs map[Output]SetOutput
}

// Controller is the logic of one visit room. It does no I/O and reads no
// clock; one goroutine owns it. Its zero value is not usable: see New and Restore.
type Controller struct {
	p        Policy
	warnings []time.Duration
	s        Snapshot
	out      []Action
}

// New returns a controller for a room in phase idle at time at, with the
// actions that start it: a controller_started record, every output set, and
// StateChanged. The policy must be valid.
func New(p Policy, at time.Time) (*Controller, []Action, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("controller policy %q: %w", p.Name, err)
	}
	c := &Controller{p: p, warnings: p.warningsDescending()}
	c.s = Snapshot{
		Version:    SnapshotVersion,
		Now:        at,
		Levels:     map[Input]Level{},
		Seen:       map[Input]bool{},
		Since:      map[Input]time.Time{},
		HeldFaults: map[Input]string{},
		Outputs:    map[Output]SetOutput{},
	}
	c.announce(Record{Type: EventControllerStarted})
	c.start()
	return c, c.flush(), nil
}

// Restore returns a controller that continues from snap at time at. Timers
// that fell due while roomd was down fire now, in order. A visit is never
// announced again as new: a controller_started record with Resumed set says
// that roomd restarted.
func Restore(p Policy, snap Snapshot, at time.Time) (*Controller, []Action, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("controller policy %q: %w", p.Name, err)
	}
	if snap.Version != SnapshotVersion {
		return nil, nil, fmt.Errorf("restore controller: snapshot version %d, want %d", snap.Version, SnapshotVersion)
	}
	if snap.Phase > PhaseOutOfService {
		return nil, nil, fmt.Errorf("restore controller: bad phase %d", snap.Phase)
	}
	if snap.Phase.InVisit() != (snap.Visit != nil) {
		return nil, nil, errors.New("restore controller: phase and visit disagree")
	}
	c := &Controller{p: p, warnings: p.warningsDescending(), s: snap}
	if c.s.Levels == nil {
		c.s.Levels = map[Input]Level{}
	}
	if c.s.Seen == nil {
		c.s.Seen = map[Input]bool{}
	}
	if c.s.Since == nil {
		c.s.Since = map[Input]time.Time{}
	}
	if c.s.HeldFaults == nil {
		c.s.HeldFaults = map[Input]string{}
	}
	// Outputs are set again in full: the hardware was reset to its safe state.
	c.s.Outputs = map[Output]SetOutput{}
	c.s.Alerts = slices.Clone(c.s.Alerts)
	c.advance(at)
	c.announce(Record{Type: EventControllerStarted, Resumed: true})
	c.start()
	return c, c.flush(), nil
}

func (c *Controller) start() {
	for _, o := range Outputs {
		c.s.Outputs[o] = SetOutput{Output: o, Mode: ModeOff}
		c.emit(SetOutput{Output: o, Mode: ModeOff})
	}
	c.settle()
	c.changed()
}

// Policy returns the controller's policy.
func (c *Controller) Policy() Policy { return c.p }

// Snapshot returns a copy of the whole state, to persist.
func (c *Controller) Snapshot() Snapshot {
	s := c.s
	if s.Visit != nil {
		v := *s.Visit
		s.Visit = &v
	}
	s.Levels = cloneMap(s.Levels)
	s.Seen = cloneMap(s.Seen)
	s.Since = cloneMap(s.Since)
	s.HeldFaults = cloneMap(s.HeldFaults)
	s.Outputs = cloneMap(s.Outputs)
	s.Alerts = slices.Clone(s.Alerts)
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Now returns the time of the latest event stepped.
func (c *Controller) Now() time.Time { return c.s.Now }

// Step applies one event and returns the actions it causes, in order. Timers
// that fell due before the event's time fire first, each at its own instant.
func (c *Controller) Step(ev Event) []Action {
	at := ev.when()
	c.advance(at)
	switch e := ev.(type) {
	case InputChanged:
		c.input(e)
	case Command:
		c.command(e)
	case Fault:
		c.fault(e)
	case Tick:
	}
	c.settle()
	return c.flush()
}

// NextDeadline returns the next instant at which time alone changes
// something, and false if there is none. The driver arms one timer for it
// and sends a Tick when it comes.
func (c *Controller) NextDeadline() (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if v := c.s.Visit; v != nil {
		if c.s.Phase == PhaseInVisit {
			if v.WarningsDone < len(c.warnings) {
				consider(v.EndsAt.Add(-c.warnings[v.WarningsDone]))
			}
			consider(v.EndsAt)
		}
		consider(v.WelfareDue)
		consider(c.vacancyAt())
	}
	consider(c.lockAlertAt())
	consider(c.vacateAt())
	for i := range c.s.Alerts {
		consider(c.s.Alerts[i].Next)
	}
	return next, !next.IsZero()
}

// advance fires every timer due up to at, each at its own instant, then sets
// the controller's time to at.
func (c *Controller) advance(at time.Time) {
	if at.Before(c.s.Now) {
		at = c.s.Now
	}
	for {
		d, ok := c.NextDeadline()
		if !ok || d.After(at) {
			break
		}
		if d.Before(c.s.Now) {
			d = c.s.Now
		}
		c.s.Now = d
		c.fire()
	}
	c.s.Now = at
}

// fire handles every timer due at c.s.Now.
func (c *Controller) fire() {
	now := c.s.Now
	if v := c.s.Visit; v != nil {
		for c.s.Phase == PhaseInVisit && v.WarningsDone < len(c.warnings) && !v.EndsAt.Add(-c.warnings[v.WarningsDone]).After(now) {
			v.WarningsDone++
			v.Shown = v.WarningsDone
			c.announce(Record{Type: EventVisitWarning, VisitID: v.ID, Remaining: v.EndsAt.Sub(now), Warning: v.WarningsDone})
		}
		if c.s.Phase == PhaseInVisit && !v.EndsAt.After(now) {
			c.s.Phase = PhaseOvertime
			c.raise(Alert{Kind: AlertTimeUp, Severity: SeverityWarning, Next: now.Add(c.p.EscalateAfter)})
		}
		if !v.WelfareDue.IsZero() && !v.WelfareDue.After(now) {
			v.WelfareDue = v.WelfareDue.Add(c.p.WelfareCheckEvery)
			if c.find(AlertWelfareCheck, 0, "") == nil {
				c.raise(Alert{Kind: AlertWelfareCheck, Severity: SeverityWarning})
			}
		}
		if t := c.vacancyAt(); !t.IsZero() && !t.After(now) {
			c.endVisit(EndVacated)
		}
	}
	if t := c.lockAlertAt(); !t.IsZero() && !t.After(now) {
		c.raise(Alert{Kind: AlertDoorLocked, Severity: SeverityCritical})
	}
	if t := c.vacateAt(); !t.IsZero() && !t.After(now) {
		c.s.VacateSince = time.Time{}
		c.raise(Alert{Kind: AlertNotVacated, Severity: SeverityWarning})
	}
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if a.Next.IsZero() || a.Next.After(now) {
			continue
		}
		c.timeUpTimer(a)
	}
}

// timeUpTimer escalates, repeats or reannounces a time_up alert whose timer came.
func (c *Controller) timeUpTimer(a *Alert) {
	now := c.s.Now
	reason := "repeat"
	switch {
	case a.Acked:
		a.Acked = false
		a.AckedAt = time.Time{}
		reason = "reannounce"
	case a.Severity < SeverityCritical:
		a.Severity = SeverityCritical
		reason = "escalated"
	}
	a.Announcements++
	if a.Severity < SeverityCritical {
		a.Next = now.Add(c.p.EscalateAfter)
	} else {
		a.Next = now.Add(c.p.RepeatEvery)
	}
	cp := *a
	c.announce(Record{Type: EventAlertEscalated, Alert: &cp, Reason: reason})
}

// lockRuleApplies reports whether a bolted door is an alarm now.
func (c *Controller) lockRuleApplies() bool {
	return c.s.Phase.InVisit() || c.p.LockScope == LockAlways
}

// lockEngaged reports whether the lock counts as engaged: locked, or unknown
// (the worse reading) while the rule applies.
func (c *Controller) lockEngaged() bool {
	l := c.s.Levels[InputLock]
	return l == LevelActive || (l == LevelUnknown && c.s.Seen[InputLock])
}

// lockAlertAt is when door_locked is due, or zero.
func (c *Controller) lockAlertAt() time.Time {
	if !c.lockRuleApplies() || !c.lockEngaged() || c.find(AlertDoorLocked, 0, "") != nil {
		return time.Time{}
	}
	since := c.s.Since[InputLock]
	if v := c.s.Visit; v != nil && v.StartedAt.After(since) {
		since = v.StartedAt
	}
	return since.Add(c.p.LockGrace)
}

// present reports whether presence counts as detected: detected, unknown or unread.
func (c *Controller) present() bool {
	return c.s.Levels[InputPresence] != LevelInactive
}

// vacancyAt is when the vacancy rule ends the visit, or zero.
func (c *Controller) vacancyAt() time.Time {
	v := c.s.Visit
	if v == nil || !c.p.EndOnVacancy || !v.Armed || c.present() {
		return time.Time{}
	}
	from := c.s.Since[InputPresence]
	if v.DoorOpenedAt.After(from) {
		from = v.DoorOpenedAt
	}
	return from.Add(c.p.VacancyHold)
}

// vacateAt is when not_vacated is due, or zero.
func (c *Controller) vacateAt() time.Time {
	if c.s.VacateSince.IsZero() || c.s.Visit != nil {
		return time.Time{}
	}
	return c.s.VacateSince.Add(c.p.VacateTimeout)
}

func (c *Controller) input(e InputChanged) {
	in := e.Input
	if in < InputDoor || in > InputStaff || e.Level > LevelActive {
		return
	}
	prev, seen := c.s.Levels[in], c.s.Seen[in]
	if seen && prev == e.Level {
		return
	}
	c.s.Levels[in] = e.Level
	c.s.Seen[in] = true
	c.s.Since[in] = c.s.Now
	inVisit := c.s.Phase.InVisit()

	if in == InputPresence && inVisit {
		// Privacy: nothing leaves the controller because presence changed
		// during a visit. Faults are held until the visit ends; the vacancy
		// rule reads the level through NextDeadline.
		if e.Level == LevelUnknown {
			c.s.HeldFaults[in] = e.Detail
		} else {
			delete(c.s.HeldFaults, in)
			if e.Level == LevelActive && c.s.Levels[InputDoor] == LevelInactive {
				c.s.Visit.Armed = false // somebody is still inside after the door closed
			}
		}
		return
	}

	// Sensor faults.
	if e.Level == LevelUnknown {
		sev := SeverityWarning
		if in == InputPanic || in == InputLock {
			sev = SeverityCritical
		}
		if c.find(AlertSensorFault, in, "") == nil {
			c.raise(Alert{Kind: AlertSensorFault, Severity: sev, Input: in, Detail: e.Detail})
		}
	} else if a := c.find(AlertSensorFault, in, ""); a != nil {
		c.clear(a)
	}

	switch in {
	case InputDoor:
		if e.Level == LevelUnknown || !seen {
			break
		}
		v := c.s.Visit
		if e.Level == LevelActive {
			c.announce(Record{Type: EventDoorOpened})
			if v != nil {
				v.DoorOpenedAt = c.s.Now
				v.Armed = true
			}
		} else {
			c.announce(Record{Type: EventDoorClosed})
			if v != nil && c.s.Levels[InputPresence] != LevelInactive {
				v.Armed = false // the door closed on somebody still inside
			}
		}
	case InputLock:
		if e.Level == LevelUnknown || !seen {
			break
		}
		if e.Level == LevelActive {
			c.announce(Record{Type: EventLockEngaged})
		} else {
			c.announce(Record{Type: EventLockReleased})
		}
	case InputPresence:
		if e.Level == LevelInactive {
			c.s.VacateSince = time.Time{}
			if a := c.find(AlertNotVacated, 0, ""); a != nil {
				c.clear(a)
			}
		}
	case InputPanic:
		if e.Level == LevelActive && c.find(AlertPanic, 0, "") == nil {
			c.raise(Alert{Kind: AlertPanic, Severity: SeverityCritical})
		}
	case InputStaff:
		if e.Level != LevelActive {
			break
		}
		if a := c.find(AlertPanic, 0, ""); a != nil && c.s.Levels[InputPanic] != LevelActive {
			a.Reset = true
		}
		if v := c.s.Visit; v != nil && c.p.WelfareCheckEvery > 0 {
			c.welfareDone()
		}
	}
	c.changed()
}

// welfareDone records a welfare check: the alert clears and the next one is
// due a full interval from now.
func (c *Controller) welfareDone() {
	v := c.s.Visit
	v.WelfareDue = c.s.Now.Add(c.p.WelfareCheckEvery)
	c.announce(Record{Type: EventWelfareChecked, VisitID: v.ID})
	if a := c.find(AlertWelfareCheck, 0, ""); a != nil {
		c.clear(a)
	}
}

func (c *Controller) fault(e Fault) {
	a := c.find(AlertSystemFault, 0, e.Source)
	switch {
	case e.Active && a == nil:
		c.raise(Alert{Kind: AlertSystemFault, Severity: e.Severity, Source: e.Source, Detail: e.Detail, ClearOnAck: e.ClearOnAck})
	case !e.Active && a != nil:
		c.clear(a)
	}
}

func (c *Controller) command(e Command) {
	reply := func(code Code, format string, args ...any) {
		c.emit(Reply{RequestID: e.RequestID, Action: e.Action, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	now := c.s.Now
	switch e.Action {
	case ActionGetState:
		reply(CodeOK, "")
	case ActionStartVisit:
		switch {
		case c.s.Phase == PhaseOutOfService:
			reply(CodeOutOfService, "room is out of service: %s", c.s.ServiceReason)
		case c.s.Phase.InVisit():
			reply(CodeVisitInProgress, "a visit is already running")
		case !ValidVisitID(e.VisitID):
			reply(CodeInvalidVisitID, "visit id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		case e.Duration <= 0:
			reply(CodeInvalidDuration, "duration must be positive, got %s", e.Duration)
		case e.Duration > c.p.MaxDuration:
			reply(CodeInvalidDuration, "duration %s is above the policy maximum %s", e.Duration, c.p.MaxDuration)
		default:
			v := &Visit{ID: e.VisitID, StartedAt: now, EndsAt: now.Add(e.Duration), Max: c.p.MaxDuration}
			if c.p.WelfareCheckEvery > 0 {
				v.WelfareDue = now.Add(c.p.WelfareCheckEvery)
			}
			c.s.Visit = v
			c.s.Phase = PhaseInVisit
			c.s.VacateSince = time.Time{}
			if a := c.find(AlertNotVacated, 0, ""); a != nil {
				c.clear(a)
			}
			c.announce(Record{Type: EventVisitStarted, VisitID: v.ID, EndsAt: v.EndsAt, Duration: e.Duration})
			c.passedWarnings()
			c.changed()
			reply(CodeOK, "")
		}
	case ActionExtendVisit:
		v := c.s.Visit
		switch {
		case v == nil:
			reply(CodeNoVisit, "no visit is running")
		case c.p.Extension == ExtensionForbidden:
			reply(CodeExtensionForbidden, "the policy %q forbids extensions", c.p.Name)
		case e.Duration <= 0:
			reply(CodeInvalidDuration, "extension must be positive, got %s", e.Duration)
		case v.EndsAt.Add(e.Duration).Sub(v.StartedAt) > v.Max:
			reply(CodeExceedsMaximum, "extension by %s would make the visit %s, above the maximum %s",
				e.Duration, v.EndsAt.Add(e.Duration).Sub(v.StartedAt), v.Max)
		default:
			v.EndsAt = v.EndsAt.Add(e.Duration)
			c.announce(Record{Type: EventVisitExtended, VisitID: v.ID, EndsAt: v.EndsAt, Duration: e.Duration})
			if v.EndsAt.After(now) && c.s.Phase == PhaseOvertime {
				c.s.Phase = PhaseInVisit
				if a := c.find(AlertTimeUp, 0, ""); a != nil {
					c.clear(a)
				}
			}
			v.WarningsDone, v.Shown = 0, 0
			c.passedWarnings()
			c.changed()
			reply(CodeOK, "")
		}
	case ActionEndVisit:
		if c.s.Visit == nil {
			reply(CodeNoVisit, "no visit is running")
			return
		}
		c.endVisit(EndCommand)
		reply(CodeOK, "")
	case ActionAckAlert:
		a := c.findID(e.AlertID)
		if a == nil {
			reply(CodeUnknownAlert, "no active alert %q", e.AlertID)
			return
		}
		if !a.Acked {
			a.Acked = true
			a.AckedAt = now
			if a.Kind == AlertTimeUp {
				a.Next = now.Add(c.p.ReannounceAfter)
			}
			cp := *a
			c.announce(Record{Type: EventAlertAcked, Alert: &cp})
			if a.Kind == AlertWelfareCheck {
				c.welfareDone()
			}
			c.changed()
		}
		reply(CodeOK, "")
	case ActionSetService:
		switch {
		case !e.InService && c.s.Phase.InVisit():
			reply(CodeVisitInProgress, "a visit is running; end it before taking the room out of service")
		case !e.InService:
			changed := c.s.Phase != PhaseOutOfService || c.s.ServiceReason != e.Reason
			c.s.Phase = PhaseOutOfService
			c.s.ServiceReason = e.Reason
			if changed {
				c.announce(Record{Type: EventServiceChanged, InService: false, Reason: e.Reason})
				c.changed()
			}
			reply(CodeOK, "")
		default:
			if c.s.Phase == PhaseOutOfService {
				c.s.Phase = PhaseIdle
				c.s.ServiceReason = ""
				c.announce(Record{Type: EventServiceChanged, InService: true, Reason: e.Reason})
				c.changed()
			}
			reply(CodeOK, "")
		}
	default:
		reply(CodeBadRequest, "unknown action %d", e.Action)
	}
}

// passedWarnings marks as done the warnings whose instant is already past
// for the current deadline, without announcing them, so that a visit started
// or extended late does not fire a burst of stale warnings.
func (c *Controller) passedWarnings() {
	v := c.s.Visit
	for v.WarningsDone < len(c.warnings) && v.EndsAt.Add(-c.warnings[v.WarningsDone]).Before(c.s.Now) {
		v.WarningsDone++
	}
}

func (c *Controller) endVisit(reason VisitEndReason) {
	v := c.s.Visit
	c.s.Visit = nil
	c.s.Phase = PhaseIdle
	c.announce(Record{Type: EventVisitEnded, VisitID: v.ID, EndReason: reason})
	for _, k := range []AlertKind{AlertTimeUp, AlertWelfareCheck} {
		if a := c.find(k, 0, ""); a != nil {
			c.clear(a)
		}
	}
	if a := c.find(AlertDoorLocked, 0, ""); a != nil && !c.lockRuleApplies() {
		c.clear(a)
	}
	// Presence faults held during the visit are announced now.
	if detail, ok := c.s.HeldFaults[InputPresence]; ok {
		delete(c.s.HeldFaults, InputPresence)
		if c.s.Levels[InputPresence] == LevelUnknown && c.find(AlertSensorFault, InputPresence, "") == nil {
			c.raise(Alert{Kind: AlertSensorFault, Severity: SeverityWarning, Input: InputPresence, Detail: detail})
		}
	}
	if reason == EndCommand && c.present() {
		c.s.VacateSince = c.s.Now
	}
	c.changed()
}

// settle clears alerts whose conditions are gone and drives the outputs
// from the state.
func (c *Controller) settle() {
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if !a.Active() {
			continue
		}
		switch a.Kind {
		case AlertDoorLocked:
			if !c.lockRuleApplies() || !c.lockEngaged() {
				c.clear(a)
			}
		case AlertPanic:
			if a.Acked && (a.Reset || c.p.PanicReset == PanicResetAck) && c.s.Levels[InputPanic] != LevelActive {
				c.clear(a)
			}
		case AlertSystemFault:
			if a.ClearOnAck && a.Acked {
				c.clear(a)
			}
		}
	}
	c.s.Alerts = slices.DeleteFunc(c.s.Alerts, func(a Alert) bool { return !a.Active() })

	want := map[Output]SetOutput{
		OutputInUse:   {Output: OutputInUse},
		OutputWarning: {Output: OutputWarning},
		OutputAlarm:   {Output: OutputAlarm},
	}
	if c.s.Phase.InVisit() {
		want[OutputInUse] = SetOutput{Output: OutputInUse, Mode: ModeOn}
		v := c.s.Visit
		switch {
		case c.s.Phase == PhaseOvertime || c.lockEngaged():
			want[OutputWarning] = SetOutput{Output: OutputWarning, Mode: ModeBlink}
		case v.Shown > 0:
			want[OutputWarning] = SetOutput{Output: OutputWarning, Mode: ModeOn, Pulses: uint8(min(v.Shown, 255))}
		}
	}
	for _, a := range c.s.Alerts {
		if a.Severity < SeverityCritical {
			continue
		}
		m := ModeOn
		if !a.Acked {
			m = ModeBlink
		}
		if m > want[OutputAlarm].Mode {
			want[OutputAlarm] = SetOutput{Output: OutputAlarm, Mode: m}
		}
	}
	for _, o := range Outputs {
		if c.s.Outputs[o] != want[o] {
			c.s.Outputs[o] = want[o]
			c.emit(want[o])
		}
	}
}

func (c *Controller) raise(a Alert) {
	c.s.NextAlert++
	a.ID = fmt.Sprintf("%s-%d", a.Kind, c.s.NextAlert)
	a.RaisedAt = c.s.Now
	a.Announcements = 1
	c.s.Alerts = append(c.s.Alerts, a)
	cp := a
	c.announce(Record{Type: EventAlertRaised, Alert: &cp})
	c.changed()
}

func (c *Controller) clear(a *Alert) {
	if !a.Active() {
		return
	}
	a.ClearedAt = c.s.Now
	a.Next = time.Time{}
	cp := *a
	c.announce(Record{Type: EventAlertCleared, Alert: &cp})
	c.changed()
}

// find returns the active alert of kind k (for sensor faults, of input in;
// for system faults, of source src), or nil.
func (c *Controller) find(k AlertKind, in Input, src string) *Alert {
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if a.Active() && a.Kind == k && a.Input == in && a.Source == src {
			return a
		}
	}
	return nil
}

func (c *Controller) findID(id string) *Alert {
	for i := range c.s.Alerts {
		if a := &c.s.Alerts[i]; a.Active() && a.ID == id {
			return a
		}
	}
	return nil
}

func (c *Controller) announce(r Record) {
	c.s.Seq++
	r.Seq = c.s.Seq
	r.At = c.s.Now
	c.emit(Announce{Record: r})
	c.changed()
}

func (c *Controller) emit(a Action) { c.out = append(c.out, a) }

// changed asks for one StateChanged at the end of the step.
func (c *Controller) changed() { c.out = append(c.out, StateChanged{}) }

// flush returns the pending actions of the step in the order the driver
// carries them out: outputs and records as they came, then one StateChanged
// if anything changed, then the reply.
func (c *Controller) flush() []Action {
	out := make([]Action, 0, len(c.out))
	var tail []Action
	changed := false
	for _, a := range c.out {
		switch a.(type) {
		case StateChanged:
			changed = true
		case Reply:
			tail = append(tail, a)
		default:
			out = append(out, a)
		}
	}
	c.out = c.out[:0]
	if changed {
		out = append(out, StateChanged{})
	}
	return append(out, tail...)
}

// ValidVisitID reports whether id is a usable opaque visit id: 1 to 64
// characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'. Names do not belong in it.
func ValidVisitID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}
