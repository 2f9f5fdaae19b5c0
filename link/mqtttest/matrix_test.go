package mqtttest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// The matrix: every identity of a site × every topic of two rooms (and
// the topics around them) × publish and read, run on a real mosquitto with
// the shipped mosquitto.conf, TLS and passwords, and compared with what the
// roles' table (package access) says. Three sites: the shipped ACL itself
// (production), the shipped site file on a test bench (the simulator
// driver and a decommission identity added), and the shipped site file
// with every opt-in.
//
// Two identities outside the table watch and inject, in a block appended
// to the ACL (user blocks are independent: the shipped lines keep their
// meaning). With MQTT 3.1.1 a denied publish is acknowledged and dropped,
// and mosquitto's ACL file grants every subscription and withholds each
// message the subscriber may not read, so both halves are observed: a
// publish by X, once acknowledged, has reached the watcher's queue if it
// was allowed, before the injector's marker that follows it; a message
// injected on a topic reaches X's subscription to "#" (a wildcard
// subscription) if X may read it, before the marker on a topic X may read.

const (
	watcher  = "matrix-watcher"
	injector = "matrix-injector"
	marker   = "matrix/marker"
)

var testers = "\n# ---- the matrix test's watcher and injector (not shipped) ----\n" +
	"user " + watcher + "\ntopic read #\ntopic read $SYS/broker/connection/#\ntopic read " + marker + "\n" +
	"user " + injector + "\ntopic write #\ntopic write $SYS/broker/connection/#\n"

// matrixTopics are the topics tried: every topic of two rooms with the
// command topics of every sender, and those a forger would try.
func matrixTopics(s *access.Site) []string {
	senders := []string{"guard-7", "guard-8", "guard-station", "booking", "room-a", "room-b", "homeassistant", "guard-console", "roompager", "on_site"}
	var out []string
	for _, room := range []string{"room-a", "room-b"} {
		for _, sub := range []string{"availability", "info", "state", "events", "alerts", "reply", "sim/outputs", "sim/set", "cmd", "cmd/"} {
			out = append(out, "visitrooms/"+room+"/"+sub)
		}
		for _, op := range senders {
			out = append(out, "visitrooms/"+room+"/cmd/"+op)
		}
		out = append(out, "visitrooms/"+room+"/cmd/guard-7/deeper", "homeassistant/device/roomd_"+room+"/config")
	}
	for _, id := range s.Identities() {
		if id.Role != access.RoleRoom {
			// an identity posing as a room named after itself
			out = append(out, "visitrooms/"+id.Name+"/state", "visitrooms/"+id.Name+"/alerts", "homeassistant/device/roomd_"+id.Name+"/config")
		}
	}
	return append(out,
		"visitrooms/_pagers/pager-1/status", "visitrooms/_pagers/pager-2/status",
		"homeassistant/status", "homeassistant/other",
		"$SYS/broker/connection/central/state", "elsewhere/room-a/state", "visitrooms")
}

// matrixBroker starts mosquitto with the shipped config, TLS, a password
// for every identity of s and the given ACL with the testers appended.
func matrixBroker(t *testing.T, s *access.Site, acl string) (*mqtttest.MosquittoBroker, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(acl)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(path, append(data, testers...), 0o600))
	users := map[string]string{watcher: "pw-" + watcher, injector: "pw-" + injector}
	for _, id := range s.Identities() {
		users[id.Name] = "pw-" + id.Name
	}
	return mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true, Users: users, ACLFile: path}), users
}

func login(t *testing.T, mq *mqtttest.MosquittoBroker, users map[string]string, name string, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	return connect(t, client{id: name, url: mq.URL(), user: name, pass: users[name], tls: mq.TLSConfig(), clean: true, onMsg: onMsg})
}

// until returns the payloads received on ch before the marker payload.
func until(t *testing.T, ch <-chan msg, mark string) []msg {
	t.Helper()
	var got []msg
	for {
		m := receive(t, ch, "the marker "+mark)
		if m.payload == mark {
			return got
		}
		got = append(got, m)
	}
}

