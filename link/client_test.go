package link

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
)

func stateOf(t testing.TB, payload string) contract.StateMessage {
	t.Helper()
	var s contract.StateMessage
	require.NoError(t, contracttest.StrictUnmarshal([]byte(payload), &s), payload)
	return s
}

func TestLinkVisitFlow(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{})
	p := testPolicy()
	p.WelfareCheckEvery = 0
	r := startRoom(t, roomOpts{url: url, policy: &p})
	r.input(controller.InputDoor, controller.LevelInactive)
	r.input(controller.InputLock, controller.LevelInactive)
	r.input(controller.InputPresence, controller.LevelInactive)
	r.input(controller.InputPanic, controller.LevelInactive)

	assert.Equal(t, contract.Online, obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Online }).Payload)
	started := strictEvent(t, obs.next("events", nil).Payload)
	assert.Equal(t, "controller_started", started.Type)
	assert.Equal(t, uint64(1), started.Seq)
	require.NotNil(t, started.Resumed)
	assert.False(t, *started.Resumed)

	rep := obs.command("room-a", `{"request_id":"s1","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v-1","duration":"1h"}`, "s1")
	require.True(t, rep.OK, "%+v", rep.Error)
	assert.Equal(t, "start_visit", rep.Action)
	require.NotNil(t, rep.State)
	assert.Equal(t, "in_visit", rep.State.Phase)
	require.NotNil(t, rep.State.Visit)
	assert.Equal(t, "v-1", rep.State.Visit.ID)
	assert.Equal(t, int64(3600), rep.State.Visit.RemainingS)
	assert.Empty(t, rep.State.Presence, "no presence during a visit")

	ev := strictEvent(t, obs.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, "visit_started") }).Payload)
	assert.Equal(t, "v-1", ev.VisitID)
	require.NotNil(t, ev.DurationS)
	assert.Equal(t, int64(3600), *ev.DurationS)
	assert.Equal(t, t0.Add(time.Hour), ev.EndsAt.Time)

	st := stateOf(t, obs.next("state", func(m obsMsg) bool { return strings.Contains(m.Payload, `"in_visit"`) }).Payload)
	assert.Equal(t, contract.ContractVersion, st.Version)
	assert.Equal(t, "closed", st.Door)
	assert.Equal(t, "unlocked", st.Lock)
	assert.Equal(t, "on", st.Outputs["in_use"])

	// Past the deadline: warning, then time_up on alerts and events.
	r.advance(50 * time.Minute)
	warn := strictEvent(t, obs.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, "visit_warning") }).Payload)
	assert.Equal(t, 1, warn.Warning)
	r.advance(11 * time.Minute)
	alert := strictEvent(t, obs.next("alerts", nil).Payload)
	assert.Equal(t, "alert_raised", alert.Type)
	require.NotNil(t, alert.Alert)
	assert.Equal(t, "time_up", alert.Alert.Kind)
	same := obs.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, "alert_raised") })
	assert.JSONEq(t, same.Payload, mustJSON(alert), "alerts carries the same payload as events")

	rep = obs.command("room-a", fmt.Sprintf(`{"request_id":"a1","action":"ack_alert","expires_at":%q,"alert_id":%q}`, exp(), alert.Alert.ID), "a1")
	require.True(t, rep.OK, "%+v", rep.Error)
	acked := strictEvent(t, obs.next("alerts", func(m obsMsg) bool { return strings.Contains(m.Payload, `"alert_acked"`) }).Payload)
	assert.Equal(t, alert.Alert.ID, acked.Alert.ID)

	rep = obs.command("room-a", `{"request_id":"e1","action":"end_visit","expires_at":"`+exp()+`"}`, "e1")
	require.True(t, rep.OK, "%+v", rep.Error)
	assert.Equal(t, "idle", rep.State.Phase)
	assert.Equal(t, "absent", rep.State.Presence, "presence is back outside visits")
	ended := strictEvent(t, obs.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, "visit_ended") }).Payload)
	assert.Equal(t, "ended", ended.Reason)
	cleared := strictEvent(t, obs.next("alerts", func(m obsMsg) bool { return strings.Contains(m.Payload, `"alert_cleared"`) }).Payload)
	assert.Equal(t, alert.Alert.ID, cleared.Alert.ID)

	// Every record arrived, in seq order (duplicates, which delivery at
	// least once allows, are dropped by seq as a consumer would).
	r.flush()
	last := r.lastSeq()
	obs.await("events", func(m obsMsg) bool { return strictEvent(t, m.Payload).Seq == last })
	seqs := dedupeSeqs(t, obs.drain("events"))
	for i := 1; i < len(seqs); i++ {
		assert.Less(t, seqs[i-1], seqs[i])
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestLinkEveryAlertKindOnAlerts(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	p := testPolicy()
	p.FunctionTestEvery = 80 * time.Minute // due after the rest below
	r := startRoom(t, roomOpts{url: url, policy: &p})
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic} {
		r.input(in, controller.LevelInactive)
	}
	seen := map[string]bool{}
	expect := func(kind string) {
		t.Helper()
		m := obs.next("alerts", func(m obsMsg) bool { return strings.Contains(m.Payload, `"kind":"`+kind+`"`) })
		e := strictEvent(t, m.Payload)
		assert.Equal(t, "alert_raised", e.Type)
		seen[e.Alert.Kind] = true
	}
	// The visit starts first: a panic or a critical fault would block it.
	obs.command("room-a", `{"request_id":"v","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "v")
	r.input(controller.InputPanic, controller.LevelActive)
	expect("panic")
	r.input(controller.InputDoor, controller.LevelUnknown)
	expect("sensor_fault")
	r.raise("outbox", true)
	expect("system_fault")
	r.feedback(controller.OutputAlarmSounder, false)
	expect("output_fault")
	r.input(controller.InputLock, controller.LevelActive)
	r.advance(15 * time.Second)
	expect("door_locked")
	r.advance(45 * time.Minute)
	expect("welfare_check")
	r.advance(20 * time.Minute)
	expect("time_up")
	r.input(controller.InputPresence, controller.LevelActive)
	obs.command("room-a", `{"request_id":"e","action":"end_visit","expires_at":"`+exp()+`"}`, "e")
	r.advance(6 * time.Minute)
	expect("not_vacated")
	r.advance(10 * time.Minute)
	expect("function_test_due")
	r.do(func() {
		r.apply(r.ctrl.Step(controller.InputChanged{At: r.now, Input: controller.InputLock, Level: controller.LevelActive, Drift: controller.DriftHigh}))
	})
	expect("line_drift")

	for _, k := range controller.AlertKinds {
		assert.True(t, seen[k.String()], "alert kind %s published on alerts", k)
	}
}

// TestLinkErrorCodes sends a command for every refusal code and checks the
// reply on cmd/reply.
func TestLinkErrorCodes(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/+/reply"})
	strict := testPolicy()
	strict.Extension = controller.ExtensionForbidden
	startRoom(t, roomOpts{url: url})
	startRoom(t, roomOpts{url: url, room: "room-b", policy: &strict})

	refused := func(room, payload, requestID string, code controller.Code) {
		t.Helper()
		rep := obs.command(room, payload, requestID)
		require.False(t, rep.OK, "%s accepted", payload)
		require.NotNil(t, rep.Error)
		assert.Equal(t, string(code), rep.Error.Code, rep.Error.Message)
		assert.NotEmpty(t, rep.Error.Message)
		assert.Nil(t, rep.State)
	}
	ok := func(room, payload, requestID string) {
		t.Helper()
		rep := obs.command(room, payload, requestID)
		require.True(t, rep.OK, "%+v", rep.Error)
	}
	refused("room-a", `{"request_id":"x1","action":`, "", contract.CodeBadRequest)
	refused("room-a", `{"request_id":"x2","action":"get_state","extra":1}`, "x2", contract.CodeBadRequest)
	refused("room-a", `{"request_id":"x3","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1"}`, "x3", contract.CodeBadRequest)
	refused("room-a", `{"request_id":"x4","action":"get_state","reason":"`+strings.Repeat("z", contract.DefaultMaxCommand)+`"}`, "", contract.CodeBadRequest)
	refused("room-a", `{"request_id":"x5","action":"fly"}`, "x5", contract.CodeUnknownAction)
	refused("room-a", `{"request_id":"x6","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"3h"}`, "x6", controller.CodeInvalidDuration)
	refused("room-a", `{"request_id":"x7","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"soon"}`, "x7", controller.CodeInvalidDuration)
	refused("room-a", `{"request_id":"x8","action":"start_visit","expires_at":"`+exp()+`","visit_id":"a b","duration":"1h"}`, "x8", controller.CodeInvalidVisitID)
	refused("room-a", `{"request_id":"x9","action":"end_visit","expires_at":"`+exp()+`"}`, "x9", controller.CodeNoVisit)
	refused("room-a", `{"request_id":"x10","action":"ack_alert","expires_at":"`+exp()+`","alert_id":"panic-99"}`, "x10", controller.CodeUnknownAlert)
	refused("room-a", `{"request_id":"x11","action":"get_state","expires_at":"2001-01-01T00:00:00Z"}`, "x11", contract.CodeExpired)
	ok("room-a", `{"request_id":"x12","action":"set_service","expires_at":"`+exp()+`","in_service":false,"reason":"repair"}`, "x12")
	refused("room-a", `{"request_id":"x13","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "x13", controller.CodeOutOfService)
	ok("room-a", `{"request_id":"x14","action":"set_service","expires_at":"`+exp()+`","in_service":true}`, "x14")
	ok("room-a", `{"request_id":"x15","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "x15")
	refused("room-a", `{"request_id":"x16","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v2","duration":"1h"}`, "x16", controller.CodeVisitInProgress)
	refused("room-a", `{"request_id":"x17","action":"extend_visit","expires_at":"`+exp()+`","add":"2h"}`, "x17", controller.CodeExceedsMaximum)
	ok("room-b", `{"request_id":"y1","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "y1")
	refused("room-b", `{"request_id":"y2","action":"extend_visit","expires_at":"`+exp()+`","add":"5m"}`, "y2", controller.CodeExtensionForbidden)
}

func TestLinkBusy(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{})
	r := startRoom(t, roomOpts{url: url, queue: 1, noLoop: true})
	obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Online })
	obs.publish("visitrooms/room-a/cmd", `{"request_id":"b1","action":"end_visit","expires_at":"`+exp()+`"}`, false)
	rep := obs.command("room-a", `{"request_id":"b2","action":"end_visit","expires_at":"`+exp()+`"}`, "b2")
	require.NotNil(t, rep.Error)
	assert.Equal(t, string(contract.CodeBusy), rep.Error.Code)
	assert.Equal(t, "end_visit", rep.Action, "the refusal names the action it read")
	s := <-r.cmds
	assert.Equal(t, "b1", s.cmd.RequestID, "the first command is queued, not dropped")
	// A busy command was not applied nor remembered: sent again, it is taken.
	obs.publish("visitrooms/room-a/cmd", `{"request_id":"b2","action":"end_visit","expires_at":"`+exp()+`"}`, false)
	select {
	case s := <-r.cmds:
		assert.Equal(t, "b2", s.cmd.RequestID)
	case <-time.After(waitTimeout):
		t.Fatal("the resent command did not reach the loop")
	}
}

func TestLinkDuplicateRequestID(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{})
	r := startRoom(t, roomOpts{url: url})
	cmd := `{"request_id":"dup","action":"start_visit","expires_at":"` + exp() + `","visit_id":"v1","duration":"1h"}`
	first := obs.command("room-a", cmd, "dup")
	require.True(t, first.OK)
	r.advance(time.Minute)
	obs.publish("visitrooms/room-a/cmd", cmd, false)
	second := obs.next("reply", func(m obsMsg) bool { return strings.Contains(m.Payload, `"dup"`) })
	assert.JSONEq(t, mustJSON(first), second.Payload, "a redelivered command gets the same reply")
	// A refused duplicate too (the second one refused for a different
	// reason if applied again would differ).
	r.flush()
	last := r.lastSeq()
	obs.await("events", func(m obsMsg) bool { return strictEvent(t, m.Payload).Seq == last })
	started := map[uint64]bool{} // by seq: a redelivered record is not a second start
	for _, m := range obs.drain("events") {
		if e := strictEvent(t, m.Payload); e.Type == "visit_started" {
			started[e.Seq] = true
		}
	}
	assert.Len(t, started, 1, "applied once")

	// The cache survives a restart of roomd.
	dir := r.dir
	r.stop(true)
	r2 := startRoom(t, roomOpts{url: url, dir: dir})
	_ = r2
	obs.publish("visitrooms/room-a/cmd", cmd, false)
	third := obs.next("reply", func(m obsMsg) bool { return strings.Contains(m.Payload, `"dup"`) })
	assert.JSONEq(t, mustJSON(first), third.Payload)
}

func TestLinkIgnoresRetainedCommandAndOtherRooms(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{})
	// A stale retained command waits on the broker before roomd starts.
	obs.publish("visitrooms/room-a/cmd", `{"request_id":"stale","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, true)
	startRoom(t, roomOpts{url: url})
	// A command for another room is not this room's business.
	obs.publish("visitrooms/room-b/cmd", `{"request_id":"other","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, false)
	rep := obs.command("room-a", `{"request_id":"probe","action":"get_state"}`, "probe")
	require.True(t, rep.OK)
	assert.Equal(t, "idle", rep.State.Phase, "the retained start_visit was not applied")
	for _, m := range obs.drain("reply") {
		assert.NotContains(t, m.Payload, "stale")
		assert.NotContains(t, m.Payload, "other")
	}
	for _, m := range obs.drain("events") {
		assert.NotContains(t, m.Payload, "visit_started")
	}
}

func TestLinkLastWill(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/availability"})
	px := mqtttest.StartProxy(t, url)
	r := startRoom(t, roomOpts{url: px.URL()})
	obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Online })
	px.Cut() // the room vanishes without a DISCONNECT
	m := obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Offline })
	assert.Equal(t, contract.Offline, m.Payload)
	r.stop(false) // the link stays cut: a clean stop would wait out its flush
}

func TestLinkCloseAnnouncesOffline(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/availability"})
	r := startRoom(t, roomOpts{url: url})
	obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Online })
	r.stop(true)
	obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Offline })
	late := observe(t, url, observerOpts{filter: "visitrooms/room-a/availability"})
	m := late.next("availability", nil)
	assert.True(t, m.Retained)
	assert.Equal(t, contract.Offline, m.Payload, "offline is retained")
}

func TestLinkReconnectRepublishesFromTheJournal(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/+"})
	px := mqtttest.StartProxy(t, url)
	r := startRoom(t, roomOpts{url: px.URL()})
	r.flush()
	px.Cut()
	// While the link is down, records pile up in the outbox.
	for range 5 {
		r.input(controller.InputPanic, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelInactive)
		var id string
		r.do(func() { id = r.ctrl.State().Alerts[0].ID })
		r.input(controller.InputPanic, controller.LevelInactive)
		r.do(func() {
			r.apply(r.ctrl.Step(controller.Command{At: r.now, RequestID: "ack", Action: controller.ActionAckAlert, AlertID: id}))
		})
	}
	var last uint64
	r.do(func() { last = r.ctrl.State().Seq })
	px.Resume()
	r.flush()
	// The final state is republished after the reconnect.
	obs.next("state", func(m obsMsg) bool { return stateOf(t, m.Payload).Seq == last })
	obs.await("events", func(m obsMsg) bool { return strictEvent(t, m.Payload).Seq == last })
	obs.await("alerts", func(m obsMsg) bool { return strictEvent(t, m.Payload).Seq == last })
	got := dedupeSeqs(t, obs.drain("events"))
	require.NotEmpty(t, got)
	assert.Equal(t, last, got[len(got)-1])
	for i, s := range got {
		assert.Equal(t, uint64(i+1), s, "every record once, in seq order: %v", got)
	}
	alerts := dedupeSeqs(t, obs.drain("alerts"))
	assert.Len(t, alerts, 15, "raised, acked and cleared for each of 5 panics")
}

// dedupeSeqs returns the seqs of events in order of first arrival, dropping duplicates.
func dedupeSeqs(t testing.TB, msgs []obsMsg) []uint64 {
	t.Helper()
	seen := map[uint64]bool{}
	var out []uint64
	for _, m := range msgs {
		s := strictEvent(t, m.Payload).Seq
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// TestNewRefusesABadBrokerURL: the link checks its broker URL as
// mqttconn.CheckBrokerURL does.
func TestNewRefusesABadBrokerURL(t *testing.T) {
	// The room's link refuses the same URLs.
	_, err := New(Options{Broker: "http://127.0.0.1:1883"}, nil)
	assert.ErrorContains(t, err, `unknown scheme "http"`)
}
