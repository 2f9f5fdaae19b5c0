package controller

import (
	"fmt"
	"slices"
	"time"
)

// SnapshotVersion is the version of the Snapshot layout. Restore also reads
// version 1 (one panic line, alerts without points).
const SnapshotVersion = 2

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
	// Inspection is the id of the visit whose inspection is not done yet
	// (inspection_after_visit); empty when none is due. It survives a spell
	// out of service: the room returns to phase inspection.
	Inspection string

	// Levels, Seen and Since are per input role; the panic input is kept per
	// point in Points instead.
	Levels map[Input]Level
	Seen   map[Input]bool
	// Since is when each input reached its current level (after a restart:
	// at the latest the restart, see Restore).
	Since map[Input]time.Time
	// Points are the levels of the panic points read so far, by name.
	Points map[string]Level

	Alerts    []Alert // active alerts, in the order raised
	Seq       uint64
	NextAlert uint64

	// VacateSince is when presence started to count against vacate_timeout
	// after a visit ended; zero when no such watch runs.
	VacateSince time.Time
	// HeldFaults are presence faults that arose during a visit or an
	// inspection: they are announced only when it ends (privacy rule).
	HeldFaults map[Input]string
	// Drifts are the drifting supervised loops (rule 17), by LineKey; a
	// loop that does not drift has no entry.
	Drifts map[string]Drift `json:",omitempty"`

	Outputs map[Output]SetOutput

	// Tests is what rule 16 keeps of the room's function tests. A snapshot
	// written before rule 16 has none: its zero value reads as no test
	// yet, counted from the restart (see Restore).
	Tests FunctionTests
}

// FunctionTests is the record of function tests that rule 16 keeps.
type FunctionTests struct {
	// Since is when the room first started (its first controller); without
	// a passed full test the reminder is due function_test_every after it.
	Since time.Time
	// LastFull is when the last passed full test was recorded; zero if none.
	LastFull time.Time
	// LastLight is when the last passed light test was recorded; zero if none.
	LastLight time.Time
	// Points is, per panic point, when its line last passed a test (of
	// either mode). A point without an entry was never tested.
	Points map[string]time.Time
}

// Controller is the logic of one visit room. It does no I/O and reads no
// clock; one goroutine owns it. Its zero value is not usable: see New and Restore.
type Controller struct {
	p        Policy
	warnings []time.Duration
	s        Snapshot
	ready    Ready
	// by is who causes the step being taken (rule 14): the operator of a
	// command, OnSite for a press of the staff input, empty otherwise.
	by string
}

// New returns a controller for a room in phase idle at time at, with the
// actions that start it: a controller_started record, every output set, and
// StateChanged. The policy must be valid.
func New(p Policy, at time.Time) (*Controller, Ready, error) { return NewAbove(p, at, 0) }

// NewAbove is New for a room whose earlier seqs and alert numbers may still
// be held by consumers (its journal was lost, or went back in time): seqs
// and alert numbers continue above floor, so that no alert id is handed
// out twice in the life of the room.
func NewAbove(p Policy, at time.Time, floor uint64) (*Controller, Ready, error) {
	if err := p.Validate(); err != nil {
		return nil, Ready{}, fmt.Errorf("controller policy %q: %w", p.Name, err)
	}
	c := &Controller{p: p, warnings: p.warningsDescending()}
	c.s = Snapshot{Version: SnapshotVersion, Now: at, Tests: FunctionTests{Since: at}, Seq: floor, NextAlert: floor}
	c.s.init()
	c.announce(Record{Type: EventControllerStarted})
	c.start()
	return c, c.flush(), nil
}

// init makes every map of s usable.
func (s *Snapshot) init() {
	if s.Levels == nil {
		s.Levels = map[Input]Level{}
	}
	if s.Seen == nil {
		s.Seen = map[Input]bool{}
	}
	if s.Since == nil {
		s.Since = map[Input]time.Time{}
	}
	if s.Points == nil {
		s.Points = map[string]Level{}
	}
	if s.HeldFaults == nil {
		s.HeldFaults = map[Input]string{}
	}
	if s.Outputs == nil {
		s.Outputs = map[Output]SetOutput{}
	}
	if s.Drifts == nil {
		s.Drifts = map[string]Drift{}
	}
	if s.Tests.Points == nil {
		s.Tests.Points = map[string]time.Time{}
	}
}

// start sets every output, off first (the hardware starts in its safe
// state), then as the state wants.
func (c *Controller) start() {
	for _, o := range Outputs {
		c.s.Outputs[o] = SetOutput{Output: o, Mode: ModeOff}
		c.set(SetOutput{Output: o, Mode: ModeOff})
	}
	c.settle()
	c.changed()
}

// Policy returns the controller's policy.
func (c *Controller) Policy() Policy { return c.p }

