package link

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
)

// packetProxy relays MQTT packets between a room and a broker, for every
// connection the room makes: up sees each packet the room sends, down each
// the broker sends, before it is passed on (down may change it, or hold it).
type packetProxy struct {
	ln       net.Listener
	upstream string
	up, down func(packets.ControlPacket)
}

// startPacketProxy listens on loopback in front of the broker at url and
// returns the URL the room dials.
func startPacketProxy(t *testing.T, url string, up, down func(packets.ControlPacket)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	p := &packetProxy{ln: ln, upstream: strings.TrimPrefix(url, "tcp://"), up: up, down: down}
	go p.serve(t)
	return "tcp://" + ln.Addr().String()
}

func (p *packetProxy) serve(t *testing.T) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			t.Errorf("dial the broker: %v", err)
			_ = c.Close()
			return
		}
		t.Cleanup(func() { _ = c.Close(); _ = up.Close() })
		go relay(c, up, p.up)
		go relay(up, c, p.down)
	}
}

// relay copies packets from one side to the other, each seen by hook first.
func relay(from, to net.Conn, hook func(packets.ControlPacket)) {
	for {
		p, err := packets.ReadPacket(from)
		if err != nil {
			return
		}
		hook(p)
		if p.Write(to) != nil {
			return
		}
	}
}

// TestSubscribedBeforeOnline: a room publishes nothing (not its
// availability, not a record) before the broker granted its command
// subscriptions, so a consumer that sends a command as soon as it sees the
// room online finds the subscription in place, on the room's first
// connection too.
func TestSubscribedBeforeOnline(t *testing.T) {
	var mu sync.Mutex
	var sent []string // what the room sent, in order: "SUBSCRIBE", "PUBLISH topic"
	release, published := make(chan struct{}), make(chan struct{})
	var once sync.Once
	url := startPacketProxy(t, mqtttest.Embedded(t), func(p packets.ControlPacket) {
		mu.Lock()
		defer mu.Unlock()
		switch p := p.(type) {
		case *packets.SubscribePacket:
			sent = append(sent, "SUBSCRIBE")
		case *packets.PublishPacket:
			sent = append(sent, "PUBLISH "+p.TopicName)
			once.Do(func() { close(published) })
		}
	}, func(p packets.ControlPacket) {
		if _, ok := p.(*packets.SubackPacket); ok {
			<-release
		}
	})
	r := startRoom(t, roomOpts{url: url, noWait: true})
	defer r.stop(false)

	// While the SUBACK is held, nothing may be published. Absence needs a
	// window: a room that publishes before its subscription does so at
	// once (the connection is up), well within it.
	select {
	case <-published:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the room published before its subscriptions were granted: %v", sent)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case <-published:
	case <-time.After(waitTimeout):
		t.Fatal("the room published nothing after its subscriptions were granted")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "SUBSCRIBE", sent[0], "%v", sent)
	require.Equal(t, "PUBLISH visitrooms/room-a/availability", sent[1], "%v", sent)
}

// TestRefusedSubscriptionIsTriedAgain: a broker that refuses the room's
// subscriptions on a connection that stays up must not leave the room deaf
// to its commands on it: the room subscribes again, with backoff, and the
// command sent meanwhile is answered once the broker grants them.
func TestRefusedSubscriptionIsTriedAgain(t *testing.T) {
	// The broker's first two SUBACKs are made refusals (0x80 for every
	// filter), as a broker does whose ACL refuses them, or mochi-mqtt when
	// the packet identifier is still in use by the session it resumed.
	const refusals = 2
	var mu sync.Mutex
	var subs, refused int // SUBSCRIBEs the room sent; SUBACKs made refusals
	url := mqtttest.Embedded(t)
	proxied := startPacketProxy(t, url, func(p packets.ControlPacket) {
		if _, ok := p.(*packets.SubscribePacket); ok {
			mu.Lock()
			subs++
			mu.Unlock()
		}
	}, func(p packets.ControlPacket) {
		if sa, ok := p.(*packets.SubackPacket); ok {
			mu.Lock()
			defer mu.Unlock()
			if refused < refusals {
				refused++
				for i := range sa.ReturnCodes {
					sa.ReturnCodes[i] = 0x80
				}
			}
		}
	})
	obs := observe(t, url, observerOpts{})
	r := startRoom(t, roomOpts{url: proxied, noWait: true})
	defer r.stop(false)

	select {
	case <-r.c.Subscribed():
	case <-time.After(waitTimeout):
		t.Fatal("the room never subscribed again after its subscriptions were refused")
	}
	rep := obs.command("room-a", `{"request_id":"s1","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v-1","duration":"1h"}`, "s1")
	require.True(t, rep.OK, "%+v", rep)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, refused)
	require.Equal(t, 3, subs, "one SUBSCRIBE per refusal and the one granted, on one connection")
}
