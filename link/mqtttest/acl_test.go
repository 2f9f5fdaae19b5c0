package mqtttest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
)

// Identities of the shipped ACL (configs/mosquitto/acl).
var users = map[string]string{
	"room-a":        "pw-room-a",
	"room-b":        "pw-room-b",
	"booking":       "pw-booking",
	"guard-7":       "pw-guard-7",
	"guard-8":       "pw-guard-8",
	"guard-station": "pw-station",
}

// prodBroker runs mosquitto with TLS, passwords and the shipped ACL, as in
// production.
func prodBroker(t *testing.T) *mqtttest.MosquittoBroker {
	t.Helper()
	return mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{
		TLS:     true,
		Users:   users,
		ACLFile: mqtttest.ShippedACL(t),
	})
}

func as(t *testing.T, mq *mqtttest.MosquittoBroker, name string, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	return connect(t, client{id: name, url: mq.URL(), user: name, pass: users[name], tls: mq.TLSConfig(), clean: true, onMsg: onMsg})
}

// requireOnly asserts that the next message on ch is want. Use it after
// publishing a possibly forbidden message and then want from the same
// client with QoS 1: mosquitto keeps per-publisher order, so had the
// forbidden one been delivered it would have come first. With MQTT 3.1.1 a
// denied publish is acknowledged and dropped silently, so this ordering is
// the only way to observe the denial without a fixed wait.
func requireOnly(t *testing.T, ch <-chan msg, want msg) {
	t.Helper()
	require.Equal(t, want, receive(t, ch, want.topic))
}

