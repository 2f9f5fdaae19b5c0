package controller

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Event is something that happened, stamped with when it happened. The
// controller never reads a clock: the time of an event is the only time it
// knows. Events whose time is earlier than an event already stepped are
// treated as happening at that later time (time never runs backwards).
type Event interface {
	when() time.Time
}

// InputChanged delivers a new debounced level of an input. Level
// LevelUnknown means the input is faulted; Detail may say why ("flapping",
// "read failed: ..."). Point names the panic point of a panic input ("bed",
// "toilet"); it is empty for every other input, and an empty Point of the
// panic input means DefaultPanicPoint.
//
// An input read through an end-of-line supervised loop (rule 17) says
// more: Tamper, with LevelUnknown, that the loop was bridged, cut or masked
// (Detail says which, in words, never in ohms); Drift that its resistance
// drifted while the level is still known.
type InputChanged struct {
	At     time.Time
	Input  Input
	Point  string
	Level  Level
	Detail string
	Tamper bool
	Drift  Drift
}

// Command is a request from the booking system or a guard, already decoded
// and checked at the edge; the controller checks it again against the phase
// and the policy and always answers with exactly one Reply.
type Command struct {
	At        time.Time
	RequestID string
	Action    CommandAction
	// By is the operator who sent the command (an opaque id, see
	// ValidOperatorID), or empty when the command came without one. Every
	// record the command causes carries it.
	By        string
	VisitID   string        // start_visit
	Duration  time.Duration // start_visit: planned length; extend_visit: by how much
	AlertID   string        // ack_alert
	InService bool          // set_service
	Reason    string        // set_service: free text
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

// FeedbackChanged reports the output supervision of one output (rule 13):
// whether its read-back (a relay's auxiliary contact) follows what roomd
// drives. The device layer compares and applies the grace period; Follows
// false raises output_fault, true clears it. Detail says what was seen.
type FeedbackChanged struct {
	At      time.Time
	Output  Output
	Follows bool
	Detail  string
}

// ClockCorrected says that the controller's time axis was wrong (for
// example a saved axis years ahead of a trustworthy wall clock): every time
// the controller holds moves by Shift, its own time included, so that every
// remaining duration (visit, grace, repeat) is kept; then the step proceeds
// at At like any event. It changes no phase and announces nothing by itself;
// the driver reports the correction (a clock system fault).
type ClockCorrected struct {
	At    time.Time
	Shift time.Duration
}

// FunctionTested records a function test of the room's lines (rule 16),
// as roomd commission ran it with the daemon stopped: who ran it, and what
// each line did. The controller announces it as a function_test record; a
// passed full test resets the due date of the next one. Check it with
// Validate first: the controller ignores an event that does not pass, as
// it ignores an input it cannot read.
type FunctionTested struct {
	At   time.Time
	By   string // the tester's operator id (ValidOperatorID); required
	Test FunctionTest
}

// FunctionTest is the result of one function test. Passed is true exactly
// when every line passed.
type FunctionTest struct {
	Mode    TestMode
	Passed  bool
	Version string // roomd's version that ran the test
	Lines   []LineResult
}

// LineResult is what one line did in a function test: an input line (Input,
// with Point for a panic point and Sensor for a presence sensor) or an
// output (Output). Fault is empty exactly when the line passed.
type LineResult struct {
	Input  Input
	Point  string // the panic point (Input panic)
	Sensor int    // the presence sensor, from 1 in the config's order (Input presence)
	Output Output
	Passed bool
	Fault  LineFault
}

// Name names the line: "door", "panic:toilet", "presence:2", "alarm_sounder".
func (l LineResult) Name() string {
	switch {
	case l.Output != 0:
		return l.Output.String()
	case l.Point != "":
		return l.Input.String() + ":" + l.Point
	case l.Sensor != 0:
		return fmt.Sprintf("%s:%d", l.Input, l.Sensor)
	}
	return l.Input.String()
}

// Validate reports what makes e unusable: a By that is not an operator id,
// an unknown mode, no line, a line that is neither one input line nor one
// output, a fault that does not match its result, or a Passed that does not
// match the lines.
func (e FunctionTested) Validate() error {
	var errs []error
	if !ValidOperatorID(e.By) {
		errs = append(errs, fmt.Errorf("by %q is not an operator id (1 to 64 characters of A-Z a-z 0-9 . _ : -, and not %q)", e.By, OnSite))
	}
	if e.Test.Mode != TestFull && e.Test.Mode != TestLight {
		errs = append(errs, fmt.Errorf("unknown test mode %d", e.Test.Mode))
	}
	if len(e.Test.Lines) == 0 {
		errs = append(errs, errors.New("no line was tested"))
	}
	all := true
	seen := map[string]bool{}
	for i, l := range e.Test.Lines {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("line %d (%s): %s", i, l.Name(), fmt.Sprintf(format, args...)))
		}
		switch {
		case (l.Input == 0) == (l.Output == 0):
			bad("names neither one input nor one output")
		case l.Input != 0 && (l.Input < InputDoor || l.Input > InputStaff):
			bad("unknown input %d", l.Input)
		case l.Output != 0 && (l.Output < OutputInUse || l.Output > OutputReassurance):
			bad("unknown output %d", l.Output)
		case l.Input == InputPanic && !ValidPointName(l.Point):
			bad("%q is not a panic point name", l.Point)
		case l.Input != InputPanic && l.Point != "":
			bad("only a panic point has a point name")
		case l.Input == InputPresence && l.Sensor < 1:
			bad("a presence sensor is numbered from 1")
		case l.Input != InputPresence && l.Sensor != 0:
			bad("only a presence sensor has a number")
		case l.Passed != (l.Fault == FaultNone):
			bad("passed %t with fault %q", l.Passed, l.Fault)
		case !l.Passed && !slices.Contains(LineFaults, l.Fault):
			bad("unknown fault %q", l.Fault)
		case seen[l.Name()]:
			bad("listed twice")
		}
		seen[l.Name()] = true
		all = all && l.Passed
	}
	if e.Test.Passed != all {
		errs = append(errs, fmt.Errorf("passed is %t, but %s", e.Test.Passed, map[bool]string{true: "every line passed", false: "a line failed"}[all]))
	}
	return errors.Join(errs...)
}

