package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/roomd/roomd/controller"
)

// Refusal codes added at the MQTT edge, on top of the controller's
// (controller.Codes). bad_request is shared with the controller.
const (
	// CodeBadRequest: the command cannot be read: not UTF-8 JSON, not one
	// object, trailing data, an unknown, duplicate, missing or mistyped
	// field, a field that does not belong to the action, an invalid
	// request_id or expires_at, or larger than the size limit.
	CodeBadRequest = controller.CodeBadRequest
	// CodeUnknownAction: action is not one of the documented actions.
	CodeUnknownAction controller.Code = "unknown_action"
	// CodeExpired: expires_at is in the past when the command is read.
	CodeExpired controller.Code = "expired"
	// CodeBusy: roomd could not queue the command (its inbound queue is
	// full); the command was not applied and may be sent again.
	CodeBusy controller.Code = "busy"
)

// CodeReplayUnavailable: replay asked for records the journal does not hold
// (compacted after the retention, lost, of an epoch it never had, or not
// announced yet).
const CodeReplayUnavailable controller.Code = "replay_unavailable"

// CodeNotAuthorized: the room's config does not take this command from the
// identity it came from (the operator of cmd/{operator}, or the booking
// system's plain cmd topic): not an accepted operator, or one that may only
// ask (get_state, replay). The broker let it through; the room did not.
const CodeNotAuthorized controller.Code = "not_authorized"

// LinkCodes lists the refusal codes the MQTT edge produces itself. The
// decoder also produces controller.CodeInvalidDuration and
// controller.CodeInvalidVisitID.
var LinkCodes = []controller.Code{CodeBadRequest, CodeUnknownAction, CodeExpired, CodeBusy, CodeReplayUnavailable, CodeNotAuthorized}

// ActionReplay is the name of the replay command, which the edge answers
// itself from the journal: {"action":"replay","from_seq":N[,"to_seq":M][,"epoch":"…"]}.
const ActionReplay = "replay"

// MaxExpiresAhead bounds how far in the future expires_at may be: a command
// must not be able to sit in a queue, or be retained, and act much later.
const MaxExpiresAhead = time.Hour

// Replay is a decoded replay request.
type Replay struct {
	Epoch Epoch // zero: the room's current epoch
	From  uint64
	To    uint64 // zero: up to the latest
}

// Command is a decoded command: a controller command, or a replay request
// that the edge answers itself.
type Command struct {
	controller.Command
	// Replay is set for the replay action (Command.Action is then zero).
	Replay *Replay
	// ExpiresAt is the command's expiry; zero if it has none.
	ExpiresAt time.Time
}

// ActionName returns the action's wire name.
func (c Command) ActionName() string {
	if c.Replay != nil {
		return ActionReplay
	}
	return c.Action.String()
}

// changesState reports whether a command of action a changes the room: such
// commands must carry expires_at.
func changesState(a controller.CommandAction) bool { return a != controller.ActionGetState }

// ActionNames lists every command action's wire name, the edge's replay too.
func ActionNames() []string {
	names := make([]string, 0, len(controller.CommandActions)+1)
	for _, a := range controller.CommandActions {
		names = append(names, a.String())
	}
	return append(names, ActionReplay)
}

// Limits of command fields.
const (
	// DefaultMaxCommand is the command size limit used when none is configured.
	DefaultMaxCommand = 4096
	// MaxRequestID is the longest request_id, in characters.
	MaxRequestID = 64
	// MaxReason is the longest set_service reason, in characters.
	MaxReason = 256
	// MaxAlertID is the longest alert_id, in characters.
	MaxAlertID = 64
)

// CommandError is a command refused at the edge. RequestID is the command's
// request_id if it could be read and is valid, else ""; Action is the action
// if it is a known one, else "".
type CommandError struct {
	RequestID string
	Action    string
	Code      controller.Code
	Message   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("command %q refused: %s: %s", e.RequestID, e.Code, e.Message)
}