func TestACLRoomCannotPublishToAnotherRoom(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	booking := as(t, mq, "booking", nil)
	subscribe(t, booking, "visitrooms/#", h)

	roomA := as(t, mq, "room-a", nil)
	publish(t, roomA, "visitrooms/room-b/events", "forged", false)
	publish(t, roomA, "visitrooms/room-b/alerts", "forged", false)
	publish(t, roomA, "visitrooms/room-a/events", "marker", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/events", "marker"})
}

func TestACLRoomCannotPublishOwnCmdOrSimSet(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	booking := as(t, mq, "booking", nil)
	subscribe(t, booking, "visitrooms/#", h)

	roomA := as(t, mq, "room-a", nil)
	publish(t, roomA, "visitrooms/room-a/cmd", "self-command", false)
	publish(t, roomA, "visitrooms/room-a/sim/set", "self-sim", false)
	publish(t, roomA, "visitrooms/room-a/unknown", "off-contract", false)
	publish(t, roomA, "elsewhere/room-a/state", "off-base", false)
	publish(t, roomA, "visitrooms/room-a/state", "marker", true)
	requireOnly(t, ch, msg{"visitrooms/room-a/state", "marker"})
}

func TestACLRoomPublishesEveryContractTopic(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	station := as(t, mq, "guard-station", nil)
	subscribe(t, station, "visitrooms/#", h)

	roomA := as(t, mq, "room-a", nil)
	for _, sub := range []string{"availability", "state", "info", "events", "alerts", "reply", "sim/outputs"} {
		topic := "visitrooms/room-a/" + sub
		publish(t, roomA, topic, sub, false)
		require.Equal(t, msg{topic, sub}, receive(t, ch, topic))
	}
}

func TestACLRoomCannotReadOtherRoomsCmd(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	roomA := as(t, mq, "room-a", h)
	// Denied subscriptions may be refused (0x80) or granted and starved;
	// either way nothing may arrive.
	subscribe(t, roomA, "visitrooms/room-b/cmd", h)
	subscribe(t, roomA, "visitrooms/+/state", h)
	require.Equal(t, byte(1), subscribe(t, roomA, "visitrooms/room-a/cmd", h))

	roomB := as(t, mq, "room-b", nil)
	publish(t, roomB, "visitrooms/room-b/state", "b-state", false)
	booking := as(t, mq, "booking", nil)
	publish(t, booking, "visitrooms/room-b/cmd", "for-b", false)
	publish(t, booking, "visitrooms/room-a/cmd", "for-a", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd", "for-a"})
	// room-b's state was acknowledged before booking published; mosquitto
	// queues a message for subscribers while handling its PUBLISH, so had
	// room-a been allowed to read it, it would have been ahead of for-a.
}

func TestACLBookingAndOperatorsSendCmd(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	roomA := as(t, mq, "room-a", nil)
	subscribe(t, roomA, "visitrooms/room-a/cmd", h)
	subscribe(t, roomA, "visitrooms/room-a/cmd/+", h)

	booking := as(t, mq, "booking", nil)
	publish(t, booking, "visitrooms/room-a/cmd", `{"cmd":"start_visit"}`, false)
	require.Equal(t, msg{"visitrooms/room-a/cmd", `{"cmd":"start_visit"}`}, receive(t, ch, "booking cmd"))

	// An operator sends under its own id only: not as another operator,
	// not on the booking system's topic, not as the booking system.
	guard := as(t, mq, "guard-7", nil)
	publish(t, guard, "visitrooms/room-a/cmd/guard-8", `{"cmd":"as another guard"}`, false)
	publish(t, guard, "visitrooms/room-a/cmd", `{"cmd":"anonymous"}`, false)
	publish(t, guard, "visitrooms/room-a/cmd/booking", `{"cmd":"as booking"}`, false)
	publish(t, guard, "visitrooms/room-a/cmd/guard-7", `{"cmd":"ack_alert"}`, false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd/guard-7", `{"cmd":"ack_alert"}`})

	// The guard station never sends anonymously.
	station := as(t, mq, "guard-station", nil)
	publish(t, station, "visitrooms/room-a/cmd", `{"cmd":"station"}`, false)
	publish(t, guard, "visitrooms/room-a/cmd/guard-7", `{"cmd":"marker"}`, false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd/guard-7", `{"cmd":"marker"}`})
}

// The guard station board speaks for the operators it authenticates: it
// may send on cmd/<any operator> (and on its own, for replays), never on the
// plain cmd topic, never on sim/set, never as a room's output; and an
// operator still cannot send as another one.
func TestACLGuardStationSpeaksForOperators(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	watcher := as(t, mq, "booking", nil)
	subscribe(t, watcher, "visitrooms/#", h)

	station := as(t, mq, "guard-station", nil)
	publish(t, station, "visitrooms/room-a/cmd/guard-7", "as guard-7", false)
	require.Equal(t, msg{"visitrooms/room-a/cmd/guard-7", "as guard-7"}, receive(t, ch, "station as guard-7"))
	publish(t, station, "visitrooms/room-b/cmd/guard-8", "as guard-8", false)
	require.Equal(t, msg{"visitrooms/room-b/cmd/guard-8", "as guard-8"}, receive(t, ch, "station as guard-8"))
	publish(t, station, "visitrooms/room-a/cmd/guard-station", "replay", false)
	require.Equal(t, msg{"visitrooms/room-a/cmd/guard-station", "replay"}, receive(t, ch, "station's own replay"))

	publish(t, station, "visitrooms/room-a/cmd", "anonymous", false)
	publish(t, station, "visitrooms/room-a/sim/set", `{"panic":true}`, false)
	publish(t, station, "visitrooms/room-a/alerts", "forged", false)
	publish(t, station, "visitrooms/room-a/state", "forged", false)
	publish(t, station, "visitrooms/room-a/cmd/guard-7/x", "deeper", false)
	publish(t, station, "visitrooms/room-a/cmd/guard-7", "marker", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd/guard-7", "marker"})

	guard := as(t, mq, "guard-7", nil)
	publish(t, guard, "visitrooms/room-a/cmd/guard-8", "as another", false)
	publish(t, guard, "visitrooms/room-a/cmd/guard-7", "own", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd/guard-7", "own"})
}

func TestACLBookingCannotForgeRoomOutput(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	ch, h := collector()
	station := as(t, mq, "guard-station", nil)
	subscribe(t, station, "visitrooms/#", h)

	booking := as(t, mq, "booking", nil)
	publish(t, booking, "visitrooms/room-a/alerts", "forged", false)
	publish(t, booking, "visitrooms/room-a/sim/set", "forged", false)
	publish(t, booking, "visitrooms/room-a/cmd", "marker", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd", "marker"})
}

func TestNoAnonymousOrWrongPassword(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	_, err := tryConnect(t, client{id: "anon", url: mq.URL(), tls: mq.TLSConfig(), clean: true})
	require.ErrorContains(t, err, "not Authorized")

	_, err = tryConnect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: "wrong", tls: mq.TLSConfig(), clean: true})
	require.ErrorContains(t, err, "not Authorized") // mosquitto answers 5, not 4

	_, err = tryConnect(t, client{id: "ghost", url: mq.URL(), user: "ghost", pass: "x", tls: mq.TLSConfig(), clean: true})
	require.ErrorContains(t, err, "not Authorized") // mosquitto answers 5, not 4

	mq.Flush() // answers even when the broker refuses the flush connection
}

func TestTLSWithWrongCAFails(t *testing.T) {
	t.Parallel()
	mq := prodBroker(t)
	other := mqtttest.NewCA(t, t.TempDir(), "other-ca")
	_, err := tryConnect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: users["room-a"],
		tls: other.ClientTLS(t, "", ""), clean: true})
	require.ErrorContains(t, err, "certificate signed by unknown authority")

	// Plain TCP to the TLS listener fails too.
	_, err = tryConnect(t, client{id: "room-a", url: "tcp://" + mq.Addr(), user: "room-a", pass: users["room-a"], clean: true})
	require.Error(t, err)

	// The right CA works (control).
	as(t, mq, "room-a", nil)
}

func TestTLSRequireCertificate(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{
		TLS: true, RequireCertificate: true, Users: users, ACLFile: mqtttest.ShippedACL(t),
	})
	noCert := mq.CA.ClientTLS(t, "", "")
	_, err := tryConnect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: users["room-a"], tls: noCert, clean: true})
	require.Error(t, err)

	// A certificate from another CA is refused.
	other := mqtttest.NewCA(t, t.TempDir(), "other-ca")
	cert, key := other.Issue(t, "room-a")
	foreign := mq.CA.ClientTLS(t, cert, key)
	_, err = tryConnect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: users["room-a"], tls: foreign, clean: true})
	require.Error(t, err)

	cert, key = mq.CA.Issue(t, "room-a")
	require.Equal(t, filepath.Dir(mq.CA.CertFile), filepath.Dir(cert))
	connect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: users["room-a"],
		tls: mq.CA.ClientTLS(t, cert, key), clean: true})
	mq.Flush()
}