// Snapshot returns a copy of the whole state, to persist.
func (c *Controller) Snapshot() Snapshot { return c.s.clone() }

func (s Snapshot) clone() Snapshot {
	if s.Visit != nil {
		v := *s.Visit
		s.Visit = &v
	}
	s.Levels = cloneMap(s.Levels)
	s.Seen = cloneMap(s.Seen)
	s.Since = cloneMap(s.Since)
	s.Points = cloneMap(s.Points)
	s.HeldFaults = cloneMap(s.HeldFaults)
	s.Drifts = cloneMap(s.Drifts)
	s.Outputs = cloneMap(s.Outputs)
	s.Alerts = slices.Clone(s.Alerts)
	s.Tests.Points = cloneMap(s.Tests.Points)
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Phase returns the room's phase.
func (c *Controller) Phase() Phase { return c.s.Phase }

// Now returns the time of the latest event stepped.
func (c *Controller) Now() time.Time { return c.s.Now }

// Step applies one event and returns the actions it causes, in order. Timers
// that fell due before the event's time fire first, each at its own instant.
// Step is the only way in: every rule's hooks run from here.
func (c *Controller) Step(ev Event) Ready {
	if e, ok := ev.(ClockCorrected); ok {
		clockRule{}.shift(c, e.Shift)
	}
	c.advance(ev.when())
	switch e := ev.(type) {
	case InputChanged:
		if e.Input == InputStaff && e.Level == LevelActive {
			c.by = OnSite
		}
		c.input(e)
	case Command:
		c.command(e)
	case Fault:
		faultRule{}.system(c, e)
	case FeedbackChanged:
		supervisionRule{}.feedback(c, e)
	case FunctionTested:
		functionTestRule{}.tested(c, e)
	case Tick, ClockCorrected:
	}
	c.settle()
	c.by = ""
	return c.flush()
}

// NextDeadline returns the next instant at which time alone changes
// something, and false if there is none. The driver arms one timer for it
// and sends a Tick when it comes.
func (c *Controller) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, r := range rules {
		if t := r.due(c); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
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
		if d.After(c.s.Now) {
			c.s.Now = d
		}
		c.fire()
	}
	c.s.Now = at
}

// fire runs every rule's timers due at or before c.s.Now, in rule order.
func (c *Controller) fire() {
	for _, r := range rules {
		if t := r.due(c); !t.IsZero() && !t.After(c.s.Now) {
			r.fire(c)
		}
	}
}

// input records a changed level and hands it to the rules.
func (c *Controller) input(e InputChanged) {
	if e.Input < InputDoor || e.Input > InputStaff || e.Level > LevelActive {
		return
	}
	ch := change{InputChanged: e}
	if e.Input == InputPanic {
		if ch.Point == "" {
			ch.Point = DefaultPanicPoint
		}
		if !ValidPointName(ch.Point) {
			return
		}
		var seen bool
		ch.prev, seen = c.s.Points[ch.Point]
		ch.first = !seen
		if seen && ch.prev == e.Level {
			lineRule{}.same(c, ch)
			return
		}
		c.s.Points[ch.Point] = e.Level
	} else {
		if e.Point != "" {
			return
		}
		ch.prev, ch.first = c.s.Levels[e.Input], !c.s.Seen[e.Input]
		if !ch.first && ch.prev == e.Level {
			lineRule{}.same(c, ch)
			return
		}
		c.s.Levels[e.Input] = e.Level
		c.s.Seen[e.Input] = true
		c.s.Since[e.Input] = c.s.Now
	}
	if e.Input == InputPresence && c.s.Phase.Private() {
		// Rule 9: a presence change in a private phase reaches only the
		// rules below, and none emits anything.
		privacyRule{}.hold(c, ch)
		vacancyRule{}.observe(c, ch)
		lineRule{}.hold(c, ch)
		return
	}
	for _, r := range rules {
		r.input(c, ch)
	}
	c.changed()
}

// command checks the operator and hands the command to the rule that owns
// its action. Every command gets exactly one Reply.
func (c *Controller) command(e Command) {
	if e.By != "" && !ValidOperatorID(e.By) {
		c.reply(e, CodeInvalidOperator, "by %q is not an operator id (1 to 64 characters of A-Z a-z 0-9 . _ : -, and not %q)", e.By, OnSite)
		return
	}
	c.by = e.By
	switch e.Action {
	case ActionGetState:
		c.reply(e, CodeOK, "")
	case ActionStartVisit:
		visitRule{}.start(c, e)
	case ActionExtendVisit:
		visitRule{}.extend(c, e)
	case ActionEndVisit:
		visitRule{}.end(c, e)
	case ActionAckAlert:
		alertRule{}.ack(c, e)
	case ActionSetService:
		readinessRule{}.setService(c, e)
	case ActionSetReady:
		readinessRule{}.setReady(c, e)
	default:
		c.reply(e, CodeBadRequest, "unknown action %d", e.Action)
	}
}

