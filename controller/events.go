package controller

import "time"

// Event is something that happened, stamped with when it happened. The
// controller never reads a clock: the time of an event is the only time it
// knows. Events whose time is earlier than an event already stepped are
// treated as happening at that later time (time never runs backwards).
type Event interface {
	when() time.Time
}

// InputChanged delivers a new debounced level of an input. Level
// LevelUnknown means the input is faulted; Detail may say why ("flapping",
// "read failed: ...").
type InputChanged struct {
	At     time.Time
	Input  Input
	Level  Level
	Detail string
}

// Command is a request from the booking system or a guard, already decoded
// and checked at the edge; the controller checks it again against the phase
// and the policy and always answers with exactly one Reply.
type Command struct {
	At        time.Time
	RequestID string
	Action    CommandAction
	VisitID   string        // start_visit
	Duration  time.Duration // start_visit: planned length; extend_visit: by how much
	AlertID   string        // ack_alert
	InService bool          // set_service
	Reason    string        // set_service
}

// Tick tells the controller that time has reached At. The driver sends one
// when the instant returned by NextDeadline has come; extra ticks are harmless.
type Tick struct {
	At time.Time
}

// Fault reports a problem of roomd itself (not of a sensor): the outbox is
// full, the state file was unreadable, the clock could not be trusted.
// Source is a stable key ("outbox", "state", "clock"); Active false clears
// the fault for that source. A fault with ClearOnAck is a notice that
// acknowledgement clears.
type Fault struct {
	At         time.Time
	Source     string
	Active     bool
	Detail     string
	Severity   Severity
	ClearOnAck bool
}

func (e InputChanged) when() time.Time { return e.At }
func (e Command) when() time.Time      { return e.At }
func (e Tick) when() time.Time         { return e.At }
func (e Fault) when() time.Time        { return e.At }

// Action is something the driver must do. Actions come out of Step in the
// order they must be carried out.
type Action interface {
	action()
}

// SetOutput drives an output. Pulses, for the in-room warning, is the number
// of chime pulses that mark which warning this is (1 for the first, 2 for the
// second...); the lamp then holds Mode.
type SetOutput struct {
	Output Output
	Mode   Mode
	Pulses uint8
}

// Announce carries an event for staff and the booking system. Records are
// numbered by Seq, one more per record for the life of the room.
type Announce struct {
	Record Record
}

// StateChanged says the state changed: persist Snapshot and publish State.
type StateChanged struct{}

// Reply answers a Command. Code is CodeOK on success.
type Reply struct {
	RequestID string
	Action    CommandAction
	Code      Code
	Message   string
}

func (SetOutput) action()    {}
func (Announce) action()     {}
func (StateChanged) action() {}
func (Reply) action()        {}

// OK reports whether the command was accepted.
func (r Reply) OK() bool { return r.Code == CodeOK }

// Record is an announced event. Which fields are set depends on Type.
type Record struct {
	Seq  uint64
	At   time.Time
	Type EventType

	VisitID   string         // visit_*: the visit's opaque id
	EndsAt    time.Time      // visit_started, visit_extended: the new deadline
	Duration  time.Duration  // visit_started: planned length; visit_extended: by how much
	Remaining time.Duration  // visit_warning: time left at the warning
	Warning   int            // visit_warning: 1 for the first warning, 2 for the second...
	EndReason VisitEndReason // visit_ended

	Alert *Alert // alert_*: the alert after the change

	InService bool   // service_changed
	Reason    string // service_changed: the operator's reason; alert_escalated: "escalated", "repeat" or "reannounce"
	Resumed   bool   // controller_started: state restored from a previous run
}

// Alert is a condition that staff must see. IDs are stable for the life of the
// room ("panic-7"); an alert stays active until cleared.
type Alert struct {
	ID       string
	Kind     AlertKind
	Severity Severity

	RaisedAt  time.Time
	Acked     bool
	AckedAt   time.Time
	ClearedAt time.Time

	Input  Input  // sensor_fault: which input
	Source string // system_fault: which part of roomd
	Detail string // sensor_fault, system_fault: why

	// Announcements counts how often the alert was announced: 1 when
	// raised, one more per escalation, repeat or reannouncement.
	Announcements int

	// Next is when time alone changes the alert next (escalation, repeat,
	// reannouncement); zero if never.
	Next time.Time
	// Reset records the on-site reset of a panic alert with the staff input.
	Reset bool
	// ClearOnAck: acknowledgement clears the alert.
	ClearOnAck bool
}

// Active reports whether the alert has not been cleared.
func (a *Alert) Active() bool { return a.ClearedAt.IsZero() }
