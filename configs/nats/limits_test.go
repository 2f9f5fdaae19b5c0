package nats_test

// The limits of NATS's MQTT that the clustered centre meets, each pinned:
// if a later nats-server lifts or changes one, its test fails and the docs
// (docs/centre.md, "Limits of NATS's MQTT") are updated with it.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// msg is a message as a client received it.
type msg struct {
	topic    string
	payload  string
	retained bool
	qos      byte
}

// client is an MQTT client of the centre under identity user (its
// certificate), with client id cid.
type client struct {
	paho.Client
	msgs chan msg
	lost chan error
}

type clientOpts struct {
	user, cid string
	node      *siteworld.NATSNode
	clean     bool
	will      *msg
	username  string // sent beside the certificate with its Password, if not empty
	// via, if set, is a proxy to the node to connect through, which a
	// test cuts to drop the connection without a DISCONNECT.
	via *mqtttest.Proxy
}

func dial(t *testing.T, c *siteworld.NATSCentre, o clientOpts) (*client, error) {
	t.Helper()
	cert, key, err := c.ClientCert(o.user)
	require.NoError(t, err)
	tc, err := c.CA().ClientConfig(cert, key)
	require.NoError(t, err)
	cl := &client{msgs: make(chan msg, 64), lost: make(chan error, 1)}
	addr := o.node.ClientAddr()
	if o.via != nil {
		addr = o.via.Addr()
	}
	po := paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID(o.cid).SetTLSConfig(tc).
		SetCleanSession(o.clean).SetProtocolVersion(4).SetAutoReconnect(false).SetKeepAlive(5 * time.Second).
		SetConnectTimeout(patience).SetOrderMatters(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			cl.msgs <- msg{topic: m.Topic(), payload: string(m.Payload()), retained: m.Retained(), qos: m.Qos()}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { cl.lost <- err })
	if o.username != "" {
		po.SetUsername(o.username).SetPassword(siteworld.Password(o.username))
	}
	if o.will != nil {
		po.SetWill(o.will.topic, o.will.payload, o.will.qos, o.will.retained)
	}
	cl.Client = paho.NewClient(po)
	tok := cl.Connect()
	if !tok.WaitTimeout(patience) {
		return nil, io.ErrNoProgress
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.Disconnect(50) })
	return cl, nil
}

func connect(t *testing.T, c *siteworld.NATSCentre, o clientOpts) *client {
	t.Helper()
	cl, err := dial(t, c, o)
	require.NoError(t, err, "connect %s as %s", o.cid, o.user)
	return cl
}

// subscribe subscribes and returns the granted QoS (0x80: refused).
func (c *client) subscribe(t *testing.T, filter string, qos byte) byte {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	require.True(t, tok.WaitTimeout(patience), "subscribe %s", filter)
	require.NoError(t, tok.Error())
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func (c *client) publish(t *testing.T, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	require.True(t, tok.WaitTimeout(patience), "publish %s", topic)
	require.NoError(t, tok.Error())
}

// next returns the next message, failing after patience.
func (c *client) next(t *testing.T, what string) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(patience):
		t.Fatalf("%s: nothing arrived within %s", what, patience)
		return msg{}
	}
}

// within returns the next message if one arrives within d.
func (c *client) within(d time.Duration) (msg, bool) {
	select {
	case m := <-c.msgs:
		return m, true
	case <-time.After(d):
		return msg{}, false
	}
}

// none checks that nothing arrives within quiet (a message the broker
// would deliver comes within milliseconds on loopback).
func (c *client) none(t *testing.T, quiet time.Duration, what string) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("%s: %s %q arrived", what, m.topic, m.payload)
	case <-time.After(quiet):
	}
}

// awaitLost waits until the client's connection is lost.
func (c *client) awaitLost(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.lost:
	case <-time.After(patience):
		t.Fatalf("%s: the connection was not closed within %s", what, patience)
	}
}