func runMatrix(t *testing.T, s *access.Site, acl string) {
	mq, users := matrixBroker(t, s, acl)
	topics := matrixTopics(s)
	watchCh, watchH := collector()
	watch := login(t, mq, users, watcher, nil)
	subscribe(t, watch, "#", watchH)
	subscribe(t, watch, "$SYS/broker/connection/#", watchH)
	inject := login(t, mq, users, injector, nil)

	// Session takeover: every other identity asks for room-a's client ids
	// (roomd's, and its username) with a clean session, while room-a is
	// connected as roomd is; room-a keeps its connection, and its session.
	lost := make(chan error, 1)
	victim := connect(t, client{id: "roomd-room-a", url: mq.URL(), user: "room-a", pass: users["room-a"], tls: mq.TLSConfig(),
		onLost: func(err error) { lost <- err }})
	for _, id := range s.Identities() {
		if id.Name == "room-a" {
			continue
		}
		for _, cid := range []string{"roomd-room-a", "room-a"} {
			connect(t, client{id: cid, url: mq.URL(), user: id.Name, pass: users[id.Name], tls: mq.TLSConfig(), clean: true}).Disconnect(0)
		}
	}
	mq.Flush() // the broker has handled every connection above
	publish(t, victim, "visitrooms/room-a/availability", "still here", false)
	select {
	case err := <-lost:
		t.Fatalf("an identity took room-a's session over with its client id: %v", err)
	default:
	}
	victim.Disconnect(0)
	until(t, watchCh, "still here")

	checked := 0
	for _, id := range s.Identities() {
		// Publish: X publishes on every topic; the watcher sees what got
		// through before the injector's marker.
		x := login(t, mq, users, id.Name, nil)
		for _, topic := range topics {
			publish(t, x, topic, id.Name+" "+topic, false)
		}
		mark := "after " + id.Name
		publish(t, inject, marker, mark, false)
		var through []string
		for _, m := range until(t, watchCh, mark) {
			require.True(t, strings.HasPrefix(m.payload, id.Name+" "), "a stray message: %v", m)
			through = append(through, m.topic)
		}
		for _, topic := range topics {
			want := s.Allowed(id.Name, access.Publish, topic)
			assert.Equal(t, want, slices.Contains(through, topic), "%s (%s) publishing %s", id.Name, id.Role, topic)
			checked++
		}

		// Read: X subscribes to everything; the injector publishes on
		// every topic, then a marker on a topic X may read.
		readCh, readH := collector()
		subscribe(t, x, "#", readH)
		subscribe(t, x, "$SYS/broker/connection/#", readH)
		readable := ""
		for _, topic := range topics {
			if s.Allowed(id.Name, access.Read, topic) && !strings.HasPrefix(topic, "$") {
				readable = topic
				break
			}
		}
		require.NotEmpty(t, readable, "%s may read none of the topics: no marker for it", id.Name)
		for _, topic := range topics {
			publish(t, inject, topic, "to "+topic, false)
		}
		publish(t, inject, readable, "read marker", false)
		var read []string
		for _, m := range until(t, readCh, "read marker") {
			read = append(read, m.topic)
		}
		for _, topic := range topics {
			want := s.Allowed(id.Name, access.Read, topic)
			assert.Equal(t, want, slices.Contains(read, topic), "%s (%s) reading %s", id.Name, id.Role, topic)
			checked++
		}
		x.Disconnect(0)
		// What the injector sent reached the watcher too: skip it.
		publish(t, inject, marker, "done "+id.Name, false)
		until(t, watchCh, "done "+id.Name)
	}
	t.Logf("%d identities x %d topics x publish and read: %d checks", len(s.Identities()), len(topics), checked)
}

// TestACLMatrixShipped: the shipped ACL (configs/mosquitto/acl) does what
// the roles' table says, on the shipped mosquitto.conf.
func TestACLMatrixShipped(t *testing.T) {
	testtier.Slow(t, "every identity x every topic on a real mosquitto")
	t.Parallel()
	s := shippedSite(t)
	runMatrix(t, s, mqtttest.ShippedACL(t))
}

// TestACLMatrixBench: the shipped site file on a test bench: the simulator
// driver and a room being decommissioned.
func TestACLMatrixBench(t *testing.T) {
	testtier.Slow(t, "every identity x every topic on a real mosquitto")
	t.Parallel()
	edit := func(s *access.Site) {
		s.SimDriver = "sim-driver"
		s.Decommission = &access.Decommission{Identity: "decommission", Rooms: []string{"room-b"}}
	}
	s := shippedSite(t)
	edit(s)
	runMatrix(t, s, mqtttest.SiteACL(t, edit))
}