func TestShippedConfigRunsWithACLAndSurvivesKill(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: users, ShippedConfig: true})

	_, err := tryConnect(t, client{id: "anon", url: mq.URL(), tls: mq.TLSConfig(), clean: true})
	require.ErrorContains(t, err, "not Authorized")

	// booking keeps a persistent session; room-a raises an alert and tries
	// to forge one for room-b while booking is offline.
	_, ignore := collector()
	booking := connect(t, client{id: "booking", url: mq.URL(), user: "booking", pass: users["booking"],
		tls: mq.TLSConfig(), onMsg: ignore})
	subscribe(t, booking, "visitrooms/+/alerts", nil)
	booking.Disconnect(250)

	roomA := as(t, mq, "room-a", nil)
	publish(t, roomA, "visitrooms/room-b/alerts", "forged", false)
	publish(t, roomA, "visitrooms/room-a/alerts", "panic", false)
	mq.Flush()
	mq.Kill()
	mq.Restart()

	ch, h := collector()
	connect(t, client{id: "booking", url: mq.URL(), user: "booking", pass: users["booking"],
		tls: mq.TLSConfig(), onMsg: h})
	requireOnly(t, ch, msg{"visitrooms/room-a/alerts", "panic"})

	conf, err := os.ReadFile(mq.ConfigFile)
	require.NoError(t, err)
	require.Contains(t, string(conf), "autosave_on_changes false", "the shipped broker saves once a minute: journals and replay cover a crash")
	for _, ln := range strings.Split(string(conf), "\n") {
		if !strings.HasPrefix(ln, "#") {
			require.NotContains(t, ln, "/etc/mosquitto")
			require.NotContains(t, ln, "pid_file")
		}
	}
	require.NotContains(t, mq.Log(), "Note:", "shipped config uses a deprecated option")
}