// TestLimits runs one centre of three nodes and pins, in turn, what NATS's
// MQTT does where it differs from mosquitto or from what a reader of the
// MQTT 3.1.1 specification would assume.
func TestLimits(t *testing.T) {
	testtier.Slow(t, "three nats-server nodes")
	testtier.Tool(t, "mosquitto_sub", "mosquitto-clients")
	c := startCentre(t, "site-a", "site-b")
	n := c.NATSNodes()
	// A quiet spell to show that nothing more arrives: generous on a loaded
	// machine; what would arrive comes within milliseconds.
	const quiet = 700 * time.Millisecond

	t.Run("a bridge announcing itself (protocol level 0x84, try_private) is refused", func(t *testing.T) {
		cert, key, err := c.ClientCert("site-a")
		require.NoError(t, err)
		tc, err := c.CA().ClientConfig(cert, key)
		require.NoError(t, err)
		for _, level := range []byte{0x84, 4} {
			rc := connack(t, n[0].ClientAddr(), tc, level)
			if level == 4 {
				assert.Equal(t, byte(0), rc, "level 4 accepted")
			} else {
				assert.Equal(t, byte(1), rc, "level %#x: CONNACK 1, unacceptable protocol version", level)
			}
		}
	})

	t.Run("a username and password beside the certificate are refused", func(t *testing.T) {
		_, err := dial(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-with-name", node: n[0], clean: true, username: "booking"})
		require.Error(t, err, "a client naming a user beside its certificate was let in")
	})

	t.Run("topics: dots are carried, spaces close the connection", func(t *testing.T) {
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-topics", node: n[1], clean: true})
		require.Equal(t, byte(1), booking.subscribe(t, "visitrooms/site-a/+/events", 1))
		site := connect(t, c, clientOpts{user: "site-a", cid: "site-a-topics", node: n[0], clean: true})
		site.publish(t, "visitrooms/site-a/r.1/events", 1, false, []byte("dot"))
		m := booking.next(t, "a record of a room id with a dot")
		assert.Equal(t, "visitrooms/site-a/r.1/events", m.topic)
		assert.Equal(t, "dot", m.payload)
		site.Publish("visitrooms/site-a/r 1/events", 1, false, "space")
		site.awaitLost(t, "a topic with a space")
		booking.none(t, quiet, "a topic with a space")
	})

	t.Run("$ topics are ordinary topics", func(t *testing.T) {
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-sys", node: n[2], clean: true})
		require.Equal(t, byte(1), booking.subscribe(t, siteworld.LinkTopic, 1))
		site := connect(t, c, clientOpts{user: "site-b", cid: "site-b-sys", node: n[0], clean: true})
		site.publish(t, "$SYS/broker/connection/site-b/state", 1, true, []byte("1"))
		m := booking.next(t, "the bridge's flag")
		assert.Equal(t, "$SYS/broker/connection/site-b/state", m.topic)
		assert.Equal(t, "1", m.payload)
		site.publish(t, "$SYS/broker/connection/site-b/state", 1, true, nil) // clear it
	})

	t.Run("a filter wider than the grants is refused whole, not narrowed", func(t *testing.T) {
		monitor := connect(t, c, clientOpts{user: siteworld.MonitorUser, cid: "monitor-wide", node: n[1], clean: true})
		// mosquitto grants visitrooms/# and delivers only what the ACL
		// lets through; NATS refuses it.
		assert.Equal(t, byte(0x80), monitor.subscribe(t, "visitrooms/#", 1))
		assert.Equal(t, byte(1), monitor.subscribe(t, "visitrooms/+/+/state", 1))
	})

	t.Run("retained: the latest kept, delivered flagged on subscribing, unflagged live, cleared by an empty payload", func(t *testing.T) {
		site := connect(t, c, clientOpts{user: "site-a", cid: "site-a-retained", node: n[0], clean: true})
		topic := "visitrooms/site-a/ret-1/state"
		site.publish(t, topic, 1, true, []byte("first"))
		site.publish(t, topic, 1, true, []byte("second"))
		monitor := connect(t, c, clientOpts{user: siteworld.MonitorUser, cid: "monitor-ret", node: n[1], clean: true})
		require.Equal(t, byte(1), monitor.subscribe(t, topic, 1))
		m := monitor.next(t, "the retained state on subscribing")
		assert.Equal(t, msg{topic: topic, payload: "second", retained: true, qos: 1}, m)
		site.publish(t, topic, 1, true, []byte("third"))
		m = monitor.next(t, "a retained state published live")
		assert.Equal(t, "third", m.payload)
		assert.False(t, m.retained, "a live message to an existing subscription comes unflagged (MQTT-3.3.1-9)")
		site.publish(t, topic, 1, true, nil)
		m = monitor.next(t, "the clear")
		assert.Empty(t, m.payload)
		got, err := siteworld.Retained(t.Context(), n[2].ClientAddr(), monitorCreds(t, c), "visitrooms/site-a/ret-1/")
		require.NoError(t, err)
		assert.Empty(t, got, "an empty retained payload clears the topic on every node")
	})

	t.Run("QoS 2: granted and delivered once", func(t *testing.T) {
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-qos2", node: n[1], clean: true})
		assert.Equal(t, byte(2), booking.subscribe(t, "visitrooms/site-a/+/events", 2), "granted QoS")
		site := connect(t, c, clientOpts{user: "site-a", cid: "site-a-qos2", node: n[0], clean: true})
		site.publish(t, "visitrooms/site-a/q2/events", 2, false, []byte("exactly once"))
		m := booking.next(t, "a QoS 2 record")
		assert.Equal(t, msg{topic: "visitrooms/site-a/q2/events", payload: "exactly once", qos: 2}, m)
		booking.none(t, quiet, "a second copy of the QoS 2 record")
	})

	t.Run("max payload: 256 kB passes, more closes the connection", func(t *testing.T) {
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-big", node: n[1], clean: true})
		require.Equal(t, byte(1), booking.subscribe(t, "visitrooms/site-a/+/info", 1))
		site := connect(t, c, clientOpts{user: "site-a", cid: "site-a-big", node: n[0], clean: true})
		site.publish(t, "visitrooms/site-a/big/info", 1, false, bytes.Repeat([]byte("x"), 200<<10))
		assert.Len(t, booking.next(t, "200 kB").payload, 200<<10)
		site.Publish("visitrooms/site-a/big/info", 1, false, bytes.Repeat([]byte("x"), 300<<10))
		site.awaitLost(t, "300 kB")
		booking.none(t, quiet, "300 kB")
	})

	t.Run("permissions: a site cannot read or write another's topics; nobody reads commands but the site; monitor cannot publish", func(t *testing.T) {
		site := connect(t, c, clientOpts{user: "site-a", cid: "site-a-perm", node: n[0], clean: true})
		assert.Equal(t, byte(0x80), site.subscribe(t, "visitrooms/site-b/+/cmd", 1), "site-a reading site-b's commands")
		assert.Equal(t, byte(0x80), site.subscribe(t, "#", 1), "site-a reading everything")
		reader := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-cmds", node: n[1], clean: true})
		assert.Equal(t, byte(0x80), reader.subscribe(t, "visitrooms/+/+/cmd", 1), "the booking system reading the commands")
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-perm", node: n[1], clean: true})
		require.Equal(t, byte(1), booking.subscribe(t, "visitrooms/+/+/alerts", 1))
		site.publish(t, "visitrooms/site-b/room-1/alerts", 1, false, []byte("forged")) // acknowledged, dropped
		monitor := connect(t, c, clientOpts{user: siteworld.MonitorUser, cid: "monitor-perm", node: n[2], clean: true})
		monitor.publish(t, "visitrooms/site-a/room-1/cmd", 1, false, []byte("forged")) // acknowledged, dropped
		booking.none(t, quiet, "a forged alert")
	})

	t.Run("session takeover: any identity may take a client id, not its messages", func(t *testing.T) {
		bridge := connect(t, c, clientOpts{user: "site-b", cid: "site-b", node: n[0], clean: false})
		require.Equal(t, byte(1), bridge.subscribe(t, "visitrooms/site-b/+/cmd", 1))
		bridge.Disconnect(50)
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-takeover", node: n[1], clean: true})
		booking.publish(t, "visitrooms/site-b/room-1/cmd", 1, false, []byte("queued for site-b"))
		// site-a connects under site-b's client id: NATS lets it (mosquitto's
		// use_username_as_clientid would not), resumes the session, but
		// delivers nothing that site-a may not read.
		usurper := connect(t, c, clientOpts{user: "site-a", cid: "site-b", node: n[2], clean: false})
		usurper.none(t, quiet, "site-b's queued command delivered to site-a")
		usurper.Disconnect(50)
		bridge = connect(t, c, clientOpts{user: "site-b", cid: "site-b", node: n[0], clean: false})
		m := bridge.next(t, "the queued command, to its owner")
		assert.Equal(t, "queued for site-b", m.payload)
		// And a connection with a client id in use ends the other.
		intruder := connect(t, c, clientOpts{user: "site-a", cid: "site-b", node: n[1], clean: true})
		bridge.awaitLost(t, "the first holder of the client id")
		intruder.Disconnect(50)
	})

	// Last: it kills a node.
	t.Run("a Last Will dies with the node that held the connection", func(t *testing.T) {
		booking := connect(t, c, clientOpts{user: siteworld.BookingUser, cid: "booking-will", node: n[1], clean: true})
		require.Equal(t, byte(1), booking.subscribe(t, "$SYS/broker/connection/site-a/state", 1))
		will := &msg{topic: "$SYS/broker/connection/site-a/state", payload: "0", qos: 1, retained: true}
		bridge := connect(t, c, clientOpts{user: "site-a", cid: "site-a-will", node: n[0], will: will})
		bridge.publish(t, will.topic, 1, true, []byte("1"))
		require.Equal(t, "1", booking.next(t, "the flag up").payload)
		require.NoError(t, n[0].Kill())
		bridge.awaitLost(t, "the node killed")
		booking.none(t, 3*time.Second, "the Will of a connection whose node died")
		// The flag stays up: a new subscriber reads "1", retained. A node
		// refuses connections and subscriptions while JetStream elects new
		// leaders for what the dead node led, and a subscription granted in
		// that spell may get no retained message at all (they come from the
		// retained messages' stream, whose leader may be moving): a client
		// subscribes again until it gets one, as docs/centre.md tells a
		// booking system to.
		var stale msg
		deadline := wallclock.Now().Add(patience)
		for attempt := 1; ; attempt++ {
			require.True(t, wallclock.Now().Before(deadline), "no retained flag after a node died, %d attempts", attempt-1)
			late, err := dial(t, c, clientOpts{user: siteworld.BookingUser, cid: fmt.Sprintf("booking-will-late-%d", attempt), node: n[2], clean: true})
			if err != nil {
				<-time.After(200 * time.Millisecond)
				continue
			}
			got, ok := byte(0), false
			if got = late.subscribe(t, will.topic, 1); got == 1 {
				stale, ok = late.within(5 * time.Second)
			}
			late.Disconnect(50)
			if ok {
				break
			}
			t.Logf("attempt %d: granted %#x, no retained flag yet", attempt, got)
			<-time.After(200 * time.Millisecond)
		}
		assert.Equal(t, msg{topic: will.topic, payload: "1", retained: true, qos: 1}, stale, "the stale flag")
		require.NoError(t, n[0].Restart())
		require.NoError(t, c.AwaitHealthy(patience))
		// A Will is published when the connection drops on a node that
		// lives: the same client on a node that stays.
		wan := mqtttest.StartProxy(t, n[2].ClientAddr())
		bridge = connect(t, c, clientOpts{user: "site-a", cid: "site-a-will", node: n[2], will: will, via: wan})
		bridge.publish(t, will.topic, 1, true, []byte("1"))
		require.Equal(t, "1", booking.next(t, "the flag up again").payload)
		wan.Cut()
		m := booking.next(t, "the Will")
		assert.Equal(t, "0", m.payload)
	})
}

// monitorCreds are monitor's, for siteworld.Retained.
func monitorCreds(t *testing.T, c *siteworld.NATSCentre) siteworld.Creds {
	t.Helper()
	cert, key, err := c.ClientCert(siteworld.MonitorUser)
	require.NoError(t, err)
	return siteworld.Creds{CAFile: c.CA().CertFile, User: siteworld.MonitorUser, CertFile: cert, KeyFile: key}
}

// connack sends a CONNECT at protocol level level over TLS and returns the
// CONNACK's return code; 0xff when the connection closed without one.
func connack(t *testing.T, addr string, tc *tls.Config, level byte) byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: patience}, "tcp", addr, tc)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(wallclock.Deadline(patience)))
	id := "probe-" + strings.ReplaceAll(t.Name(), "/", "-")[:8]
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', level, 0x02, 0, 60, 0, byte(len(id))}
	pkt := append([]byte{0x10, byte(len(vh) + len(id))}, vh...)
	_, err = conn.Write(append(pkt, id...))
	require.NoError(t, err)
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return 0xff
	}
	require.Equal(t, byte(0x20), ack[0], "CONNACK")
	return ack[3]
}
