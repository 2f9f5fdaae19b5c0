package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/link"
)

// floorTopic carries the floor probe: a bare publisher to a bare subscriber.
const floorTopic = "roombench/floor"

// received is one message as the guard console saw it.
type received struct {
	Topic   string
	Event   link.EventMessage
	Reply   *link.ReplyMessage // set for reply messages
	Arrived time.Time
}

// guard is a guard console: one MQTT client subscribed, QoS 1, to every
// room's events and alerts and to the floor topic. It stamps each message on
// arrival (first thing in the handler) and hands it to the room's inbox.
type guard struct {
	cli  mqtt.Client
	base string

	mu      sync.Mutex
	inboxes map[string]chan received
	seen    map[string]*roomSeen
	floor   chan floorMsg

	overflow atomic.Int64 // messages dropped because an inbox was full
	bad      atomic.Int64 // payloads that did not decode
}

type floorMsg struct {
	n       uint64
	arrived time.Time
}

// newGuard connects the subscriber and subscribes. With persistent, its
// session (clean session false) survives a broker restart, as the outage
// suite needs; on a broker roombench did not start it leaves nothing behind.
func newGuard(broker, base, clientID string, persistent bool) (*guard, error) {
	g := &guard{base: base, inboxes: map[string]chan received{}, seen: map[string]*roomSeen{},
		floor: make(chan floorMsg, 1024)}
	filters := map[string]byte{base + "/+/events": 1, base + "/+/alerts": 1, base + "/+/reply": 1, floorTopic: 1}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(!persistent).SetProtocolVersion(4).SetKeepAlive(5 * time.Second).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetOrderMatters(true).
		SetDefaultPublishHandler(g.handle).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Subscribe again on every connection in case the broker lost the session.
			c.SubscribeMultiple(filters, g.handle)
		})
	g.cli = mqtt.NewClient(opts)
	tok := g.cli.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect guard subscriber to %s: %v", broker, tok.Error())
	}
	tok = g.cli.SubscribeMultiple(filters, g.handle)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe guard to %v: %v", filters, tok.Error())
	}
	return g, nil
}

// inbox registers a room and returns the channel its messages arrive on.
func (g *guard) inbox(room string, depth int) chan received {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan received, depth)
	g.inboxes[room] = ch
	g.seen[room] = &roomSeen{events: map[uint64]string{}, alerts: map[uint64]received{}}
	return ch
}

// roomSeen is every record of a room the guard received, by seq: the type
// of each events message and the first copy of each alerts message.
type roomSeen struct {
	events     map[uint64]string
	alerts     map[uint64]received
	duplicates int
}

// snapshot returns a copy of what the guard received for room.
func (g *guard) snapshot(room string) roomSeen {
	g.mu.Lock()
	defer g.mu.Unlock()
	src := g.seen[room]
	if src == nil {
		return roomSeen{}
	}
	out := roomSeen{events: make(map[uint64]string, len(src.events)), alerts: make(map[uint64]received, len(src.alerts)), duplicates: src.duplicates}
	for k, v := range src.events {
		out.events[k] = v
	}
	for k, v := range src.alerts {
		out.alerts[k] = v
	}
	return out
}

func (g *guard) handle(_ mqtt.Client, m mqtt.Message) {
	now := time.Now()
	topic := m.Topic()
	if topic == floorTopic {
		n, err := strconv.ParseUint(string(m.Payload()), 10, 64)
		if err != nil {
			g.bad.Add(1)
			return
		}
		select {
		case g.floor <- floorMsg{n: n, arrived: now}:
		default:
			g.overflow.Add(1)
		}
		return
	}
	rest, ok := strings.CutPrefix(topic, g.base+"/")
	if !ok {
		return
	}
	room, _, _ := strings.Cut(rest, "/")
	if strings.HasSuffix(topic, "/reply") {
		var rep link.ReplyMessage
		if err := json.Unmarshal(m.Payload(), &rep); err != nil {
			g.bad.Add(1)
			return
		}
		g.mu.Lock()
		ch := g.inboxes[room]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- received{Topic: topic, Reply: &rep, Arrived: now}:
			default:
				g.overflow.Add(1)
			}
		}
		return
	}
	var ev link.EventMessage
	if err := json.Unmarshal(m.Payload(), &ev); err != nil {
		g.bad.Add(1)
		return
	}
	rec := received{Topic: topic, Event: ev, Arrived: now}
	g.mu.Lock()
	ch := g.inboxes[room]
	if rs := g.seen[room]; rs != nil {
		if strings.HasSuffix(topic, "/alerts") {
			if _, dup := rs.alerts[ev.Seq]; dup {
				rs.duplicates++
			} else {
				rs.alerts[ev.Seq] = rec
			}
		} else {
			if _, dup := rs.events[ev.Seq]; dup {
				rs.duplicates++
			} else {
				rs.events[ev.Seq] = ev.Type
			}
		}
	}
	g.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- rec:
	default:
		g.overflow.Add(1)
	}
}

func (g *guard) Close() { g.cli.Disconnect(100) }

// prober is the floor's publisher and the console that sends commands and
// sim/set messages: a bare paho client, QoS 1.
type prober struct {
	cli mqtt.Client
	mu  sync.Mutex // one floor probe at a time
	n   uint64
}

func newProber(broker, clientID string) (*prober, error) {
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(true).SetProtocolVersion(4).SetKeepAlive(5 * time.Second).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond)
	cli := mqtt.NewClient(opts)
	tok := cli.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect prober to %s: %v", broker, tok.Error())
	}
	return &prober{cli: cli}, nil
}

// publish publishes QoS 1 and waits for the PUBACK.
func (p *prober) publish(topic string, payload []byte) error {
	tok := p.cli.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("publish to %s: no PUBACK within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// floorSample publishes one probe and returns the time from just before the
// publish to its arrival at the guard. Probes from several goroutines take
// turns.
func (p *prober) floorSample(g *guard, timeout time.Duration) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	n := p.n
	start := time.Now()
	p.cli.Publish(floorTopic, 1, false, []byte(strconv.FormatUint(n, 10)))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m := <-g.floor:
			if m.n == n {
				return m.arrived.Sub(start), nil
			}
		case <-deadline.C:
			return 0, fmt.Errorf("floor probe %d did not arrive within %s", n, timeout)
		}
	}
}

func (p *prober) Close() { p.cli.Disconnect(100) }
