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

// subackHolder is a proxy between a room and a broker that holds the
// broker's SUBACK until released and tells what the room sent meanwhile.
type subackHolder struct {
	ln        net.Listener
	upstream  string
	release   chan struct{}
	mu        sync.Mutex
	sent      []string // what the room sent, in order: "SUBSCRIBE", "PUBLISH topic"
	published chan struct{}
	once      sync.Once
}

func (h *subackHolder) serve(t *testing.T) {
	c, err := h.ln.Accept()
	if err != nil {
		return
	}
	up, err := net.Dial("tcp", h.upstream)
	if err != nil {
		t.Errorf("dial the broker: %v", err)
		_ = c.Close()
		return
	}
	t.Cleanup(func() { _ = c.Close(); _ = up.Close() })
	go func() { // room → broker, recorded
		for {
			p, err := packets.ReadPacket(c)
			if err != nil {
				return
			}
			h.mu.Lock()
			switch p := p.(type) {
			case *packets.SubscribePacket:
				h.sent = append(h.sent, "SUBSCRIBE")
			case *packets.PublishPacket:
				h.sent = append(h.sent, "PUBLISH "+p.TopicName)
				h.once.Do(func() { close(h.published) })
			}
			h.mu.Unlock()
			if p.Write(up) != nil {
				return
			}
		}
	}()
	for { // broker → room, the SUBACK held
		p, err := packets.ReadPacket(up)
		if err != nil {
			return
		}
		if _, ok := p.(*packets.SubackPacket); ok {
			<-h.release
		}
		if p.Write(c) != nil {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	h := &subackHolder{ln: ln, upstream: strings.TrimPrefix(mqtttest.Embedded(t), "tcp://"),
		release: make(chan struct{}), published: make(chan struct{})}
	go h.serve(t)
	r := startRoom(t, roomOpts{url: "tcp://" + ln.Addr().String(), noWait: true})
	defer r.stop(false)

	// While the SUBACK is held, nothing may be published. Absence needs a
	// window: a room that publishes before its subscription does so at
	// once (the connection is up), well within it.
	select {
	case <-h.published:
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("the room published before its subscriptions were granted: %v", h.sent)
	case <-time.After(300 * time.Millisecond):
	}
	close(h.release)
	select {
	case <-h.published:
	case <-time.After(waitTimeout):
		t.Fatal("the room published nothing after its subscriptions were granted")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, "SUBSCRIBE", h.sent[0], "%v", h.sent)
	require.Equal(t, "PUBLISH visitrooms/room-a/availability", h.sent[1], "%v", h.sent)
}

// subackRefuser is a proxy between a room and a broker that turns the
// broker's first refusals SUBACKs into refusals (0x80 for every filter), as
// a broker does whose ACL refuses them, or mochi-mqtt when the packet
// identifier is still in use by the session it resumed.
type subackRefuser struct {
	ln       net.Listener
	upstream string
	refusals int
	mu       sync.Mutex
	refused  int
	subs     int // SUBSCRIBEs the room sent
}

func (h *subackRefuser) serve(t *testing.T) {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", h.upstream)
		if err != nil {
			t.Errorf("dial the broker: %v", err)
			_ = c.Close()
			return
		}
		t.Cleanup(func() { _ = c.Close(); _ = up.Close() })
		go func() {
			for {
				p, err := packets.ReadPacket(c)
				if err != nil {
					return
				}
				if _, ok := p.(*packets.SubscribePacket); ok {
					h.mu.Lock()
					h.subs++
					h.mu.Unlock()
				}
				if p.Write(up) != nil {
					return
				}
			}
		}()
		go func() {
			for {
				p, err := packets.ReadPacket(up)
				if err != nil {
					return
				}
				if sa, ok := p.(*packets.SubackPacket); ok {
					h.mu.Lock()
					if h.refused < h.refusals {
						h.refused++
						for i := range sa.ReturnCodes {
							sa.ReturnCodes[i] = 0x80
						}
					}
					h.mu.Unlock()
				}
				if p.Write(c) != nil {
					return
				}
			}
		}()
	}
}

// TestRefusedSubscriptionIsTriedAgain: a broker that refuses the room's
// subscriptions on a connection that stays up must not leave the room deaf
// to its commands on it: the room subscribes again, with backoff, and the
// command sent meanwhile is answered once the broker grants them.
func TestRefusedSubscriptionIsTriedAgain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	url := mqtttest.Embedded(t)
	h := &subackRefuser{ln: ln, upstream: strings.TrimPrefix(url, "tcp://"), refusals: 2}
	go h.serve(t)
	obs := observe(t, url, observerOpts{})
	r := startRoom(t, roomOpts{url: "tcp://" + ln.Addr().String(), noWait: true})
	defer r.stop(false)

	select {
	case <-r.c.Subscribed():
	case <-time.After(waitTimeout):
		t.Fatal("the room never subscribed again after its subscriptions were refused")
	}
	rep := obs.command("room-a", `{"request_id":"s1","action":"start_visit","expires_at":"`+exp()+`","visit_id":"v-1","duration":"1h"}`, "s1")
	require.True(t, rep.OK, "%+v", rep)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, 2, h.refused)
	require.Equal(t, 3, h.subs, "one SUBSCRIBE per refusal and the one granted, on one connection")
}
