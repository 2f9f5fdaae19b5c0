package contract

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

var now = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestDecodeCommandAccepts(t *testing.T) {
	cases := []struct {
		payload string
		want    Command
	}{
		{`{"request_id":"r1","action":"start_visit","visit_id":"v-1","duration":"1h30m","expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: 90 * time.Minute}, ExpiresAt: now.Add(5 * time.Minute)}},
		{`{"request_id":"r2","action":"extend_visit","add":"10m","expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r2", Action: controller.ActionExtendVisit, Duration: 10 * time.Minute}, ExpiresAt: now.Add(5 * time.Minute)}},
		{`{"request_id":"r3","action":"end_visit","expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r3", Action: controller.ActionEndVisit}, ExpiresAt: now.Add(5 * time.Minute)}},
		{`{"request_id":"r4","action":"ack_alert","alert_id":"panic-3","expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r4", Action: controller.ActionAckAlert, AlertID: "panic-3"}, ExpiresAt: now.Add(5 * time.Minute)}},
		{`{"request_id":"r5","action":"set_service","in_service":false,"reason":"cleaning","expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r5", Action: controller.ActionSetService, InService: false, Reason: "cleaning"}, ExpiresAt: now.Add(5 * time.Minute)}},
		{`{"request_id":"r6","action":"set_service","in_service":true,"expires_at":"2026-03-01T10:05:00Z"}`,
			Command{Command: controller.Command{RequestID: "r6", Action: controller.ActionSetService, InService: true}, ExpiresAt: now.Add(5 * time.Minute)}},
		{` {"action":"get_state","request_id":"r7 with spaces","expires_at":"2026-03-01T10:00:01Z"}  ` + "\n",
			Command{Command: controller.Command{RequestID: "r7 with spaces", Action: controller.ActionGetState}, ExpiresAt: now.Add(time.Second)}},
		{`{"request_id":"r8","action":"replay","from_seq":7}`, Command{Command: controller.Command{RequestID: "r8"}, Replay: &Replay{From: 7}}},
		{`{"request_id":"r9","action":"replay","from_seq":7,"to_seq":9,"epoch":"00000000000000ff"}`,
			Command{Command: controller.Command{RequestID: "r9"}, Replay: &Replay{From: 7, To: 9, Epoch: 255}}},
	}
	for _, tc := range cases {
		t.Run(tc.want.RequestID, func(t *testing.T) {
			got, cerr := DecodeCommand([]byte(tc.payload), 0, now)
			require.Nil(t, cerr, "%v", cerr)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	long := strings.Repeat("x", 65)
	cases := []struct {
		name, payload string
		code          controller.Code
		requestID     string
		action        string
		msg           string
	}{
		{"malformed", `{"request_id":"r1","action":`, CodeBadRequest, "", "", "malformed JSON"},
		{"not object", `["get_state"]`, CodeBadRequest, "", "", "must be a JSON object"},
		{"empty", ``, CodeBadRequest, "", "", "malformed JSON"},
		{"trailing", `{"request_id":"r1","action":"get_state"}{}`, CodeBadRequest, "r1", "get_state", "trailing data"},
		{"trailing garbage", `{"request_id":"r1","action":"get_state"} x`, CodeBadRequest, "r1", "get_state", "trailing data"},
		{"unknown field", `{"request_id":"r1","action":"get_state","room":"a"}`, CodeBadRequest, "r1", "get_state", `unknown field "room"`},
		{"case variant", `{"Request_ID":"r1","action":"get_state"}`, CodeBadRequest, "", "get_state", `unknown field "Request_ID"`},
		{"duplicate", `{"request_id":"r1","request_id":"r2","action":"get_state"}`, CodeBadRequest, "r2", "get_state", "given twice"},
		{"missing request_id", `{"action":"get_state"}`, CodeBadRequest, "", "", "missing field request_id"},
		{"empty request_id", `{"request_id":"","action":"get_state"}`, CodeBadRequest, "", "", "request_id must be"},
		{"long request_id", `{"request_id":"` + long + `","action":"get_state"}`, CodeBadRequest, "", "", "request_id must be"},
		{"control in request_id", `{"request_id":"a\u0007b","action":"get_state"}`, CodeBadRequest, "", "", "request_id must be"},
		{"numeric request_id", `{"request_id":7,"action":"get_state"}`, CodeBadRequest, "", "", "request_id must be a string"},
		{"missing action", `{"request_id":"r1"}`, CodeBadRequest, "r1", "", "missing field action"},
		{"null action", `{"request_id":"r1","action":null}`, CodeBadRequest, "r1", "", "action must be a string"},
		{"unknown action", `{"request_id":"r1","action":"open_door"}`, CodeUnknownAction, "r1", "", `unknown action "open_door"`},
		{"missing duration", `{"request_id":"r1","action":"start_visit","visit_id":"v1"}`, CodeBadRequest, "r1", "start_visit", "missing field duration"},
		{"missing visit_id", `{"request_id":"r1","action":"start_visit","duration":"1h"}`, CodeBadRequest, "r1", "start_visit", "missing field visit_id"},
		{"missing add", `{"request_id":"r1","action":"extend_visit"}`, CodeBadRequest, "r1", "extend_visit", "missing field add"},
		{"missing alert_id", `{"request_id":"r1","action":"ack_alert"}`, CodeBadRequest, "r1", "ack_alert", "missing field alert_id"},
		{"missing in_service", `{"request_id":"r1","action":"set_service","reason":"x"}`, CodeBadRequest, "r1", "set_service", "missing field in_service"},
		{"foreign field", `{"request_id":"r1","action":"end_visit","add":"5m"}`, CodeBadRequest, "r1", "end_visit", "field add does not belong to action end_visit"},
		{"old extend field", `{"request_id":"r1","action":"extend_visit","by":"5m"}`, CodeBadRequest, "r1", "extend_visit", `unknown field "by"`},
		{"in_service string", `{"request_id":"r1","action":"set_service","in_service":"false"}`, CodeBadRequest, "r1", "set_service", "in_service must be true or false"},
		{"duration number", `{"request_id":"r1","action":"start_visit","visit_id":"v1","duration":3600}`, CodeBadRequest, "r1", "start_visit", "duration must be a string"},
		{"bad duration", `{"request_id":"r1","action":"start_visit","visit_id":"v1","duration":"an hour","expires_at":"2026-03-01T10:05:00Z"}`, controller.CodeInvalidDuration, "r1", "start_visit", "not a duration"},
		{"zero duration", `{"request_id":"r1","action":"start_visit","visit_id":"v1","duration":"0s","expires_at":"2026-03-01T10:05:00Z"}`, controller.CodeInvalidDuration, "r1", "start_visit", "must be positive"},
		{"negative by", `{"request_id":"r1","action":"extend_visit","add":"-5m","expires_at":"2026-03-01T10:05:00Z"}`, controller.CodeInvalidDuration, "r1", "extend_visit", "must be positive"},
		{"bad visit id", `{"request_id":"r1","action":"start_visit","visit_id":"Jane Doe","duration":"1h","expires_at":"2026-03-01T10:05:00Z"}`, controller.CodeInvalidVisitID, "r1", "start_visit", "visit_id must be"},
		{"empty alert id", `{"request_id":"r1","action":"ack_alert","alert_id":"","expires_at":"2026-03-01T10:05:00Z"}`, CodeBadRequest, "r1", "ack_alert", "alert_id must be"},
		{"long reason", `{"request_id":"r1","action":"set_service","in_service":false,"expires_at":"2026-03-01T10:05:00Z","reason":"` + strings.Repeat("r", 257) + `"}`, CodeBadRequest, "r1", "set_service", "reason must be"},
		{"bad expires_at", `{"request_id":"r1","action":"get_state","expires_at":"tomorrow"}`, CodeBadRequest, "r1", "get_state", "not an RFC 3339 time"},
		{"expired", `{"request_id":"r1","action":"end_visit","expires_at":"2026-03-01T09:59:59Z"}`, CodeExpired, "r1", "end_visit", "expired at"},
		{"expires now", `{"request_id":"r1","action":"end_visit","expires_at":"2026-03-01T10:00:00Z"}`, CodeExpired, "r1", "end_visit", "expired at"},
		{"invalid utf8", "{\"request_id\":\"r\xff\",\"action\":\"get_state\"}", CodeBadRequest, "", "", "UTF-8"},
		{"no expiry", `{"request_id":"r1","action":"end_visit"}`, CodeBadRequest, "r1", "end_visit", "missing field expires_at"},
		{"far expiry", `{"request_id":"r1","action":"end_visit","expires_at":"2026-03-01T12:00:00Z"}`, CodeBadRequest, "r1", "end_visit", "more than 1h0m0s ahead"},
		{"lone surrogate id", `{"request_id":"a\ud800b","action":"get_state"}`, CodeBadRequest, "", "", "request_id must be"},
		{"replacement char id", `{"request_id":"a\ufffdb","action":"get_state"}`, CodeBadRequest, "", "", "request_id must be"},
		{"replay without from", `{"request_id":"r1","action":"replay"}`, CodeBadRequest, "r1", "replay", "missing field from_seq"},
		{"replay from zero", `{"request_id":"r1","action":"replay","from_seq":0}`, CodeBadRequest, "r1", "replay", "from_seq must be a whole number"},
		{"replay negative", `{"request_id":"r1","action":"replay","from_seq":-3}`, CodeBadRequest, "r1", "replay", "from_seq must be a whole number"},
		{"replay fraction", `{"request_id":"r1","action":"replay","from_seq":1.5}`, CodeBadRequest, "r1", "replay", "from_seq must be a whole number"},
		{"replay backwards", `{"request_id":"r1","action":"replay","from_seq":9,"to_seq":3}`, CodeBadRequest, "r1", "replay", "below from_seq"},
		{"replay bad epoch", `{"request_id":"r1","action":"replay","from_seq":1,"epoch":"xyz"}`, CodeBadRequest, "r1", "replay", "16 hex digits"},
		{"replay foreign field", `{"request_id":"r1","action":"replay","from_seq":1,"visit_id":"v"}`, CodeBadRequest, "r1", "replay", "does not belong to action replay"},
		{"oversized", `{"request_id":"r1","action":"get_state","reason":"` + strings.Repeat("x", DefaultMaxCommand) + `"}`, CodeBadRequest, "", "", "above the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, cerr := DecodeCommand([]byte(tc.payload), 0, now)
			require.NotNil(t, cerr, "accepted %+v", cmd)
			assert.Equal(t, tc.code, cerr.Code)
			assert.Equal(t, tc.requestID, cerr.RequestID)
			assert.Equal(t, tc.action, cerr.Action)
			assert.Contains(t, cerr.Message, tc.msg)
			assert.Equal(t, Command{}, cmd)
		})
	}
}

func TestDecodeCommandSizeLimit(t *testing.T) {
	p := []byte(`{"request_id":"r1","action":"get_state"}`)
	_, cerr := DecodeCommand(p, len(p), now)
	require.Nil(t, cerr)
	_, cerr = DecodeCommand(p, len(p)-1, now)
	require.NotNil(t, cerr)
	assert.Equal(t, CodeBadRequest, cerr.Code)
}

func TestPeekRequestID(t *testing.T) {
	assert.Equal(t, "r1", PeekRequestID([]byte(`{"request_id":"r1","bogus":1}`), 0))
	assert.Equal(t, "", PeekRequestID([]byte(`{"request_id":"r1"`), 0))
	assert.Equal(t, "", PeekRequestID([]byte(`{"request_id":5}`), 0))
	assert.Equal(t, "", PeekRequestID([]byte(`{"request_id":"`+strings.Repeat("x", 65)+`"}`), 0))
	assert.Equal(t, "", PeekRequestID([]byte(`{"request_id":"r1"}`), 5))
}

func TestEncodeCommandRoundTrip(t *testing.T) {
	exp := now.Add(time.Minute)
	for _, c := range []controller.Command{
		{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v:1", Duration: 90*time.Minute + 1},
		{RequestID: "b", Action: controller.ActionExtendVisit, Duration: 1500 * time.Millisecond},
		{RequestID: "c", Action: controller.ActionEndVisit},
		{RequestID: "d", Action: controller.ActionAckAlert, AlertID: "time_up-2"},
		{RequestID: "e", Action: controller.ActionSetService, Reason: "repair"},
		{RequestID: "f", Action: controller.ActionGetState},
	} {
		got, cerr := DecodeCommand(EncodeCommand(c, exp), 0, now)
		require.Nil(t, cerr, "%v", cerr)
		assert.Equal(t, c, got.Command)
		assert.Equal(t, exp, got.ExpiresAt)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"r1","action":"start_visit","visit_id":"v-1","duration":"1h30m","expires_at":"2026-03-01T10:05:00Z"}`,
		`{"request_id":"r2","action":"extend_visit","add":"10m","expires_at":"2026-03-01T10:30:00.5Z"}`,
		`{"request_id":"r3","action":"end_visit","expires_at":"2026-03-01T10:00:01+01:00"}`,
		`{"request_id":"r4","action":"ack_alert","alert_id":"panic-3","expires_at":"2026-03-01T10:00:01Z"}`,
		`{"request_id":"r5","action":"set_service","in_service":false,"reason":"cleaning","expires_at":"2026-03-01T10:10:00Z"}`,
		`{"request_id":"r7","action":"replay","from_seq":3,"to_seq":30}`,
		`{"request_id":"r6","action":"get_state"}`,
		`{"request_id":"r1","action":`,
		`{"request_id":"r1","request_id":"r1","action":"get_state"} []`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, cerr := DecodeCommand(payload, 0, now)
		if cerr != nil {
			if cerr.Code == "" || cerr.Message == "" {
				t.Fatalf("refusal without code or message: %+v", cerr)
			}
			if cerr.RequestID != "" && !validText(cerr.RequestID, 1, MaxRequestID) {
				t.Fatalf("refusal echoes an invalid request_id %q", cerr.RequestID)
			}
			if !strings.HasPrefix(string(EncodeRefusal("", cerr)), `{"request_id":`) {
				t.Fatalf("refusal does not encode")
			}
			return
		}
		if PeekRequestID(payload, 0) != cmd.RequestID {
			t.Fatalf("PeekRequestID disagrees with DecodeCommand: %q vs %q", PeekRequestID(payload, 0), cmd.RequestID)
		}
		if cmd.Replay != nil {
			again, cerr := DecodeCommand(EncodeReplay(cmd.RequestID, *cmd.Replay, cmd.ExpiresAt), 0, now)
			if cerr != nil || *again.Replay != *cmd.Replay {
				t.Fatalf("re-encoded replay %+v: %+v %v", cmd.Replay, again.Replay, cerr)
			}
			return
		}
		again, cerr := DecodeCommand(EncodeCommand(cmd.Command, cmd.ExpiresAt), 0, now)
		if cerr != nil {
			t.Fatalf("re-encoded command %+v refused: %v", cmd, cerr)
		}
		if again.Command != cmd.Command || !again.ExpiresAt.Equal(cmd.ExpiresAt) {
			t.Fatalf("re-encoded command differs:\n got %+v\nwant %+v", again, cmd)
		}
	})
}
