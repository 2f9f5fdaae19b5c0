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

// Identities of the shipped ACL (configs/mosquitto/acl). What each may
// publish and read is the matrix's (matrix_test.go); these tests are the
// broker's doors: passwords, TLS, sessions, persistence.
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