// fields of a command and which actions take them. request_id and action are
// required for every action; expires_at is required by the actions that
// change the room and optional for get_state and replay.
var (
	commonFields = []string{"request_id", "action", "expires_at"}
	replayFields = struct{ required, optional []string }{required: []string{"from_seq"}, optional: []string{"to_seq", "epoch"}}
	actionFields = map[controller.CommandAction]struct{ required, optional []string }{
		controller.ActionStartVisit:  {required: []string{"visit_id", "duration"}},
		controller.ActionExtendVisit: {required: []string{"add"}},
		controller.ActionEndVisit:    {},
		controller.ActionAckAlert:    {required: []string{"alert_id"}},
		controller.ActionSetService:  {required: []string{"in_service"}, optional: []string{"reason"}},
		controller.ActionSetReady:    {},
		controller.ActionGetState:    {},
	}
	knownFields = map[string]bool{
		"request_id": true, "action": true, "expires_at": true, "visit_id": true, "duration": true,
		"add": true, "alert_id": true, "in_service": true, "reason": true,
		"from_seq": true, "to_seq": true, "epoch": true,
	}
)

// DecodeCommand reads a cmd payload strictly and returns the command, or the
// refusal to send back. The returned command's At is zero: the caller stamps
// it with its own clock.
//
// Checks, in order: size (maxSize bytes; 0 means DefaultMaxCommand), UTF-8,
// exactly one JSON object with no trailing data, field names known and exact
// (case-sensitive) and not repeated, request_id (1 to 64 printable
// characters), action known, the fields the action requires present and no
// field of another action, field types, expires_at (RFC 3339, refused with
// expired if not after now), then values: visit_id (controller.ValidVisitID),
// durations (time.ParseDuration, at least controller.MinDuration), alert_id and reason length.
// Whether the command fits the room's phase and policy is the controller's
// business.
func DecodeCommand(payload []byte, maxSize int, now time.Time) (Command, *CommandError) {
	if maxSize <= 0 {
		maxSize = DefaultMaxCommand
	}
	var cmd Command
	refuse := func(code controller.Code, format string, args ...any) (Command, *CommandError) {
		e := &CommandError{RequestID: cmd.RequestID, Code: code, Message: fmt.Sprintf(format, args...)}
		if cmd.Action != 0 || cmd.Replay != nil {
			e.Action = cmd.ActionName()
		}
		return Command{}, e
	}
	if len(payload) > maxSize {
		return refuse(CodeBadRequest, "command is %d bytes, above the limit of %d", len(payload), maxSize)
	}
	if !utf8.Valid(payload) {
		return refuse(CodeBadRequest, "command is not valid UTF-8")
	}
	fields, err := readObject(payload)
	if err != nil {
		cmd.RequestID = PeekRequestID(payload, maxSize)
		e := &CommandError{RequestID: cmd.RequestID, Action: peekAction(payload), Code: CodeBadRequest, Message: err.Error()}
		return Command{}, e
	}

	rawID, ok := fields["request_id"]
	if !ok {
		return refuse(CodeBadRequest, "missing field request_id")
	}
	id, err := stringField("request_id", rawID)
	if err != nil {
		return refuse(CodeBadRequest, "%v", err)
	}
	if !validID(id) {
		return refuse(CodeBadRequest, "request_id must be 1 to %d printable characters (an escape that is not a valid character does not count)", MaxRequestID)
	}
	cmd.RequestID = id

	rawAction, ok := fields["action"]
	if !ok {
		return refuse(CodeBadRequest, "missing field action")
	}
	actionName, err := stringField("action", rawAction)
	if err != nil {
		return refuse(CodeBadRequest, "%v", err)
	}
	var spec struct{ required, optional []string }
	if actionName == ActionReplay {
		cmd.Replay = &Replay{}
		spec = replayFields
	} else {
		action, err := controller.ParseCommandAction(actionName)
		if err != nil {
			return refuse(CodeUnknownAction, "unknown action %q (want one of %s)", truncate(actionName, 64), actionList())
		}
		cmd.Action = action
		spec = actionFields[action]
	}
	for _, f := range spec.required {
		if _, ok := fields[f]; !ok {
			return refuse(CodeBadRequest, "missing field %s (required by %s)", f, cmd.ActionName())
		}
	}
	for f := range fields {
		if !contains(commonFields, f) && !contains(spec.required, f) && !contains(spec.optional, f) {
			return refuse(CodeBadRequest, "field %s does not belong to action %s", f, cmd.ActionName())
		}
	}
	str := map[string]string{}
	num := map[string]uint64{}
	for f, raw := range fields {
		switch f {
		case "in_service":
			var b bool
			if !isJSONBool(raw) || json.Unmarshal(raw, &b) != nil {
				return refuse(CodeBadRequest, "field in_service must be true or false")
			}
			cmd.InService = b
			continue
		case "from_seq", "to_seq":
			n, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil || n == 0 {
				return refuse(CodeBadRequest, "field %s must be a whole number from 1", f)
			}
			num[f] = n
			continue
		}
		s, err := stringField(f, raw)
		if err != nil {
			return refuse(CodeBadRequest, "%v", err)
		}
		str[f] = s
	}

	if s, ok := str["expires_at"]; ok {
		exp, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return refuse(CodeBadRequest, "expires_at %q is not an RFC 3339 time", truncate(s, 64))
		}
		if !now.Before(exp) {
			return refuse(CodeExpired, "command expired at %s (now %s)", FormatTime(exp), FormatTime(now))
		}
		if exp.Sub(now) > MaxExpiresAhead {
			return refuse(CodeBadRequest, "expires_at %s is more than %s ahead of the room's clock (%s)", FormatTime(exp), MaxExpiresAhead, FormatTime(now))
		}
		cmd.ExpiresAt = exp
	} else if cmd.Replay == nil && changesState(cmd.Action) {
		return refuse(CodeBadRequest, "missing field expires_at (required by %s: a command that changes the room must not be able to act late)", cmd.Action)
	}

	if r := cmd.Replay; r != nil {
		r.From, r.To = num["from_seq"], num["to_seq"]
		if r.To != 0 && r.To < r.From {
			return refuse(CodeBadRequest, "to_seq %d is below from_seq %d", r.To, r.From)
		}
		if s, ok := str["epoch"]; ok {
			ep, err := ParseEpoch(s)
			if err != nil {
				return refuse(CodeBadRequest, "%v", err)
			}
			r.Epoch = ep
		}
		return cmd, nil
	}

	switch cmd.Action {
	case controller.ActionStartVisit:
		cmd.VisitID = str["visit_id"]
		if !controller.ValidVisitID(cmd.VisitID) {
			return refuse(controller.CodeInvalidVisitID, "visit_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		}
		d, msg := parsePositive("duration", str["duration"])
		if msg != "" {
			return refuse(controller.CodeInvalidDuration, "%s", msg)
		}
		cmd.Duration = d
	case controller.ActionExtendVisit:
		d, msg := parsePositive("add", str["add"])
		if msg != "" {
			return refuse(controller.CodeInvalidDuration, "%s", msg)
		}
		cmd.Duration = d
	case controller.ActionAckAlert:
		cmd.AlertID = str["alert_id"]
		if !validText(cmd.AlertID, 1, MaxAlertID) {
			return refuse(CodeBadRequest, "alert_id must be 1 to %d printable characters", MaxAlertID)
		}
	case controller.ActionSetService:
		cmd.Reason = str["reason"]
		if !validText(cmd.Reason, 0, MaxReason) {
			return refuse(CodeBadRequest, "reason must be at most %d printable characters", MaxReason)
		}
	}
	return cmd, nil
}

// validID reports whether a request_id is usable: 1 to MaxRequestID
// printable characters, none of them U+FFFD. JSON decoding turns every
// invalid escape (a lone surrogate such as \ud800) into U+FFFD, so two
// different ids could decode alike; refusing U+FFFD keeps decoding one to one,
// and a request_id is compared as decoded.
func validID(id string) bool {
	return validText(id, 1, MaxRequestID) && !strings.ContainsRune(id, utf8.RuneError)
}

// PeekRequestID returns the request_id of a cmd payload read leniently (any
// other content may be wrong), or "" if it is absent, not a string, not 1 to
// 64 printable characters, or the payload is above maxSize bytes (0 means
// DefaultMaxCommand). Use it to look a redelivered command up in Replies
// before decoding, and to address refusals.
func PeekRequestID(payload []byte, maxSize int) string {
	if maxSize <= 0 {
		maxSize = DefaultMaxCommand
	}
	if len(payload) > maxSize || !utf8.Valid(payload) {
		return ""
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if dec.Decode(&m) != nil {
		return ""
	}
	raw, ok := m["request_id"]
	if !ok {
		return ""
	}
	id, err := stringField("request_id", raw)
	if err != nil || !validID(id) {
		return ""
	}
	return id
}

// peekAction returns the action of a payload read leniently, if it names a
// known action, else "": the reply says which action was refused whenever
// it could be read.
// CheckOperator refuses a command that arrived on cmd/{operator} (onTopic)
// with an operator level that is not an operator id, an empty level
// included: cmd/ is not the plain cmd topic. The plain cmd topic (onTopic
// false, op "") passes.
func CheckOperator(op string, onTopic bool, payload []byte, maxSize int) *CommandError {
	if !onTopic || controller.ValidOperatorID(op) {
		return nil
	}
	return &CommandError{RequestID: PeekRequestID(payload, maxSize), Action: peekAction(payload),
		Code:    controller.CodeInvalidOperator,
		Message: fmt.Sprintf("operator %q in the topic is not an operator id (1 to 64 of A-Z a-z 0-9 . _ : -, not on_site)", truncate(op, 64))}
}

// IsQuery reports whether a command only asks (get_state, replay) and
// changes nothing in the room: what an identity that may only read is
// allowed to send.
func (c Command) IsQuery() bool {
	return c.Replay != nil || c.Action == controller.ActionGetState
}

// PeekAction returns the action of a payload read leniently, if it names a
// known action, else "".
func PeekAction(payload []byte) string { return peekAction(payload) }

func peekAction(payload []byte) string {
	var m map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(payload)).Decode(&m) != nil {
		return ""
	}
	var name string
	if json.Unmarshal(m["action"], &name) != nil {
		return ""
	}
	if name == ActionReplay {
		return name
	}
	if a, err := controller.ParseCommandAction(name); err == nil {
		return a.String()
	}
	return ""
}

// readObject reads payload as exactly one JSON object with known, distinct,
// exactly spelled keys and nothing after it.
func readObject(payload []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("command must be a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed JSON: object key is not a string")
		}
		if !knownFields[key] {
			return nil, fmt.Errorf("unknown field %q", truncate(key, 64))
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("field %s given twice", key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("malformed JSON in field %s: %v", key, err)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the command object")
	}
	return fields, nil
}

func stringField(name string, raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("field %s must be a string", name)
	}
	return s, nil
}

func isJSONBool(raw json.RawMessage) bool {
	return string(raw) == "true" || string(raw) == "false"
}

func parsePositive(field, s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("%s %q is not a duration like \"1h30m\" or \"90s\"", field, truncate(s, 64))
	}
	if d <= 0 {
		return 0, fmt.Sprintf("%s must be positive, got %s", field, d)
	}
	if d < controller.MinDuration {
		// Records carry whole seconds (duration_s, added_s): a shorter
		// one would be announced as lasting nothing.
		return 0, fmt.Sprintf("%s must be at least %s (records count whole seconds), got %s", field, controller.MinDuration, d)
	}
	return d, ""
}

// validText reports whether s has between min and max characters, all printable.
func validText(s string, min, max int) bool {
	n := utf8.RuneCountInString(s)
	if n < min || n > max {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func actionList() string { return strings.Join(ActionNames(), ", ") }
