package link

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
)

// waitSeq waits until the observer has an event with seq at least last on
// suffix, then returns every seq received there, first arrivals only.
func waitSeq(t testing.TB, obs *observer, suffix string, last uint64) []uint64 {
	t.Helper()
	var all []obsMsg
	for {
		m := obs.next(suffix, nil)
		all = append(all, m)
		if strictEvent(t, m.Payload).Seq >= last {
			break
		}
	}
	return dedupeSeqs(t, all)
}

// assertContiguous checks that seqs holds from..to in order; seqs below
// from are duplicates of records seen before (at-least-once) and skipped.
func assertContiguous(t testing.TB, seqs []uint64, from, to uint64) {
	t.Helper()
	for len(seqs) > 0 && seqs[0] < from {
		seqs = seqs[1:]
	}
	want := []uint64{}
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	assert.Equal(t, want, seqs, "every record exactly once (after dedupe), in seq order")
}

// raiseAlertsWhileDown produces alert records of several kinds in r.
func raiseAlertsWhileDown(r *room) {
	r.input(controller.InputPanic, controller.LevelActive)
	r.input(controller.InputLock, controller.LevelActive)
	r.advance(15 * time.Second) // door_locked
	r.input(controller.InputDoor, controller.LevelUnknown)
	r.raise("clock", true)
	r.advance(time.Hour) // time_up, welfare_check
	r.input(controller.InputLock, controller.LevelInactive)
}

