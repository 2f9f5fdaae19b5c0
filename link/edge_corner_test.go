package link

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
)

// The command edge's corner cases an integrator met: every reply and record
// they cause is valid against docs/asyncapi.yaml, every reply to a command
// sent on an operator topic names that operator, and a replay beyond the
// latest record is refused as documented.

// TestEdgeOperatorOnEveryReply: a command on cmd/{operator} is answered with
// that operator even when the topic's level is not an operator id
// (invalid_operator), so its sender can match the reply; the empty level
// cmd/ is an operator topic too, never the booking system's plain cmd.
func TestEdgeOperatorOnEveryReply(t *testing.T) {
	url := mqtttest.Embedded(t)
	startRoom(t, roomOpts{url: url})
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	schemas := contracttest.Load(t)

	for _, op := range []string{"on_site", "guard 7", "gu@rd"} {
		id := "op-" + fmt.Sprint(len(op))
		obs.publish("visitrooms/room-a/cmd/"+op, `{"request_id":"`+id+`","action":"end_visit","expires_at":"`+exp()+`"}`, false)
		m := obs.next("reply", func(m obsMsg) bool { return strings.Contains(m.Payload, `"request_id":"`+id+`"`) })
		require.NoError(t, schemas.Validate(t, "reply", []byte(m.Payload)), m.Payload)
		rep := strictReply(t, m.Payload)
		assert.Equal(t, op, rep.Operator, "the reply names the topic's operator")
		require.NotNil(t, rep.Error)
		assert.Equal(t, string(controller.CodeInvalidOperator), rep.Error.Code)
		assert.Equal(t, "end_visit", rep.Action)
	}

	// cmd/ with an empty level: refused, not taken as the plain cmd topic.
	obs.publish("visitrooms/room-a/cmd/", `{"request_id":"empty-level","action":"start_visit","visit_id":"v-1","duration":"1h","expires_at":"`+exp()+`"}`, false)
	m := obs.next("reply", func(m obsMsg) bool { return strings.Contains(m.Payload, `"empty-level"`) })
	require.NoError(t, schemas.Validate(t, "reply", []byte(m.Payload)), m.Payload)
	rep := strictReply(t, m.Payload)
	require.NotNil(t, rep.Error)
	assert.Equal(t, string(controller.CodeInvalidOperator), rep.Error.Code)
	for _, m := range obs.drain("events") {
		assert.NotContains(t, m.Payload, "visit_started", "nothing started")
	}

	// Refusals at the edge and the controller's own carry the operator too.
	for _, c := range []struct{ payload, code string }{
		{`{"request_id":"g-1","action":"ack_alert","alert_id":"panic-9","expires_at":"` + exp() + `"}`, "unknown_alert"},
		{`{"request_id":"g-2","action":"extend_visit","add":"1us","expires_at":"` + exp() + `"}`, "invalid_duration"},
		{`{"request_id":"g-3","action":"end_visit"}`, "bad_request"},
		{`{"request_id":"g-4","action":"dance","expires_at":"` + exp() + `"}`, "unknown_action"},
	} {
		id := c.payload[len(`{"request_id":"`) : len(`{"request_id":"`)+3]
		obs.publish("visitrooms/room-a/cmd/guard-7", c.payload, false)
		m := obs.next("reply", func(m obsMsg) bool { return strings.Contains(m.Payload, `"request_id":"`+id+`"`) })
		require.NoError(t, schemas.Validate(t, "reply", []byte(m.Payload)), m.Payload)
		rep := strictReply(t, m.Payload)
		assert.Equal(t, "guard-7", rep.Operator, c.payload)
		require.NotNil(t, rep.Error, c.payload)
		assert.Equal(t, c.code, rep.Error.Code, c.payload)
	}
}

// TestEdgeDurationsMakeValidRecords: a duration that would be announced as
// lasting no whole second is refused invalid_duration at the edge; the
// shortest accepted one makes records valid against the schema.
func TestEdgeDurationsMakeValidRecords(t *testing.T) {
	url := mqtttest.Embedded(t)
	startRoom(t, roomOpts{url: url})
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	schemas := contracttest.Load(t)

	for i, d := range []string{"1us", "1ns", "999ms", "0.4s"} {
		id := fmt.Sprintf("short-%d", i)
		rep := obs.command("room-a", `{"request_id":"`+id+`","action":"start_visit","visit_id":"v-1","duration":"`+d+`","expires_at":"`+exp()+`"}`, id)
		require.False(t, rep.OK, d)
		assert.Equal(t, string(controller.CodeInvalidDuration), rep.Error.Code, d)
		assert.Contains(t, rep.Error.Message, "at least 1s", d)
	}
	rep := obs.command("room-a", `{"request_id":"s","action":"start_visit","visit_id":"v-1","duration":"1s","expires_at":"`+exp()+`"}`, "s")
	require.True(t, rep.OK, "%+v", rep.Error)
	rep = obs.command("room-a", `{"request_id":"e0","action":"extend_visit","add":"1us","expires_at":"`+exp()+`"}`, "e0")
	require.False(t, rep.OK)
	assert.Equal(t, string(controller.CodeInvalidDuration), rep.Error.Code)
	rep = obs.command("room-a", `{"request_id":"e1","action":"extend_visit","add":"1500ms","expires_at":"`+exp()+`"}`, "e1")
	require.True(t, rep.OK, "%+v", rep.Error)

	var types []string
	for _, m := range obs.drain("events") {
		require.NoError(t, schemas.Validate(t, "event", []byte(m.Payload)), m.Payload)
		e := strictEvent(t, m.Payload)
		types = append(types, e.Type)
		switch e.Type {
		case "visit_started":
			require.NotNil(t, e.DurationS)
			assert.Equal(t, int64(1), *e.DurationS)
		case "visit_extended":
			require.NotNil(t, e.AddedS)
			assert.Equal(t, int64(2), *e.AddedS, "1.5 s is announced as 2 whole seconds")
		}
	}
	assert.Subset(t, types, []string{"visit_started", "visit_extended"})
}

// TestEdgeReplayBeyondTheLatest: a replay whose to_seq was never announced
// is refused replay_unavailable, naming the latest, instead of being cut
// short and answered ok (the consumer would take the missing seqs as
// delivered).
func TestEdgeReplayBeyondTheLatest(t *testing.T) {
	url := mqtttest.Embedded(t)
	r := startRoom(t, roomOpts{url: url})
	r.input(controller.InputDoor, controller.LevelInactive)
	r.input(controller.InputDoor, controller.LevelActive)
	r.flush()
	last := r.lastSeq()
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	rep := obs.command("room-a", fmt.Sprintf(`{"request_id":"past","action":"replay","from_seq":1,"to_seq":%d}`, last+1), "past")
	require.False(t, rep.OK)
	assert.Equal(t, string(contract.CodeReplayUnavailable), rep.Error.Code)
	assert.Contains(t, rep.Error.Message, fmt.Sprintf("the latest is %d", last))
	for _, m := range obs.drain("events") {
		assert.NotContains(t, m.Payload, `"type":"door_`, "nothing republished")
	}

	rep = obs.command("room-a", fmt.Sprintf(`{"request_id":"upto","action":"replay","from_seq":1,"to_seq":%d}`, last), "upto")
	require.True(t, rep.OK, "%+v", rep.Error)
	assert.Equal(t, last, rep.Replay.ToSeq)
}
