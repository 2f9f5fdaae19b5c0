package controller

import (
	"fmt"
	"time"
)

// Input is one of the room's sensor roles. Each input is delivered to the
// controller as a debounced Level; several physical sensors may stand behind
// one role (presence), combined by the device layer.
type Input uint8

// The inputs the controller understands.
const (
	InputDoor     Input = iota + 1 // door contact: active = open
	InputLock                      // bolt or latch sensor: active = locked
	InputPresence                  // occupancy (PIR or presence): active = someone detected
	InputPanic                     // panic button: active = pressed
	InputStaff                     // staff key switch or presence button at the room: active = pressed
)

// Inputs lists every input in a stable order.
var Inputs = []Input{InputDoor, InputLock, InputPresence, InputPanic, InputStaff}

var inputNames = [...]string{"", "door", "lock", "presence", "panic", "staff"}

func (i Input) String() string {
	if int(i) < len(inputNames) && i != 0 {
		return inputNames[i]
	}
	return fmt.Sprintf("input(%d)", uint8(i))
}

// ParseInput returns the Input named s ("door", "lock", "presence", "panic", "staff").
func ParseInput(s string) (Input, error) {
	for _, in := range Inputs {
		if in.String() == s {
			return in, nil
		}
	}
	return 0, fmt.Errorf("unknown input %q (want door, lock, presence, panic or staff)", s)
}

// Level is the debounced reading of an input. LevelUnknown means the input is
// faulted or has not been read yet; the controller then assumes the worse
// reading for that input (see the package documentation).
type Level uint8

// The levels of an input.
const (
	LevelUnknown  Level = iota // faulted, unread or unreadable
	LevelInactive              // door closed, lock unlocked, nobody detected, button released
	LevelActive                // door open, lock locked, somebody detected, button pressed
)

func (l Level) String() string {
	switch l {
	case LevelInactive:
		return "inactive"
	case LevelActive:
		return "active"
	default:
		return "unknown"
	}
}

// Describe names a level in the words of the input: "open"/"closed" for the
// door, "locked"/"unlocked" for the lock, "present"/"absent" for presence,
// "pressed"/"released" for buttons, "unknown" for a fault.
func (i Input) Describe(l Level) string {
	if l == LevelUnknown {
		return "unknown"
	}
	words := map[Input][2]string{
		InputDoor:     {"closed", "open"},
		InputLock:     {"unlocked", "locked"},
		InputPresence: {"absent", "present"},
		InputPanic:    {"released", "pressed"},
		InputStaff:    {"released", "pressed"},
	}[i]
	if l == LevelActive {
		return words[1]
	}
	return words[0]
}

