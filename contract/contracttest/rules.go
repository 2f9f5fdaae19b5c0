package contracttest

import (
	"encoding/json"
	"strings"
)

// The rules of docs/mqtt.md that a JSON Schema can say are in
// docs/asyncapi.yaml; the others only the prose (and roomd's code and its
// tests) carry. Each rule comes with a payload that breaks it: the schema
// must refuse the payload of a rule it encodes, and accept the payload of a
// rule it cannot (a message alone does not show the break), so that the
// lists stay true both ways; contract's tests check them with this
// package's validator, link's slow tests with ajv (docs/integrator).

const (
	rEp    = `"epoch":"3f9c2a7d41e8b605"`
	rAt    = `"at":"2026-03-01T09:00:00.000Z"`
	rOuts  = `"outputs":{"in_use":"on","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"}`
	rVisit = `{"id":"v-42","started_at":"2026-03-01T09:00:00.000Z","ends_at":"2026-03-01T10:00:00.000Z","remaining_s":3600,"max_s":7200}`
	rExp   = `"expires_at":"2026-03-01T09:05:00.000Z"`
)

func rState(phase, visit, extra, alerts string) string {
	return `{"version":2,"room":"room-a",` + rEp + `,"seq":8,` + rAt + `,"phase":"` + phase + `","visit":` + visit +
		`,"door":"closed","lock":"unlocked"` + extra + `,"alerts":[` + alerts + `],"service_reason":"",` + rOuts + `}`
}

func rAlert(acked string) string {
	return `{"id":"panic-2","kind":"panic","severity":"critical","raised_at":"2026-03-01T09:30:00.000Z",` + acked + `,"announcements":1,"point":"bed"}`
}

// Encoded is a rule the schema says: Good validates, and the same payload
// with From replaced by To (the break, and only it) does not.
type Encoded struct {
	Rule, Message, Good, From, To string
}

// Bad is Good with the break.
func (e Encoded) Bad() string { return strings.Replace(e.Good, e.From, e.To, 1) }

// Prose is a rule only the prose can carry, and a payload that breaks it
// which the schema accepts.
type Prose struct {
	Rule, Message, Payload string
}

// EncodedRules: the schema refuses each break.
var EncodedRules = []Encoded{
	{"no presence in the state during a visit", "state", rState("idle", "null", `,"presence":"present"`, ""), `"idle","visit":null`, `"in_visit","visit":` + rVisit},
	{"no presence in the state in overtime", "state", rState("idle", "null", `,"presence":"absent"`, ""), `"idle","visit":null`, `"overtime","visit":` + rVisit},
	{"no presence in the state during the inspection", "state", rState("out_of_service", "null", `,"presence":"unknown"`, ""), `"out_of_service"`, `"inspection"`},
	{"acked_at only when acked", "state", rState("idle", "null", "", rAlert(`"acked":true,"acked_at":"2026-03-01T09:31:00.000Z"`)), `"acked":true`, `"acked":false`},
	{"acked_at whenever acked", "state", rState("idle", "null", "", rAlert(`"acked":false`)), `"acked":false`, `"acked":true`},
	{"acked_at only when acked, on a record", "alert", `{"room":"room-a",` + rEp + `,"seq":9,` + rAt + `,"type":"alert_acked","by":"guard-7","alert":` +
		rAlert(`"acked":true,"acked_at":"2026-03-01T09:31:00.000Z"`) + `}`, `"acked":true`, `"acked":false`},
	{"not_ready carries blockers", "reply", `{"request_id":"b-1","action":"start_visit","ok":false,"error":{"code":"not_ready","message":"x","blockers":["panic-2"]}}`,
		`,"blockers":["panic-2"]`, ``},
	{"blockers only with not_ready", "reply", `{"request_id":"b-1","action":"start_visit","ok":false,"error":{"code":"not_ready","message":"x","blockers":["panic-2"]}}`,
		`not_ready`, `visit_in_progress`},
	{"no U+FFFD in a command's request_id", "command", `{"request_id":"b-1","action":"end_visit",` + rExp + `}`, `b-1`, "b-\ufffd"},
	{"no U+FFFD in a reply's request_id", "reply", `{"request_id":"b-1","action":"end_visit","ok":false,"error":{"code":"no_visit","message":"x"}}`, `b-1`, "b-\ufffd"},
	{"no control character in a request_id", "command", `{"request_id":"b-1","action":"end_visit",` + rExp + `}`, `b-1`, "b-\u0085"},
	{"no control character in reason", "command", `{"request_id":"b-1","action":"set_service","in_service":false,"reason":"wet paint",` + rExp + `}`, `wet paint`, `wet\npaint`},
	{"no format character in reason", "command", `{"request_id":"b-1","action":"set_service","in_service":false,"reason":"wet paint",` + rExp + `}`, `wet paint`, `wet\u200bpaint`},
	{"no control character in service_reason", "event", `{"room":"room-a",` + rEp + `,"seq":9,` + rAt + `,"type":"service_changed","in_service":false,"service_reason":"a b"}`, `a b`, `a\tb`},
	{"no control character in alert_id", "command", `{"request_id":"b-1","action":"ack_alert","alert_id":"panic-2",` + rExp + `}`, `panic-2`, `panic-2\u0000`},
	{"an operator is an operator id", "reply", `{"request_id":"g-1","operator":"guard-7","action":"end_visit","ok":false,"error":{"code":"no_visit","message":"x"}}`, `guard-7`, `guard 7`},
	{"an invalid_operator reply names the topic's level as it came", "reply", `{"request_id":"g-1","operator":"guard 7","action":"end_visit","ok":false,"error":{"code":"invalid_operator","message":"x"}}`, `invalid_operator`, `no_visit`},
	{"on_site is no operator", "reply", `{"request_id":"g-1","operator":"guard-7","action":"get_state","ok":true,"state":` + rState("idle", "null", "", "") + `}`, `guard-7`, `on_site`},
	{"an extension adds whole seconds, at least one", "event", `{"room":"room-a",` + rEp + `,"seq":9,` + rAt + `,"type":"visit_extended","visit_id":"v-42","ends_at":"2026-03-01T10:00:00.000Z","added_s":1}`, `"added_s":1`, `"added_s":0`},
	{"a refusal's code is of the vocabulary", "reply", `{"request_id":"b-1","ok":false,"error":{"code":"not_authorized","message":"x"}}`, `not_authorized`, `forbidden`},
}