func TestMosquittoBrokerKilledDuringVisit(t *testing.T) {
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	obs := observe(t, m.URL(), observerOpts{clientID: "guard-console-1", filter: "visitrooms/room-a/#"})
	r := startRoom(t, roomOpts{url: m.URL()})
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic} {
		r.input(in, controller.LevelInactive)
	}
	require.True(t, obs.command("room-a", `{"request_id":"s","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "s").OK)
	before := r.lastSeq()
	assertContiguous(t, waitSeq(t, obs, "events", before), 1, before)

	m.Kill()
	raiseAlertsWhileDown(r)
	last := r.lastSeq()
	require.Greater(t, last, before+5)
	m.Restart()
	r.flush()

	assertContiguous(t, waitSeq(t, obs, "events", last), before+1, last)
	alerts := waitSeq(t, obs, "alerts", last)
	assert.GreaterOrEqual(t, len(alerts), 6, "alerts raised while the broker was down: %v", alerts)
	for i := 1; i < len(alerts); i++ {
		assert.Less(t, alerts[i-1], alerts[i])
	}
	// The state is republished after the reconnect and shows the alerts.
	st := stateOf(t, obs.next("state", func(m obsMsg) bool { return stateOf(t, m.Payload).Seq == last }).Payload)
	kinds := map[string]bool{}
	for _, a := range st.Alerts {
		kinds[a.Kind] = true
	}
	for _, k := range []string{"panic", "sensor_fault", "system_fault", "time_up", "welfare_check"} {
		assert.True(t, kinds[k], "active alert %s in state %+v", k, st.Alerts)
	}
}

func TestMosquittoRoomCrashWhileBrokerDown(t *testing.T) {
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	obs := observe(t, m.URL(), observerOpts{clientID: "guard-console-1", filter: "visitrooms/room-a/#"})
	dir := t.TempDir()
	r := startRoom(t, roomOpts{url: m.URL(), dir: dir})
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic} {
		r.input(in, controller.LevelInactive)
	}
	require.True(t, obs.command("room-a", `{"request_id":"s","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v1","duration":"1h"}`, "s").OK)
	before := r.lastSeq()
	assertContiguous(t, waitSeq(t, obs, "events", before), 1, before)

	m.Kill()
	raiseAlertsWhileDown(r)
	snap := r.snapshot()
	r.stop(false) // roomd dies: nothing more delivered, no offline; the journal stays
	require.Greater(t, snap.Seq, before+5)

	// roomd restarts from its journal while the broker is still down.
	r2 := startRoom(t, roomOpts{url: m.URL(), dir: dir, noWait: true})
	r2.input(controller.InputPanic, controller.LevelInactive)
	last := r2.lastSeq()
	m.Restart()
	r2.flush()
	assertContiguous(t, waitSeq(t, obs, "events", last), before+1, last)
}

func TestMosquittoTLSAndACL(t *testing.T) {
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{
		TLS:     true,
		Users:   map[string]string{"room-a": "secret-a", "room-b": "secret-b", "booking": "secret-k"},
		ACLFile: mqtttest.ShippedACL(t),
	})
	require.True(t, strings.HasPrefix(m.URL(), "ssl://"))
	tlsCfg := m.TLSConfig()
	booking := observe(t, m.URL(), observerOpts{user: "booking", pw: "secret-k", configured: func(o *mqtt.ClientOptions) {
		o.SetTLSConfig(tlsCfg.Clone())
	}})
	legit := startRoom(t, roomOpts{url: m.URL(), room: "room-a", user: "room-a", pw: "secret-a", tls: tlsCfg.Clone()})
	// room-a's identity tries to act as room-b: its subscription and every
	// publish under room-b are denied by the ACL.
	impostor := startRoom(t, roomOpts{url: m.URL(), room: "room-b", user: "room-a", pw: "secret-a", tls: tlsCfg.Clone(),
		clientID: "roomd-impostor", noWait: true})
	impostor.input(controller.InputPanic, controller.LevelActive)
	impostor.flush() // mosquitto acknowledges denied publishes and drops them

	rep := booking.command("room-a", `{"request_id":"g","action":"get_state"}`, "g")
	require.True(t, rep.OK, "commands work over TLS with the shipped ACL")
	legit.input(controller.InputPanic, controller.LevelActive)
	legit.flush()
	booking.next("alerts", func(m obsMsg) bool { return strings.HasPrefix(m.Topic, "visitrooms/room-a/") })
	for _, suffix := range []string{"events", "alerts", "state", "availability", "reply"} {
		for _, msg := range booking.drain(suffix) {
			assert.False(t, strings.HasPrefix(msg.Topic, "visitrooms/room-b/"), "room-a published as room-b: %s %s", msg.Topic, msg.Payload)
		}
	}
}

// TestMosquittoOperatorIdentity: with the shipped ACL, an operator's
// commands reach the room only on its own cmd/<username>, and the room
// records that username as "by"; sent as another operator, they are dropped
// by the broker and never applied.
func TestMosquittoOperatorIdentity(t *testing.T) {
	users := map[string]string{"room-a": "pw-a", "guard-7": "pw-7", "guard-8": "pw-8", "booking": "pw-b"}
	// The shipped ACL with its read block filled in for the two operators,
	// as its comment tells a site to do.
	shipped, err := os.ReadFile(mqtttest.ShippedACL(t))
	require.NoError(t, err)
	acl := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(acl, append(shipped, []byte("\nuser guard-7\ntopic read visitrooms/#\n\nuser guard-8\ntopic read visitrooms/#\n")...), 0o600))
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: users, ACLFile: acl})
	tlsCfg := m.TLSConfig()
	withTLS := func(o *mqtt.ClientOptions) { o.SetTLSConfig(tlsCfg.Clone()) }
	booking := observe(t, m.URL(), observerOpts{user: "booking", pw: "pw-b", configured: withTLS})
	guard7 := observe(t, m.URL(), observerOpts{user: "guard-7", pw: "pw-7", filter: "visitrooms/room-a/reply", configured: withTLS})
	r := startRoom(t, roomOpts{url: m.URL(), user: "room-a", pw: "pw-a", tls: tlsCfg.Clone()})
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic} {
		r.input(in, controller.LevelInactive)
	}

	// guard-7 pretends to be guard-8: the broker drops it.
	guard7.publish("visitrooms/room-a/cmd/guard-8",
		`{"request_id":"forged","action":"start_visit","visit_id":"v1","duration":"1h","expires_at":"`+exp()+`"}`, false)
	// Then as itself: applied, recorded by guard-7.
	guard7.publish("visitrooms/room-a/cmd/guard-7",
		`{"request_id":"own","action":"start_visit","visit_id":"v2","duration":"1h","expires_at":"`+exp()+`"}`, false)
	rep := guard7.reply("own")
	require.True(t, rep.OK, "%+v", rep.Error)
	assert.Equal(t, "guard-7", rep.Operator)
	started := strictEvent(t, booking.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, `"visit_started"`) }).Payload)
	assert.Equal(t, "guard-7", started.By)
	assert.Equal(t, "v2", started.VisitID, "the forged command never reached the room")
	for _, m := range guard7.drain("reply") {
		assert.NotContains(t, m.Payload, "forged")
	}
	// The booking system's plain topic: no "by".
	booking.publish("visitrooms/room-a/cmd", `{"request_id":"b-end","action":"end_visit","expires_at":"`+exp()+`"}`, false)
	ended := strictEvent(t, booking.next("events", func(m obsMsg) bool { return strings.Contains(m.Payload, `"visit_ended"`) }).Payload)
	assert.Empty(t, ended.By)
}
