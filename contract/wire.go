package contract

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/roomd/roomd/controller"
)

// Availability payloads (plain text, retained).
const (
	Online  = "online"
	Offline = "offline"
)

// TimeLayout is the layout of every timestamp on the wire: RFC 3339 in UTC
// with exactly three fraction digits, e.g. "2026-03-01T09:00:00.000Z".
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t as the wire does.
func FormatTime(t time.Time) string { return t.UTC().Truncate(time.Millisecond).Format(TimeLayout) }

// Time is a timestamp on the wire, always written with TimeLayout. Reading
// accepts any RFC 3339 time. The zero Time is omitted where the field is
// optional (omitzero).
type Time struct{ time.Time }

// T returns t as a wire Time (UTC, millisecond precision).
func T(t time.Time) Time {
	if t.IsZero() {
		return Time{}
	}
	return Time{t.UTC().Truncate(time.Millisecond)}
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(FormatTime(t.Time))), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("time %s: not a JSON string", b)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %q: not RFC 3339", s)
	}
	t.Time = v.UTC()
	return nil
}

// StateMessage is the retained payload of {base}/{room}/state.
type StateMessage struct {
	Version int    `json:"version"`
	Room    string `json:"room"`
	// Epoch and Seq name the latest record announced; the state never
	// reaches a consumer before that record.
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
	At    Time   `json:"at"`
	Phase string `json:"phase"`
	// Visit is null outside visits.
	Visit *VisitMessage `json:"visit"`
	Door  string        `json:"door"`
	Lock  string        `json:"lock"`
	// Presence is present only outside visits and inspections (privacy rule).
	Presence string `json:"presence,omitempty"`
	// Staff is the staff input at the room (pressed while a guard's key is
	// turned): staff at the room, never the occupants. Absent until read.
	Staff         string            `json:"staff,omitempty"`
	Alerts        []AlertMessage    `json:"alerts"`
	ServiceReason string            `json:"service_reason"`
	Outputs       map[string]string `json:"outputs"`
}

// VisitMessage describes the running visit.
type VisitMessage struct {
	ID        string `json:"id"`
	StartedAt Time   `json:"started_at"`
	EndsAt    Time   `json:"ends_at"`
	// RemainingS is the time left in whole seconds, rounded up; 0 in overtime.
	RemainingS int64 `json:"remaining_s"`
	// MaxS is the policy maximum length of the visit in seconds.
	MaxS int64 `json:"max_s"`
}

// AlertMessage is an alert, as listed in the state and carried by alert_* events.
type AlertMessage struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	Severity      string `json:"severity"`
	RaisedAt      Time   `json:"raised_at"`
	Acked         bool   `json:"acked"`
	AckedAt       Time   `json:"acked_at,omitzero"`
	ClearedAt     Time   `json:"cleared_at,omitzero"`
	Announcements int    `json:"announcements"`
	Point         string `json:"point,omitempty"`  // panic, sensor_fault of a panic point
	Input         string `json:"input,omitempty"`  // sensor_fault
	Output        string `json:"output,omitempty"` // output_fault
	Source        string `json:"source,omitempty"` // system_fault
	Detail        string `json:"detail,omitempty"` // sensor_fault, system_fault, output_fault
	Reset         bool   `json:"reset,omitempty"`  // panic: reset on site with the staff input
}

