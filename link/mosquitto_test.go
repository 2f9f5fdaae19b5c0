package link

import (
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
