package link

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
)

// Availability payloads (plain text, retained).
const (
	Online  = "online"
	Offline = "offline"
)

// StateMessage is the retained payload of {base}/{room}/state.
type StateMessage struct {
	Version int    `json:"version"`
	Room    string `json:"room"`
	// Epoch and Seq name the latest record announced; the state never
	// reaches a consumer before that record.
	Epoch string    `json:"epoch"`
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	Phase string    `json:"phase"`
	// Visit is null outside visits.
	Visit *VisitMessage `json:"visit"`
	Door  string        `json:"door"`
	Lock  string        `json:"lock"`
	// Presence is present only outside visits (privacy rule).
	Presence      string            `json:"presence,omitempty"`
	Alerts        []AlertMessage    `json:"alerts"`
	ServiceReason string            `json:"service_reason"`
	Outputs       map[string]string `json:"outputs"`
}

// VisitMessage describes the running visit.
type VisitMessage struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	EndsAt    time.Time `json:"ends_at"`
	// RemainingS is the time left in whole seconds, rounded up; 0 in overtime.
	RemainingS int64 `json:"remaining_s"`
	// MaxS is the policy maximum length of the visit in seconds.
	MaxS int64 `json:"max_s"`
}

// AlertMessage is an alert, as listed in the state and carried by alert_* events.
type AlertMessage struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	RaisedAt time.Time `json:"raised_at"`
	Acked    bool      `json:"acked"`
	// Extensions.
	AckedAt       time.Time `json:"acked_at,omitzero"`
	ClearedAt     time.Time `json:"cleared_at,omitzero"`
	Announcements int       `json:"announcements"`
	Input         string    `json:"input,omitempty"`  // sensor_fault
	Source        string    `json:"source,omitempty"` // system_fault
	Detail        string    `json:"detail,omitempty"` // sensor_fault, system_fault
	Reset         bool      `json:"reset,omitempty"`  // panic: reset on site with the staff input
}

// EventMessage is the payload of {base}/{room}/events and, for the alert
// lifecycle, {base}/{room}/alerts. Which optional fields appear depends on Type.
type EventMessage struct {
	Room string `json:"room"`
	// Epoch is the record's seq space: consumers deduplicate by
	// (room, epoch, seq).
	Epoch string    `json:"epoch"`
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	Type  string    `json:"type"`

	VisitID    string        `json:"visit_id,omitempty"`    // visit_*, welfare_checked
	EndsAt     time.Time     `json:"ends_at,omitzero"`      // visit_started, visit_extended
	DurationS  *int64        `json:"duration_s,omitempty"`  // visit_started: planned length; visit_extended: added
	RemainingS *int64        `json:"remaining_s,omitempty"` // visit_warning
	Warning    int           `json:"warning,omitempty"`     // visit_warning: 1 for the first
	Reason     *string       `json:"reason,omitempty"`      // visit_ended, alert_escalated, service_changed
	Alert      *AlertMessage `json:"alert,omitempty"`       // alert_*
	InService  *bool         `json:"in_service,omitempty"`  // service_changed
	Resumed    *bool         `json:"resumed,omitempty"`     // controller_started
}