// EventMessage is the payload of {base}/{room}/events and, for the alert
// lifecycle, {base}/{room}/alerts. Which optional fields appear depends on
// Type (see docs/mqtt.md).
type EventMessage struct {
	Room string `json:"room"`
	// Epoch is the record's seq space: consumers deduplicate by
	// (room, epoch, seq).
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
	At    Time   `json:"at"`
	Type  string `json:"type"`
	// By is who caused the record: an operator id, "on_site" for the staff
	// input at the room; absent for what time, sensors or the booking
	// system's anonymous topic caused.
	By string `json:"by,omitempty"`
	// DueAt, only after a restart, is when the announced thing truly fell
	// due while roomd was down (At is when it was announced).
	DueAt Time `json:"due_at,omitzero"`

	VisitID       string        `json:"visit_id,omitempty"`       // visit_*, welfare_checked, inspection_*
	EndsAt        Time          `json:"ends_at,omitzero"`         // visit_started, visit_extended
	DurationS     *int64        `json:"duration_s,omitempty"`     // visit_started: the planned length
	AddedS        *int64        `json:"added_s,omitempty"`        // visit_extended: the time added
	RemainingS    *int64        `json:"remaining_s,omitempty"`    // visit_warning
	Warning       int           `json:"warning,omitempty"`        // visit_warning: 1 for the first
	Reason        string        `json:"reason,omitempty"`         // visit_ended: ended or vacated
	Alert         *AlertMessage `json:"alert,omitempty"`          // alert_*
	InService     *bool         `json:"in_service,omitempty"`     // service_changed
	ServiceReason *string       `json:"service_reason,omitempty"` // service_changed: the operator's words
	Resumed       *bool         `json:"resumed,omitempty"`        // controller_started

	// function_test: the mode (full or light), whether every line passed,
	// the version of roomd that ran it, and each line's result.
	Mode   string        `json:"mode,omitempty"`
	Passed *bool         `json:"passed,omitempty"`
	Roomd  string        `json:"roomd,omitempty"`
	Lines  []LineMessage `json:"lines,omitempty"`
}

// LineMessage is one line's result in a function_test event: an input
// (with point for a panic point, sensor for a presence sensor, numbered
// from 1 in the config's order) or an output.
type LineMessage struct {
	Input  string `json:"input,omitempty"`
	Point  string `json:"point,omitempty"`
	Sensor int    `json:"sensor,omitempty"`
	Output string `json:"output,omitempty"`
	Result string `json:"result"`          // passed or failed
	Fault  string `json:"fault,omitempty"` // failed: never_changed, inverted, bouncing, unknown or not_confirmed
}

// The results of a line in a function test.
const (
	ResultPassed = "passed"
	ResultFailed = "failed"
)