func (e InputChanged) when() time.Time    { return e.At }
func (e Command) when() time.Time         { return e.At }
func (e Tick) when() time.Time            { return e.At }
func (e Fault) when() time.Time           { return e.At }
func (e FeedbackChanged) when() time.Time { return e.At }
func (e ClockCorrected) when() time.Time  { return e.At }
func (e FunctionTested) when() time.Time  { return e.At }

// Ready is what one step asks of the loop that owns the controller, field
// by field in the order the loop carries it out. Like raft's Ready, it says
// what must be persisted before anything is sent.
type Ready struct {
	// Outputs are driven at once, in order, before anything is written or
	// sent: the room's lamps and sounders never wait for the disk or the
	// network.
	Outputs []SetOutput
	// Records are the step's announcements, numbered by Seq (one more per
	// record for the life of the room). They are kept with the snapshot in
	// one journal entry, and only then published, in order.
	Records []Record
	// StateChanged says the state changed: the snapshot after the step is
	// kept with the records, and the state is published after them, never
	// before its record.
	StateChanged bool
	// Replies answer the step's command, after its records and state. Each
	// carries the operator who sent the command.
	Replies []Reply
}

// Empty reports whether the step asks for nothing.
func (r Ready) Empty() bool {
	return len(r.Outputs) == 0 && len(r.Records) == 0 && !r.StateChanged && len(r.Replies) == 0
}

// SetOutput drives an output. Pulses, for the in-room warning, is the number
// of chime pulses that mark which warning this is (1 for the first, 2 for the
// second...); the lamp then holds Mode.
type SetOutput struct {
	Output Output
	Mode   Mode
	Pulses uint8
}

// Reply answers a Command. Code is CodeOK on success.
type Reply struct {
	RequestID string
	Action    CommandAction
	Code      Code
	Message   string
	// Blockers, with CodeNotReady, lists what keeps the room from starting a
	// visit: the ids of the blocking alerts, in the order raised, and
	// BlockerInspection while the inspection after a visit is not done.
	Blockers []string
	// Operator is who sent the command (Command.By): its reply goes to them.
	// The journal keeps it beside the reply, not inside it.
	Operator string `json:"-"`
}

// OK reports whether the command was accepted.
func (r Reply) OK() bool { return r.Code == CodeOK }

// Record is an announced event. Which fields are set depends on Type.
type Record struct {
	Seq  uint64
	At   time.Time
	Type EventType

	// By is who caused the record: the operator id of the command, OnSite
	// for the staff input at the room, empty for timers and sensors (and for
	// commands sent without an operator).
	By string
	// DueAt is when the announced thing fell due, when that is earlier than
	// At: only after a restart, for what fell due while roomd was down
	// (deadline, warning, welfare check, escalation, repeat,
	// reannouncement). Zero otherwise.
	DueAt time.Time

	VisitID   string         // visit_*, welfare_checked, inspection_*: the visit's opaque id
	EndsAt    time.Time      // visit_started, visit_extended: the new deadline
	Duration  time.Duration  // visit_started: the planned length
	Added     time.Duration  // visit_extended: the time added
	Remaining time.Duration  // visit_warning: time left at the warning
	Warning   int            // visit_warning: 1 for the first warning, 2 for the second...
	EndReason VisitEndReason // visit_ended

	Alert *Alert // alert_*: the alert after the change

	InService     bool   // service_changed
	ServiceReason string // service_changed: the operator's free text (no vocabulary)
	Resumed       bool   // controller_started: state restored from a previous run

	Test *FunctionTest // function_test: the test's result
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
	Point  string // panic, and sensor_fault of the panic input: which panic point
	Output Output // output_fault: which output
	Source string // system_fault: which part of roomd
	Detail string // sensor_fault, system_fault, output_fault, line_drift: why

	// Announcements counts how often the alert was announced: 1 when
	// raised, one more per escalation, repeat or reannouncement.
	Announcements int

	// Next is when time alone changes the alert next (escalation, repeat,
	// reannouncement); zero if never.
	Next time.Time
	// Escalates: while unacknowledged at severity warning, the alert becomes
	// critical after the policy's escalate_after (time_up).
	Escalates bool
	// Reset records the on-site reset of a panic alert with the staff input.
	Reset bool
	// ClearOnAck: acknowledgement clears the alert.
	ClearOnAck bool
}

// Active reports whether the alert has not been cleared.
func (a *Alert) Active() bool { return a.ClearedAt.IsZero() }