// CommandMessage is the payload of {base}/{room}/cmd. DecodeCommand reads it
// strictly; EncodeCommand writes it.
type CommandMessage struct {
	RequestID string `json:"request_id"`
	Action    string `json:"action"`
	VisitID   string `json:"visit_id,omitempty"`
	Duration  string `json:"duration,omitempty"`
	By        string `json:"by,omitempty"`
	AlertID   string `json:"alert_id,omitempty"`
	InService *bool  `json:"in_service,omitempty"`
	Reason    string `json:"reason,omitempty"`
	FromSeq   uint64 `json:"from_seq,omitempty"`
	ToSeq     uint64 `json:"to_seq,omitempty"`
	Epoch     string `json:"epoch,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// ReplyMessage is the payload of {base}/{room}/cmd/reply.
type ReplyMessage struct {
	RequestID string `json:"request_id"`
	// Operator is who sent the command: the {operator} of cmd/{operator},
	// absent for the plain cmd topic.
	Operator string        `json:"operator,omitempty"`
	Action   string        `json:"action,omitempty"`
	OK       bool          `json:"ok"`
	State    *StateMessage `json:"state,omitempty"`
	Replay   *ReplayBody   `json:"replay,omitempty"`
	Error    *ErrorBody    `json:"error,omitempty"`
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
}

// wireTime is the form of every timestamp on the wire: UTC, millisecond precision.
func wireTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// TimeLayout is the layout of every timestamp on the wire: RFC 3339 in UTC
// with exactly three fraction digits.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t as the wire does.
func FormatTime(t time.Time) string { return t.UTC().Truncate(time.Millisecond).Format(TimeLayout) }

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
func StateMessageOf(room string, epoch journal.Epoch, st controller.State) StateMessage {
	m := StateMessage{
		Version:       ContractVersion,
		Room:          room,
		Epoch:         epoch.String(),
		Seq:           st.Seq,
		At:            wireTime(st.At),
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
			StartedAt:  wireTime(v.StartedAt),
			EndsAt:     wireTime(v.EndsAt),
			RemainingS: secondsUp(v.Remaining),
			MaxS:       seconds(v.Max),
		}
	} else if st.Presence != nil {
		// Privacy: presence leaves the device only outside visits.
		m.Presence = controller.InputPresence.Describe(*st.Presence)
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
		RaisedAt:      wireTime(a.RaisedAt),
		Acked:         a.Acked,
		AckedAt:       wireTime(a.AckedAt),
		ClearedAt:     wireTime(a.ClearedAt),
		Announcements: a.Announcements,
		Source:        a.Source,
		Detail:        a.Detail,
		Reset:         a.Reset,
	}
	if a.Kind == controller.AlertSensorFault && a.Input != 0 {
		m.Input = a.Input.String()
	}
	return m
}

// EventMessageOf converts a controller record for room to its wire form.
func EventMessageOf(room string, epoch journal.Epoch, r controller.Record) EventMessage {
	m := EventMessage{Room: room, Epoch: epoch.String(), Seq: r.Seq, At: wireTime(r.At), Type: r.Type.String()}
	i64 := func(v int64) *int64 { return &v }
	str := func(s string) *string { return &s }
	boolp := func(b bool) *bool { return &b }
	switch r.Type {
	case controller.EventControllerStarted:
		m.Resumed = boolp(r.Resumed)
	case controller.EventVisitStarted:
		m.VisitID = r.VisitID
		m.EndsAt = wireTime(r.EndsAt)
		m.DurationS = i64(seconds(r.Duration))
	case controller.EventVisitExtended:
		m.VisitID = r.VisitID
		m.EndsAt = wireTime(r.EndsAt)
		m.DurationS = i64(seconds(r.Added))
	case controller.EventVisitWarning:
		m.VisitID = r.VisitID
		m.RemainingS = i64(secondsUp(r.Remaining))
		m.Warning = r.Warning
	case controller.EventVisitEnded:
		m.VisitID = r.VisitID
		m.Reason = str(string(r.EndReason))
	case controller.EventWelfareChecked:
		m.VisitID = r.VisitID
	case controller.EventServiceChanged:
		m.InService = boolp(r.InService)
		m.Reason = str(r.ServiceReason)
	case controller.EventInspectionStarted, controller.EventInspectionEnded:
		m.VisitID = r.VisitID
	default:
		if r.Type.IsAlert() && r.Alert != nil {
			a := alertMessageOf(r.Alert)
			m.Alert = &a
		}
	}
	return m
}

// mustMarshal encodes v; the wire types always encode.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("link: encode %T: %v", v, err))
	}
	return b
}

// EncodeState returns the state payload of room.
func EncodeState(room string, epoch journal.Epoch, st controller.State) []byte {
	return mustMarshal(StateMessageOf(room, epoch, st))
}

// EncodeRecord returns the events payload (also the alerts payload for alert
// records) of r in room.
func EncodeRecord(room string, epoch journal.Epoch, r controller.Record) []byte {
	return mustMarshal(EventMessageOf(room, epoch, r))
}

// EncodeReply returns the reply to a command the controller answered, sent
// by operator ("" for the plain cmd topic). An accepted command's reply
// carries st, the state after the command; a refused one carries the
// controller's code and message.
func EncodeReply(room string, epoch journal.Epoch, operator string, r controller.Reply, st controller.State) []byte {
	m := ReplyMessage{RequestID: r.RequestID, Operator: operator, OK: r.OK()}
	if r.Action != 0 {
		m.Action = r.Action.String()
	}
	if r.OK() {
		s := StateMessageOf(room, epoch, st)
		m.State = &s
	} else {
		m.Error = &ErrorBody{Code: string(r.Code), Message: r.Message}
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
// is not zero. c.At is not carried. It is the inverse of DecodeCommand for
// valid commands.
func EncodeCommand(c controller.Command, expiresAt time.Time) []byte {
	m := CommandMessage{RequestID: c.RequestID, Action: c.Action.String()}
	switch c.Action {
	case controller.ActionStartVisit:
		m.VisitID = c.VisitID
		m.Duration = c.Duration.String()
	case controller.ActionExtendVisit:
		m.By = c.Duration.String()
	case controller.ActionAckAlert:
		m.AlertID = c.AlertID
	case controller.ActionSetService:
		b := c.InService
		m.InService = &b
		m.Reason = c.Reason
	}
	if !expiresAt.IsZero() {
		m.ExpiresAt = expiresAt.UTC().Format(time.RFC3339Nano)
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
		m.ExpiresAt = expiresAt.UTC().Format(time.RFC3339Nano)
	}
	return mustMarshal(m)
}