// TestShippedConfigStopsSessionTakeover: under the shipped config the
// broker makes the client id the username, so an identity that connects with
// a room's client id neither disconnects the room nor takes over (and erases)
// the commands queued in its session.
func TestShippedConfigStopsSessionTakeover(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: users, ShippedConfig: true})
	ch, h := collector()
	lost := make(chan error, 1)
	roomA := connect(t, client{id: "roomd-room-a", url: mq.URL(), user: "room-a", pass: users["room-a"],
		tls: mq.TLSConfig(), onMsg: h, onLost: func(err error) { lost <- err }})
	subscribe(t, roomA, "visitrooms/room-a/cmd/+", h)

	// guard-7 connects asking for the room's client id and a clean session.
	intruder := connect(t, client{id: "roomd-room-a", url: mq.URL(), user: "guard-7", pass: users["guard-7"],
		tls: mq.TLSConfig(), clean: true})
	publish(t, intruder, "visitrooms/room-a/cmd/guard-7", "after-takeover-attempt", false)
	requireOnly(t, ch, msg{"visitrooms/room-a/cmd/guard-7", "after-takeover-attempt"})
	select {
	case err := <-lost:
		t.Fatalf("the room was disconnected by another identity using its client id: %v", err)
	default:
	}
	require.True(t, roomA.IsConnectionOpen())

	// Commands queued for the room while it is away survive another
	// identity's clean-session connect under the room's client id.
	roomA.Disconnect(250)
	publish(t, intruder, "visitrooms/room-a/cmd/guard-7", "queued", false)
	again := connect(t, client{id: "roomd-room-a", url: mq.URL(), user: "room-a", pass: users["room-a"],
		tls: mq.TLSConfig(), onMsg: h})
	_ = again
	// The first command may come again (QoS 1: its PUBACK may not have left
	// before the disconnect); the queued one must come, and nothing else.
	got := receive(t, ch, "visitrooms/room-a/cmd/guard-7")
	if got.payload == "after-takeover-attempt" {
		got = receive(t, ch, "visitrooms/room-a/cmd/guard-7")
	}
	require.Equal(t, msg{"visitrooms/room-a/cmd/guard-7", "queued"}, got)
}

// haBroker runs mosquitto with the shipped ACL and its Home Assistant
// block, which ships commented out (a site turns discovery on), enabled;
// Home Assistant's password is "pw-ha".
func haBroker(t *testing.T) *mqtttest.MosquittoBroker {
	t.Helper()
	acl, err := os.ReadFile(mqtttest.ShippedACL(t))
	require.NoError(t, err)
	var out []string
	in := false
	for _, ln := range strings.Split(string(acl), "\n") {
		if strings.HasPrefix(ln, "# user homeassistant") {
			in = true
		}
		if in && strings.HasPrefix(ln, "# ") && (strings.HasPrefix(ln, "# user") || strings.HasPrefix(ln, "# topic") || strings.HasPrefix(ln, "# pattern")) {
			ln = strings.TrimPrefix(ln, "# ")
		} else if in && ln == "" {
			in = false
		}
		out = append(out, ln)
	}
	path := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644))
	all := map[string]string{"homeassistant": "pw-ha"}
	for u, p := range users {
		all[u] = p
	}
	return mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: all, ACLFile: path})
}