// CommandMessage is the payload of {base}/{room}/cmd and cmd/{operator}.
// DecodeCommand reads it strictly; EncodeCommand writes it.
type CommandMessage struct {
	RequestID string `json:"request_id"`
	Action    string `json:"action"`
	VisitID   string `json:"visit_id,omitempty"`
	Duration  string `json:"duration,omitempty"`
	Add       string `json:"add,omitempty"`
	AlertID   string `json:"alert_id,omitempty"`
	InService *bool  `json:"in_service,omitempty"`
	Reason    string `json:"reason,omitempty"`
	FromSeq   uint64 `json:"from_seq,omitempty"`
	ToSeq     uint64 `json:"to_seq,omitempty"`
	Epoch     string `json:"epoch,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// ReplyMessage is the payload of {base}/{room}/reply.
type ReplyMessage struct {
	RequestID string `json:"request_id"`
	// Operator is who sent the command: the {operator} of cmd/{operator},
	// absent for the plain cmd topic.
	Operator string `json:"operator,omitempty"`
	// Action is the command's action whenever it could be read.
	Action string        `json:"action,omitempty"`
	OK     bool          `json:"ok"`
	State  *StateMessage `json:"state,omitempty"`
	Replay *ReplayBody   `json:"replay,omitempty"`
	Error  *ErrorBody    `json:"error,omitempty"`
}

// ReplayBody says what a replay republished: the records of epoch with seq
// FromSeq to ToSeq, Count of them, on events (and alerts), before this reply.
type ReplayBody struct {
	Epoch   string `json:"epoch"`
	FromSeq uint64 `json:"from_seq"`
	ToSeq   uint64 `json:"to_seq"`
	Count   int    `json:"count"`
}

// ErrorBody says why a command was refused.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Blockers, with not_ready, lists what stops a visit from starting:
	// alert ids, and "inspection" while the inspection is not done.
	Blockers []string `json:"blockers,omitempty"`
}

// InfoMessage is the retained payload of {base}/{room}/info: what the room
// is and the rules it applies, published at every connection and whenever
// it changes. It says nothing of what happens in the room.
type InfoMessage struct {
	Version int    `json:"version"` // the contract version
	Room    string `json:"room"`
	Roomd   string `json:"roomd"`   // roomd's version
	Backend string `json:"backend"` // gpio, or sim for a simulated room
	// Epoch is the seq space of the records roomd announces now.
	Epoch  string     `json:"epoch"`
	Policy PolicyInfo `json:"policy"`
	// HeartbeatS: the state is published at least this often; a room
	// silent for longer (and not offline) is stale.
	HeartbeatS int64 `json:"heartbeat_s"`
	// KeepaliveS: the broker publishes the Last Will about 1.5 keepalives
	// after the room falls silent.
	KeepaliveS int64 `json:"keepalive_s"`
	// RetentionS: how long replay finds a record, and a redelivered
	// command is answered from its first reply.
	RetentionS int64 `json:"retention_s"`
	// WindowS: how far back, now, replay finds a record and a redelivered
	// command is answered from its first reply: retention_s, or less when
	// the journal's size bound (journal.max_bytes) made it delete older
	// entries. A consumer must not count on more. Always written, 0
	// included: a consumer that finds none counts on retention_s.
	WindowS int64 `json:"window_s"`
	// CommandRate is the per-identity command limit.
	CommandRate     *CommandRate `json:"command_rate,omitempty"`
	MaxCommandBytes int          `json:"max_command_bytes"`
	// The roles wired (never pins): inputs, the names of the panic
	// points, outputs, and the outputs read back by a feedback line.
	Inputs      []string `json:"inputs"`
	PanicPoints []string `json:"panic_points"`
	Outputs     []string `json:"outputs"`
	Supervised  []string `json:"supervised"`
	// ConfigHash identifies the effective config (16 hex digits of its
	// SHA-256): two rooms with the same hash run the same configuration.
	ConfigHash string `json:"config_hash"`
	// ClockSynced: the room's clock is synchronised to a time server.
	ClockSynced bool `json:"clock_synced"`
	// LastFunctionTest is when the last function test passed; null if
	// none has.
	LastFunctionTest *Time `json:"last_function_test"`
}

// PolicyInfo is the policy in force, every field, durations in seconds.
type PolicyInfo struct {
	Name                 string  `json:"name"`
	MaxDurationS         int64   `json:"max_duration_s"`
	Extension            string  `json:"extension"` // up_to_max or forbidden
	WarningsS            []int64 `json:"warnings_s"`
	EscalateAfterS       int64   `json:"escalate_after_s"`
	RepeatEveryS         int64   `json:"repeat_every_s"`
	ReannounceAfterS     int64   `json:"reannounce_after_s"`
	LockScope            string  `json:"lock_scope"` // visit or always
	LockGraceS           int64   `json:"lock_grace_s"`
	EndOnVacancy         bool    `json:"end_on_vacancy"`
	VacancyHoldS         int64   `json:"vacancy_hold_s"`
	VacateTimeoutS       int64   `json:"vacate_timeout_s"`
	WelfareCheckEveryS   int64   `json:"welfare_check_every_s"` // 0: none
	PanicReset           string  `json:"panic_reset"`           // on_site or ack
	InspectionAfterVisit bool    `json:"inspection_after_visit"`
	FunctionTestEveryS   int64   `json:"function_test_every_s"` // 0: no reminder
}

// PolicyInfoOf is the wire form of a policy.
func PolicyInfoOf(p controller.Policy) PolicyInfo {
	w := make([]int64, 0, len(p.Warnings))
	for _, d := range p.Warnings {
		w = append(w, seconds(d))
	}
	return PolicyInfo{
		Name: p.Name, MaxDurationS: seconds(p.MaxDuration), Extension: p.Extension.String(), WarningsS: w,
		EscalateAfterS: seconds(p.EscalateAfter), RepeatEveryS: seconds(p.RepeatEvery),
		ReannounceAfterS: seconds(p.ReannounceAfter), LockScope: p.LockScope.String(), LockGraceS: seconds(p.LockGrace),
		EndOnVacancy: p.EndOnVacancy, VacancyHoldS: seconds(p.VacancyHold), VacateTimeoutS: seconds(p.VacateTimeout),
		WelfareCheckEveryS: seconds(p.WelfareCheckEvery), PanicReset: p.PanicReset.String(),
		InspectionAfterVisit: p.InspectionAfterVisit, FunctionTestEveryS: seconds(p.FunctionTestEvery),
	}
}

// seconds rounds d to whole seconds.
func seconds(d time.Duration) int64 { return int64(d.Round(time.Second) / time.Second) }

// secondsUp rounds d up to whole seconds, so that 0 means none left.
func secondsUp(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// StateMessageOf converts a controller state for room to its wire form.
func StateMessageOf(room string, epoch Epoch, st controller.State) StateMessage {
	m := StateMessage{
		Version:       ContractVersion,
		Room:          room,
		Epoch:         epoch.String(),
		Seq:           st.Seq,
		At:            T(st.At),
		Phase:         st.Phase.String(),
		Door:          controller.InputDoor.Describe(st.Door),
		Lock:          controller.InputLock.Describe(st.Lock),
		Alerts:        make([]AlertMessage, 0, len(st.Alerts)),
		ServiceReason: st.ServiceReason,
		Outputs:       make(map[string]string, len(controller.Outputs)),
	}
	if v := st.Visit; v != nil {
		m.Visit = &VisitMessage{
			ID:         v.ID,
			StartedAt:  T(v.StartedAt),
			EndsAt:     T(v.EndsAt),
			RemainingS: secondsUp(v.Remaining),
			MaxS:       seconds(v.Max),
		}
	}
	if st.Presence != nil {
		// Privacy: presence leaves the device only outside visits and
		// inspections (the controller leaves it nil there).
		m.Presence = controller.InputPresence.Describe(*st.Presence)
	}
	if st.Staff != nil {
		m.Staff = controller.InputStaff.Describe(*st.Staff)
	}
	for i := range st.Alerts {
		m.Alerts = append(m.Alerts, alertMessageOf(&st.Alerts[i]))
	}
	for _, o := range controller.Outputs {
		m.Outputs[o.String()] = st.Outputs[o].Mode.String()
	}
	return m
}

func alertMessageOf(a *controller.Alert) AlertMessage {
	m := AlertMessage{
		ID:            a.ID,
		Kind:          a.Kind.String(),
		Severity:      a.Severity.String(),
		RaisedAt:      T(a.RaisedAt),
		Acked:         a.Acked,
		AckedAt:       T(a.AckedAt),
		ClearedAt:     T(a.ClearedAt),
		Announcements: a.Announcements,
		Point:         a.Point,
		Source:        a.Source,
		Detail:        a.Detail,
		Reset:         a.Reset,
	}
	if (a.Kind == controller.AlertSensorFault || a.Kind == controller.AlertLineDrift) && a.Input != 0 {
		m.Input = a.Input.String()
	}
	if a.Kind == controller.AlertOutputFault && a.Output != 0 {
		m.Output = a.Output.String()
	}
	return m
}

// EventMessageOf converts a controller record for room to its wire form.
func EventMessageOf(room string, epoch Epoch, r controller.Record) EventMessage {
	m := EventMessage{Room: room, Epoch: epoch.String(), Seq: r.Seq, At: T(r.At), Type: r.Type.String(),
		By: r.By, DueAt: T(r.DueAt)}
	i64 := func(v int64) *int64 { return &v }
	str := func(s string) *string { return &s }
	boolp := func(b bool) *bool { return &b }
	switch r.Type {
	case controller.EventControllerStarted:
		m.Resumed = boolp(r.Resumed)
	case controller.EventVisitStarted:
		m.VisitID = r.VisitID
		m.EndsAt = T(r.EndsAt)
		m.DurationS = i64(seconds(r.Duration))
	case controller.EventVisitExtended:
		m.VisitID = r.VisitID
		m.EndsAt = T(r.EndsAt)
		m.AddedS = i64(seconds(r.Added))
	case controller.EventVisitWarning:
		m.VisitID = r.VisitID
		m.RemainingS = i64(secondsUp(r.Remaining))
		m.Warning = r.Warning
	case controller.EventVisitEnded:
		m.VisitID = r.VisitID
		m.Reason = string(r.EndReason)
	case controller.EventWelfareChecked:
		m.VisitID = r.VisitID
	case controller.EventServiceChanged:
		m.InService = boolp(r.InService)
		m.ServiceReason = str(r.ServiceReason)
	case controller.EventInspectionStarted, controller.EventInspectionEnded:
		m.VisitID = r.VisitID
	case controller.EventFunctionTest:
		if t := r.Test; t != nil {
			m.Mode = t.Mode.String()
			m.Passed = boolp(t.Passed)
			m.Roomd = t.Version
			m.Lines = make([]LineMessage, 0, len(t.Lines))
			for _, l := range t.Lines {
				m.Lines = append(m.Lines, lineMessageOf(l))
			}
		}
	default:
		if r.Type.IsAlert() && r.Alert != nil {
			a := alertMessageOf(r.Alert)
			m.Alert = &a
		}
	}
	return m
}

func lineMessageOf(l controller.LineResult) LineMessage {
	m := LineMessage{Point: l.Point, Sensor: l.Sensor, Result: ResultPassed, Fault: string(l.Fault)}
	if l.Input != 0 {
		m.Input = l.Input.String()
	}
	if l.Output != 0 {
		m.Output = l.Output.String()
	}
	if !l.Passed {
		m.Result = ResultFailed
	}
	return m
}

// mustMarshal encodes v; the wire types always encode.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("contract: encode %T: %v", v, err))
	}
	return b
}

// EncodeReplayReply returns the successful reply to a replay command.
func EncodeReplayReply(operator, requestID string, body *ReplayBody) []byte {
	return mustMarshal(ReplyMessage{RequestID: requestID, Operator: operator, Action: ActionReplay, OK: true, Replay: body})
}

// EncodeState returns the state payload of room.
func EncodeState(room string, epoch Epoch, st controller.State) []byte {
	return mustMarshal(StateMessageOf(room, epoch, st))
}

// EncodeRecord returns the events payload (also the alerts payload for alert
// records) of r in room.
func EncodeRecord(room string, epoch Epoch, r controller.Record) []byte {
	return mustMarshal(EventMessageOf(room, epoch, r))
}

// EncodeReply returns the reply to a command the controller answered, sent
// by operator ("" for the plain cmd topic). An accepted command's reply
// carries st, the state after the command; a refused one carries the
// controller's code and message (and, for not_ready, the blockers).
func EncodeReply(room string, epoch Epoch, operator string, r controller.Reply, st controller.State) []byte {
	m := ReplyMessage{RequestID: r.RequestID, Operator: operator, OK: r.OK()}
	if r.Action != 0 {
		m.Action = r.Action.String()
	}
	if r.OK() {
		s := StateMessageOf(room, epoch, st)
		m.State = &s
	} else {
		m.Error = &ErrorBody{Code: string(r.Code), Message: r.Message, Blockers: r.Blockers}
	}
	return mustMarshal(m)
}

// EncodeRefusal returns the reply to a command refused at the edge, before
// the controller saw it (bad_request, unknown_action, expired, busy, ...).
func EncodeRefusal(operator string, e *CommandError) []byte {
	return mustMarshal(ReplyMessage{
		RequestID: e.RequestID,
		Operator:  operator,
		Action:    e.Action,
		Error:     &ErrorBody{Code: string(e.Code), Message: e.Message},
	})
}

// EncodeCommand returns the cmd payload for c, with expires_at if expiresAt
// is not zero. c.At and c.By (the topic says who) are not carried. It is the
// inverse of DecodeCommand for valid commands.
func EncodeCommand(c controller.Command, expiresAt time.Time) []byte {
	m := CommandMessage{RequestID: c.RequestID, Action: c.Action.String()}
	switch c.Action {
	case controller.ActionStartVisit:
		m.VisitID = c.VisitID
		m.Duration = c.Duration.String()
	case controller.ActionExtendVisit:
		m.Add = c.Duration.String()
	case controller.ActionAckAlert:
		m.AlertID = c.AlertID
	case controller.ActionSetService:
		b := c.InService
		m.InService = &b
		m.Reason = c.Reason
	}
	if !expiresAt.IsZero() {
		m.ExpiresAt = FormatTime(expiresAt)
	}
	return mustMarshal(m)
}

// EncodeReplay returns the cmd payload of a replay request, with expires_at
// if expiresAt is not zero.
func EncodeReplay(requestID string, r Replay, expiresAt time.Time) []byte {
	m := CommandMessage{RequestID: requestID, Action: ActionReplay, FromSeq: r.From, ToSeq: r.To}
	if r.Epoch != 0 {
		m.Epoch = r.Epoch.String()
	}
	if !expiresAt.IsZero() {
		m.ExpiresAt = FormatTime(expiresAt)
	}
	return mustMarshal(m)
}