// TestACLMatrixOptedIn: every opt-in: the consoles and Home Assistant may
// send commands, as themselves only.
func TestACLMatrixOptedIn(t *testing.T) {
	testtier.Slow(t, "every identity x every topic on a real mosquitto")
	t.Parallel()
	edit := func(s *access.Site) {
		s.ConsoleCommands = true
		s.HomeAssistant.Commands = true
	}
	s := shippedSite(t)
	edit(s)
	runMatrix(t, s, mqtttest.SiteACL(t, edit))
}

func shippedSite(t *testing.T) *access.Site {
	t.Helper()
	data, err := os.ReadFile(mqtttest.Shipped(t, "site.yaml"))
	require.NoError(t, err)
	s, err := access.ReadSite(data, "site.yaml")
	require.NoError(t, err)
	return s
}

// TestACLMatrixCentral: the central broker's shipped ACL with its own
// config: a site's bridge writes only its own rooms' outputs and link
// flag, reads only the commands for its rooms; monitoring reads only.
func TestACLMatrixCentral(t *testing.T) {
	testtier.Slow(t, "every identity x every topic on a real mosquitto")
	t.Parallel()
	data, err := os.ReadFile(mqtttest.Shipped(t, "central.yaml"))
	require.NoError(t, err)
	s, err := access.ReadSite(data, "central.yaml")
	require.NoError(t, err)
	acl, err := os.ReadFile(mqtttest.Shipped(t, "central.acl"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(path, append(acl, testers...), 0o600))
	users := map[string]string{watcher: "pw-w", injector: "pw-i"}
	for _, id := range s.Identities() {
		users[id.Name] = "pw-" + id.Name
	}
	// The listener for central clients (passwords); the bridges' listener
	// takes the username from a certificate, which the ACL sees alike.
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true, ShippedFile: "central.conf",
		Users: users, ACLFile: path})
	var topics []string
	for _, site := range []string{"site-a", "site-b"} {
		for _, room := range []string{"room-1", "room-2"} {
			for _, sub := range []string{"availability", "info", "state", "events", "alerts", "reply", "cmd", "cmd/guard-7", "sim/set"} {
				topics = append(topics, fmt.Sprintf("visitrooms/%s/%s/%s", site, room, sub))
			}
		}
		topics = append(topics, "$SYS/broker/connection/"+site+"/state")
	}
	topics = append(topics, "visitrooms/room-1/state", "visitrooms/booking/room-1/state", "visitrooms/monitor/room-1/alerts",
		"$SYS/broker/connection/booking/state")
	watchCh, watchH := collector()
	watch := connect(t, client{id: watcher, url: mq.URL(), user: watcher, pass: users[watcher], tls: mq.TLSConfig(), clean: true})
	subscribe(t, watch, "#", watchH)
	subscribe(t, watch, "$SYS/broker/connection/#", watchH)
	inject := connect(t, client{id: injector, url: mq.URL(), user: injector, pass: users[injector], tls: mq.TLSConfig(), clean: true})
	for _, id := range s.Identities() {
		x := connect(t, client{id: id.Name, url: mq.URL(), user: id.Name, pass: users[id.Name], tls: mq.TLSConfig(), clean: true})
		for _, topic := range topics {
			publish(t, x, topic, id.Name+" "+topic, false)
		}
		publish(t, inject, marker, "after "+id.Name, false)
		var through []string
		for _, m := range until(t, watchCh, "after "+id.Name) {
			through = append(through, m.topic)
		}
		readCh, readH := collector()
		subscribe(t, x, "#", readH)
		subscribe(t, x, "$SYS/broker/connection/#", readH)
		readable := ""
		for _, topic := range topics {
			if s.Allowed(id.Name, access.Read, topic) && !strings.HasPrefix(topic, "$") {
				readable = topic
				break
			}
		}
		require.NotEmpty(t, readable, id.Name)
		for _, topic := range topics {
			publish(t, inject, topic, "to "+topic, false)
		}
		publish(t, inject, readable, "read marker", false)
		var read []string
		for _, m := range until(t, readCh, "read marker") {
			read = append(read, m.topic)
		}
		for _, topic := range topics {
			assert.Equal(t, s.Allowed(id.Name, access.Publish, topic), slices.Contains(through, topic), "%s (%s) publishing %s", id.Name, id.Role, topic)
			assert.Equal(t, s.Allowed(id.Name, access.Read, topic), slices.Contains(read, topic), "%s (%s) reading %s", id.Name, id.Role, topic)
		}
		x.Disconnect(0)
		publish(t, inject, marker, "done "+id.Name, false)
		until(t, watchCh, "done "+id.Name)
	}
}