// ProseRules: the schema accepts each payload, which breaks the rule in a
// way a message alone cannot show; the prose says it, roomd's code and
// tests keep it.
var ProseRules = []Prose{
	{"durations in commands are at least 1s (a pattern cannot weigh 0.5s against 1s cleanly)", "command",
		`{"request_id":"b-1","action":"extend_visit","add":"0.5s",` + rExp + `}`},
	{"expires_at is at most 1 h ahead of the room's clock (the room's clock is not in the message)", "command",
		`{"request_id":"b-1","action":"end_visit","expires_at":"2099-03-01T09:05:00.000Z"}`},
	{"remaining_s is ends_at minus at, rounded up (arithmetic between fields)", "state",
		rState("in_visit", `{"id":"v-42","started_at":"2026-03-01T09:00:00.000Z","ends_at":"2026-03-01T10:00:00.000Z","remaining_s":5,"max_s":7200}`, "", "")},
	{"a visit ends after it starts (times compared between fields)", "state",
		rState("in_visit", `{"id":"v-42","started_at":"2026-03-01T10:00:00.000Z","ends_at":"2026-03-01T09:00:00.000Z","remaining_s":0,"max_s":7200}`, "", "")},
	{"an acknowledgement is not before the alert (times compared between fields)", "state",
		rState("idle", "null", "", rAlert(`"acked":true,"acked_at":"2026-03-01T09:00:00.000Z"`))},
	{"outside visits there is no visit (phase and visit agree)", "state", rState("idle", rVisit, "", "")},
	{"seq is one more per record within an epoch (a property of the stream)", "event",
		`{"room":"room-a",` + rEp + `,"seq":99999,` + rAt + `,"type":"door_opened"}`},
	{"the same (room, epoch, seq) always carries the same payload (between messages)", "event",
		`{"room":"room-a",` + rEp + `,"seq":8,` + rAt + `,"type":"door_closed"}`},
	{"a state never arrives before the record whose seq it carries (ordering)", "state", rState("idle", "null", `,"presence":"absent"`, "")},
	{"blockers name the room's active alerts (between messages)", "reply",
		`{"request_id":"b-1","action":"start_visit","ok":false,"error":{"code":"not_ready","message":"x","blockers":["panic-99"]}}`},
	{"a reply answers a command sent with its (operator, request_id) (between messages)", "reply",
		`{"request_id":"never-sent","action":"end_visit","ok":false,"error":{"code":"no_visit","message":"x"}}`},
	{"alert ids are unique for the life of the room (between messages)", "state",
		rState("idle", "null", "", rAlert(`"acked":false`)+","+rAlert(`"acked":false`))},
	{"a refusal at the edge names the action only if it could be read (the payload is not in the reply)", "reply",
		`{"request_id":"b-1","action":"end_visit","ok":false,"error":{"code":"bad_request","message":"malformed JSON"}}`},
}

// Case is one payload and whether the schema of its message must accept
// it, for a validator nobody here wrote (docs/integrator/check-asyncapi.mjs).
type Case struct {
	Name    string          `json:"name"`
	Message string          `json:"message"`
	Payload json.RawMessage `json:"payload"`
	Valid   bool            `json:"valid"`
}

// Cases lists every rule's payloads: each encoded rule's good one (valid)
// and its break (not), each prose rule's break (valid).
func Cases() []Case {
	var out []Case
	for _, r := range EncodedRules {
		out = append(out, Case{Name: r.Rule + " (as it should be)", Message: r.Message, Payload: json.RawMessage(r.Good), Valid: true},
			Case{Name: r.Rule, Message: r.Message, Payload: json.RawMessage(r.Bad()), Valid: false})
	}
	for _, r := range ProseRules {
		out = append(out, Case{Name: r.Rule + " (prose only)", Message: r.Message, Payload: json.RawMessage(r.Payload), Valid: true})
	}
	return out
}