func (c *Controller) reply(e Command, code Code, format string, args ...any) {
	c.answer(e, Reply{Code: code, Message: fmt.Sprintf(format, args...)})
}

// settle runs every rule's settle hook (alerts whose condition is gone
// clear; the signal rule, last, drives the outputs) and forgets cleared
// alerts.
func (c *Controller) settle() {
	for _, r := range rules {
		r.settle(c)
	}
	c.s.Alerts = slices.DeleteFunc(c.s.Alerts, func(a Alert) bool { return !a.Active() })
}

// setPhase is the one place where the phase changes. It tells every rule,
// which may announce (inspection_started) or start and stop watches.
func (c *Controller) setPhase(to Phase) {
	from := c.s.Phase
	if from == to {
		return
	}
	c.s.Phase = to
	for _, r := range rules {
		r.phaseChanged(c, from, to)
	}
	c.changed()
}

// PhaseTransitions lists, for each phase, the phases setPhase may move to.
// Tests check every observed change against it.
var PhaseTransitions = map[Phase][]Phase{
	PhaseIdle:         {PhaseInVisit, PhaseOutOfService},
	PhaseInVisit:      {PhaseOvertime, PhaseIdle, PhaseInspection},
	PhaseOvertime:     {PhaseInVisit, PhaseIdle, PhaseInspection},
	PhaseInspection:   {PhaseIdle, PhaseOutOfService},
	PhaseOutOfService: {PhaseIdle, PhaseInspection},
}

// late returns due if it is before now (something that fell due while
// roomd was down), else zero: the value of Record.DueAt.
func (c *Controller) late(due time.Time) time.Time {
	if due.Before(c.s.Now) {
		return due
	}
	return time.Time{}
}

// raise adds an alert and announces it. due is when its condition fell due
// (zero: now); rule 10 times it from then (scheduleNew).
func (c *Controller) raise(a Alert, due time.Time) {
	now := c.s.Now
	if due.IsZero() || due.After(now) {
		due = now
	}
	c.s.NextAlert++
	a.ID = fmt.Sprintf("%s-%d", a.Kind, c.s.NextAlert)
	a.RaisedAt = now
	a.Announcements = 1
	c.scheduleNew(&a, due)
	c.s.Alerts = append(c.s.Alerts, a)
	cp := a
	// The room raises alerts, never a person: alert_raised has no By, even
	// when a command's step brought it out (a held fault at the end of an
	// inspection).
	by := c.by
	c.by = ""
	c.announce(Record{Type: EventAlertRaised, Alert: &cp, DueAt: c.late(due)})
	c.by = by
}

func (c *Controller) clear(a *Alert) {
	if !a.Active() {
		return
	}
	a.ClearedAt = c.s.Now
	a.Next = time.Time{}
	cp := *a
	c.announce(Record{Type: EventAlertCleared, Alert: &cp})
}

// alertKey says which alert a rule means: the kind, and for the kinds that
// may have several at once, what it is about.
type alertKey struct {
	kind   AlertKind
	input  Input  // sensor_fault
	point  string // panic, sensor_fault of a panic point
	output Output // output_fault
	source string // system_fault
}

// find returns the active alert of key k, or nil.
func (c *Controller) find(k alertKey) *Alert {
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if a.Active() && a.Kind == k.kind && a.Input == k.input && a.Point == k.point && a.Output == k.output && a.Source == k.source {
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

// announce numbers r, stamps it with the time and who caused it (rule 14),
// and adds it to the step's records.
func (c *Controller) announce(r Record) {
	c.s.Seq++
	r.Seq = c.s.Seq
	r.At = c.s.Now
	r.By = c.by
	c.ready.Records = append(c.ready.Records, r)
	c.changed()
}

// set drives an output as part of the step.
func (c *Controller) set(o SetOutput) { c.ready.Outputs = append(c.ready.Outputs, o) }

// answer adds the reply r to command e, addressed to its sender.
func (c *Controller) answer(e Command, r Reply) {
	r.RequestID, r.Action, r.Operator = e.RequestID, e.Action, e.By
	c.ready.Replies = append(c.ready.Replies, r)
}

// changed asks for the snapshot to be kept and the state published.
func (c *Controller) changed() { c.ready.StateChanged = true }

// flush hands over what the step asks for and starts the next one empty.
func (c *Controller) flush() Ready {
	r := c.ready
	c.ready = Ready{}
	return r
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

// ValidPointName reports whether s names a panic point: 1 to 32 characters
// of a-z, 0-9 and '_', starting with a letter ("bed", "toilet", "pull_cord").
func ValidPointName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