// TestACLHomeAssistantDiscovery: a room publishes (and clears) its own
// discovery message only, and hears Home Assistant's birth; Home Assistant
// reads the state, alerts and availability it shows, never the events,
// info or replies, and writes its status, not the rooms' discovery.
func TestACLHomeAssistantDiscovery(t *testing.T) {
	t.Parallel()
	mq := haBroker(t)
	ch, h := collector()
	ha := connect(t, client{id: "homeassistant", url: mq.URL(), user: "homeassistant", pass: "pw-ha", tls: mq.TLSConfig(), clean: true})
	require.Equal(t, byte(1), subscribe(t, ha, "homeassistant/#", h))
	roomA := as(t, mq, "room-a", nil)

	publish(t, roomA, "homeassistant/device/roomd_room-b/config", "forged", true)
	publish(t, roomA, "homeassistant/device/other/config", "forged", true)
	publish(t, roomA, "homeassistant/status", "forged", false)
	publish(t, roomA, "homeassistant/device/roomd_room-a/config", "{}", true)
	requireOnly(t, ch, msg{"homeassistant/device/roomd_room-a/config", "{}"})
	// Cleared on decommission with the room's identity: an empty retained
	// publish.
	publish(t, roomA, "homeassistant/device/roomd_room-a/config", "", true)
	requireOnly(t, ch, msg{"homeassistant/device/roomd_room-a/config", ""})

	// The room hears Home Assistant's birth message.
	roomCh, roomH := collector()
	require.Equal(t, byte(1), subscribe(t, roomA, "homeassistant/status", roomH))
	publish(t, ha, "homeassistant/device/roomd_room-a/config", "forged by ha", true)
	publish(t, ha, "homeassistant/status", "online", false)
	require.Equal(t, msg{"homeassistant/status", "online"}, receive(t, roomCh, "birth"))
	requireOnly(t, ch, msg{"homeassistant/status", "online"})

	// Home Assistant reads what its entities show, and nothing else.
	haCh, haH := collector()
	for _, sub := range []string{"state", "alerts", "availability", "events", "reply", "info", "cmd"} {
		subscribe(t, ha, "visitrooms/room-a/"+sub, haH)
	}
	for _, sub := range []string{"events", "reply", "info", "state"} {
		publish(t, roomA, "visitrooms/room-a/"+sub, sub, false)
	}
	requireOnly(t, haCh, msg{"visitrooms/room-a/state", "state"})
	publish(t, roomA, "visitrooms/room-a/alerts", "alerts", false)
	requireOnly(t, haCh, msg{"visitrooms/room-a/alerts", "alerts"})
	publish(t, roomA, "visitrooms/room-a/availability", "online", false)
	requireOnly(t, haCh, msg{"visitrooms/room-a/availability", "online"})
	// It cannot command a room anonymously or as an operator. (Like every
	// identity under the operators' pattern it could send as itself,
	// recorded by "homeassistant": the ACL says so.)
	roomCmd, roomCmdH := collector()
	subscribe(t, roomA, "visitrooms/room-a/cmd/+", roomCmdH)
	subscribe(t, roomA, "visitrooms/room-a/cmd", roomCmdH)
	publish(t, ha, "visitrooms/room-a/cmd", "from ha", false)
	publish(t, ha, "visitrooms/room-a/cmd/guard-7", "from ha", false)
	guard := as(t, mq, "guard-7", nil)
	publish(t, guard, "visitrooms/room-a/cmd/guard-7", "marker", false)
	requireOnly(t, roomCmd, msg{"visitrooms/room-a/cmd/guard-7", "marker"})
}