// ParseLevel accepts the words of Describe for input i, plus "unknown".
func (i Input) ParseLevel(s string) (Level, error) {
	for _, l := range []Level{LevelInactive, LevelActive, LevelUnknown} {
		if i.Describe(l) == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("input %s: unknown level %q (want %q, %q or \"unknown\")",
		i, s, i.Describe(LevelInactive), i.Describe(LevelActive))
}

// Output is one of the indicators the controller drives.
type Output uint8

// The outputs. None of them is ever in a lock's power path.
const (
	OutputInUse        Output = iota + 1 // lamp over the door: a visit is running
	OutputWarning                        // lamp and chime inside the room, for the occupants
	OutputAlarmLight                     // light at the door, for staff: on until the alerts clear
	OutputAlarmSounder                   // sounder at the door, for staff: silenced by acknowledgement
	OutputReassurance                    // lamp inside the room: a panic call is registered (blink) or acknowledged (on)
)

// Outputs lists every output in a stable order.
var Outputs = []Output{OutputInUse, OutputWarning, OutputAlarmLight, OutputAlarmSounder, OutputReassurance}

var outputNames = [...]string{"", "in_use", "warning", "alarm_light", "alarm_sounder", "reassurance"}

func (o Output) String() string {
	if int(o) < len(outputNames) && o != 0 {
		return outputNames[o]
	}
	return fmt.Sprintf("output(%d)", uint8(o))
}

// ParseOutput returns the Output named s ("in_use", "warning",
// "alarm_light", "alarm_sounder", "reassurance"). The configuration's older
// name "alarm" is not an output: it is an alias the config layer maps to
// alarm_light.
func ParseOutput(s string) (Output, error) {
	for _, o := range Outputs {
		if o.String() == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown output %q (want in_use, warning, alarm_light, alarm_sounder or reassurance)", s)
}

// IsAlarm reports whether o is one of the alarm outputs at the door, whose
// failure is critical.
func (o Output) IsAlarm() bool { return o == OutputAlarmLight || o == OutputAlarmSounder }

// Mode is what an output shows. The zero value, ModeOff, is every output's
// safe state. Besides steady and blinking, the alarm outputs show one
// pattern per kind of alert (panic, door_locked, time_up, fault); the device
// layer renders their timings (device.Pattern).
type Mode uint8

// The modes of an output.
const (
	ModeOff        Mode = iota // dark and silent; the safe state
	ModeOn                     // steady
	ModeBlink                  // blinking (lamp) or pulsing (sounder), the generic pattern
	ModePanic                  // the panic pattern (alarm outputs)
	ModeDoorLocked             // the door_locked pattern (alarm outputs)
	ModeTimeUp                 // the time_up pattern (alarm outputs, once escalated)
	ModeFault                  // the fault pattern (alarm outputs): sensor, system or output faults
)

// Modes lists every mode in a stable order.
var Modes = []Mode{ModeOff, ModeOn, ModeBlink, ModePanic, ModeDoorLocked, ModeTimeUp, ModeFault}

var modeNames = [...]string{"off", "on", "blink", "panic", "door_locked", "time_up", "fault"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// IsPattern reports whether m changes over time (blink or an alarm pattern).
func (m Mode) IsPattern() bool { return m >= ModeBlink && int(m) < len(modeNames) }

// ParseMode accepts the names of Modes: "off", "on", "blink", "panic",
// "door_locked", "time_up" and "fault".
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown output mode %q (want off, on, blink, panic, door_locked, time_up or fault)", s)
}

// Phase is the room's phase.
type Phase uint8

// The phases of a room.
const (
	PhaseIdle         Phase = iota // no visit; the room is ready for one (unless a blocking alert is active)
	PhaseInVisit                   // a visit is running, before its deadline
	PhaseOvertime                  // a visit is running past its deadline
	PhaseOutOfService              // the room is taken out of service; no visit may start
	PhaseInspection                // after a visit (inspection_after_visit): search and clean; no visit may start
)

// Phases lists every phase in a stable order.
var Phases = []Phase{PhaseIdle, PhaseInVisit, PhaseOvertime, PhaseOutOfService, PhaseInspection}

var phaseNames = [...]string{"idle", "in_visit", "overtime", "out_of_service", "inspection"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// InVisit reports whether a visit is running (in time or overtime).
func (p Phase) InVisit() bool { return p == PhaseInVisit || p == PhaseOvertime }

// Private reports whether presence is hidden in phase p (rule 9): during a
// visit and during the inspection that follows one, when a presence change
// could tell what happens or happened inside.
func (p Phase) Private() bool { return p.InVisit() || p == PhaseInspection }

// Severity ranks alerts.
type Severity uint8

// The severities, in increasing order.
const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityCritical
)

func (s Severity) String() string {
	switch s {
	case SeverityWarning:
		return "warning"
	case SeverityCritical:
		return "critical"
	default:
		return "info"
	}
}

// AlertKind says what an alert is about.
type AlertKind uint8

// The alert kinds.
const (
	AlertTimeUp          AlertKind = iota + 1 // the visit passed its deadline
	AlertDoorLocked                           // the door is bolted during a visit
	AlertPanic                                // a panic point was pressed
	AlertSensorFault                          // an input is unknown, faulted or flapping
	AlertNotVacated                           // presence lasts after the visit ended
	AlertWelfareCheck                         // a welfare check is due (long visits)
	AlertSystemFault                          // roomd itself is degraded: outbox full, state lost, clock unreliable
	AlertOutputFault                          // an output's read-back does not follow what roomd drives
	AlertFunctionTestDue                      // no full function test passed within function_test_every (rule 16)
	AlertLineDrift                            // a supervised loop's resistance drifted from its band or baseline (rule 17)
)

// AlertKinds lists every alert kind in a stable order.
var AlertKinds = []AlertKind{AlertTimeUp, AlertDoorLocked, AlertPanic, AlertSensorFault, AlertNotVacated,
	AlertWelfareCheck, AlertSystemFault, AlertOutputFault, AlertFunctionTestDue, AlertLineDrift}

var alertKindNames = [...]string{"", "time_up", "door_locked", "panic", "sensor_fault", "not_vacated",
	"welfare_check", "system_fault", "output_fault", "function_test_due", "line_drift"}

func (k AlertKind) String() string {
	if int(k) < len(alertKindNames) && k != 0 {
		return alertKindNames[k]
	}
	return fmt.Sprintf("alert(%d)", uint8(k))
}

// EventType names an event announced to the outside.
type EventType uint8

// The event types. Alert lifecycle events are the ones for which IsAlert is
// true. The values are stable (new types are added at the end).
const (
	EventControllerStarted EventType = iota + 1
	EventVisitStarted
	EventVisitWarning
	EventVisitExtended
	EventVisitEnded
	EventDoorOpened
	EventDoorClosed
	EventLockEngaged
	EventLockReleased
	EventAlertRaised
	EventAlertEscalated // the alert's severity rose
	EventAlertAcked
	EventAlertCleared
	EventServiceChanged
	EventWelfareChecked
	EventAlertRepeated    // an unacknowledged critical alert, announced again after repeat_every
	EventAlertReannounced // an acknowledged alert still active after reannounce_after: unacknowledged again
	EventInspectionStarted
	EventInspectionEnded
	EventFunctionTest // a function test of the room's lines was recorded (rule 16)
)

// EventTypes lists every event type in a stable order.
var EventTypes = []EventType{EventControllerStarted, EventVisitStarted, EventVisitWarning, EventVisitExtended,
	EventVisitEnded, EventInspectionStarted, EventInspectionEnded, EventDoorOpened, EventDoorClosed,
	EventLockEngaged, EventLockReleased, EventAlertRaised, EventAlertEscalated, EventAlertRepeated,
	EventAlertReannounced, EventAlertAcked, EventAlertCleared, EventServiceChanged, EventWelfareChecked,
	EventFunctionTest}

var eventTypeNames = [...]string{"", "controller_started", "visit_started", "visit_warning", "visit_extended",
	"visit_ended", "door_opened", "door_closed", "lock_engaged", "lock_released", "alert_raised",
	"alert_escalated", "alert_acked", "alert_cleared", "service_changed", "welfare_checked",
	"alert_repeated", "alert_reannounced", "inspection_started", "inspection_ended", "function_test"}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) && t != 0 {
		return eventTypeNames[t]
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// IsAlert reports whether t belongs to an alert's lifecycle (its records
// carry the alert).
func (t EventType) IsAlert() bool {
	switch t {
	case EventAlertRaised, EventAlertEscalated, EventAlertRepeated, EventAlertReannounced, EventAlertAcked, EventAlertCleared:
		return true
	}
	return false
}

// IsAnnouncement reports whether t announces an alert to staff (raised,
// escalated, repeated or reannounced), as opposed to a change they made
// (acked) or the end of the alert (cleared).
func (t EventType) IsAnnouncement() bool {
	switch t {
	case EventAlertRaised, EventAlertEscalated, EventAlertRepeated, EventAlertReannounced:
		return true
	}
	return false
}

// CommandAction names a command.
type CommandAction uint8

// The commands.
const (
	ActionStartVisit CommandAction = iota + 1
	ActionExtendVisit
	ActionEndVisit
	ActionAckAlert
	ActionSetService
	ActionGetState
	ActionSetReady // ends the inspection after a visit: the room is searched and clean
)

// CommandActions lists every command in a stable order.
var CommandActions = []CommandAction{ActionStartVisit, ActionExtendVisit, ActionEndVisit, ActionAckAlert,
	ActionSetService, ActionSetReady, ActionGetState}

var actionNames = [...]string{"", "start_visit", "extend_visit", "end_visit", "ack_alert", "set_service", "get_state", "set_ready"}

func (a CommandAction) String() string {
	if int(a) < len(actionNames) && a != 0 {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseCommandAction returns the action named s.
func ParseCommandAction(s string) (CommandAction, error) {
	for _, a := range CommandActions {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// Code is the reason a command was refused. The empty code means success.
type Code string

// The refusal codes the controller itself produces. The MQTT edge adds its own
// (bad_request, unknown_action, expired, wrong_room, ...).
const (
	CodeOK                 Code = ""
	CodeInvalidDuration    Code = "invalid_duration"    // zero, negative or above the policy maximum
	CodeInvalidVisitID     Code = "invalid_visit_id"    // empty, too long or with characters outside [A-Za-z0-9._:-]
	CodeInvalidOperator    Code = "invalid_operator"    // by is not an operator id (see ValidOperatorID)
	CodeVisitInProgress    Code = "visit_in_progress"   // start_visit, set_ready or set_service out while a visit runs
	CodeNoVisit            Code = "no_visit"            // extend_visit or end_visit with no visit running
	CodeUnknownAlert       Code = "unknown_alert"       // ack_alert with an id that is not active
	CodeOutOfService       Code = "out_of_service"      // start_visit or set_ready while the room is out of service
	CodeNotReady           Code = "not_ready"           // start_visit while something blocks the room; Reply.Blockers lists it
	CodeExtensionForbidden Code = "extension_forbidden" // the policy forbids extensions
	CodeExceedsMaximum     Code = "exceeds_maximum"     // the extension would pass the policy maximum
	CodeBadRequest         Code = "bad_request"         // a command the controller cannot read (unknown action)
)

// Codes lists the controller's refusal codes.
var Codes = []Code{CodeInvalidDuration, CodeInvalidVisitID, CodeInvalidOperator, CodeVisitInProgress, CodeNoVisit,
	CodeUnknownAlert, CodeOutOfService, CodeNotReady, CodeExtensionForbidden, CodeExceedsMaximum, CodeBadRequest}

// MinDuration is the shortest visit or extension: records carry whole
// seconds (duration_s, added_s at least 1), so a shorter one would be
// announced as lasting nothing.
const MinDuration = time.Second

// BlockerInspection is the blocker of start_visit while the inspection after
// the previous visit is not done. The other blockers are alert ids.
const BlockerInspection = "inspection"

// VisitEndReason says why a visit ended: the vocabulary of visit_ended's reason.
type VisitEndReason string

// The reasons a visit ends.
const (
	EndCommand VisitEndReason = "ended"   // end_visit
	EndVacated VisitEndReason = "vacated" // the door opened and then nobody was detected for vacancy_hold
)

// VisitEndReasons lists the reasons a visit ends.
var VisitEndReasons = []VisitEndReason{EndCommand, EndVacated}

// OnSite is the operator id of the staff input at the room: records caused
// by a press of it carry By OnSite. No command may claim it.
const OnSite = "on_site"

// DefaultPanicPoint is the name of the panic point of a room wired with one
// panic line and no point names; InputChanged with an empty Point means it.
const DefaultPanicPoint = "panic"

// TestMode says what a function test covered (rule 16).
type TestMode uint8

// The function test modes.
const (
	TestFull  TestMode = iota + 1 // every input line and every output: resets the due date
	TestLight                     // the panic points and the sounder only, between full tests
)

// TestModes lists every test mode in a stable order.
var TestModes = []TestMode{TestFull, TestLight}

func (m TestMode) String() string {
	switch m {
	case TestFull:
		return "full"
	case TestLight:
		return "light"
	}
	return fmt.Sprintf("test_mode(%d)", uint8(m))
}

// ParseTestMode returns the TestMode named s ("full" or "light").
func ParseTestMode(s string) (TestMode, error) {
	for _, m := range TestModes {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown test mode %q (want full or light)", s)
}

// LineFault is the likely wiring fault of a line that failed its function
// test: the vocabulary of a function_test record's per-line fault.
type LineFault string

// The line faults. The empty fault is a line that passed.
const (
	FaultNone LineFault = ""
	// FaultNeverChanged: the line did not change when acted on (a wrong
	// pin, a loose wire, a wrong pull), or did not return to rest.
	FaultNeverChanged LineFault = "never_changed"
	// FaultInverted: the rest level reads active and the action makes it
	// inactive: active_low is wrong (or an NC contact was wired as NO).
	FaultInverted LineFault = "inverted"
	// FaultBouncing: more changes than one action gives, beyond what the
	// debounce hides, or the line flapped.
	FaultBouncing LineFault = "bouncing"
	// FaultUnknown: the line could not be read.
	FaultUnknown LineFault = "unknown"
	// FaultNotConfirmed: the installer did not confirm that the output
	// showed (or sounded) what it was driven to.
	FaultNotConfirmed LineFault = "not_confirmed"
)

// LineFaults lists every fault in a stable order.
var LineFaults = []LineFault{FaultNeverChanged, FaultInverted, FaultBouncing, FaultUnknown, FaultNotConfirmed}

// Drift says whether the resistance of an end-of-line supervised loop has
// moved out of where it belongs (rule 17): into the band just below or
// above the state at rest, or away from the baseline commissioning
// measured.
type Drift uint8

// The drifts.
const (
	DriftNone Drift = iota
	DriftLow
	DriftHigh
)

func (d Drift) String() string {
	switch d {
	case DriftLow:
		return "low"
	case DriftHigh:
		return "high"
	}
	return "none"
}
