package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// floorTopic carries the floor probe: a bare publisher to a bare subscriber.
const floorTopic = "roombench/floor"

// received is one message as the guard console saw it.
type received struct {
	Topic   string
	Event   contract.EventMessage
	Reply   *contract.ReplyMessage // set for reply messages
	Arrived time.Time
}

// guard is a guard console: one roomclient connection subscribed, QoS 1,
// to every room's events, alerts and replies and to the floor topic. The
// client stamps each message on arrival (the first thing it does with it,
// for the rooms' messages and the floor probes alike); the guard hands it
// to the room's inbox.
type guard struct {
	cli  *roomclient.Client
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := roomclient.Dial(ctx, roomclient.Options{
		Broker: broker, ClientID: clientID, Base: base, CleanSession: !persistent,
		Streams:   roomclient.Events | roomclient.Alerts | roomclient.Replies,
		Keepalive: 5 * time.Second, MaxReconnectInterval: 200 * time.Millisecond,
		OnMessage: g.handle,
	})
	if err != nil {
		return nil, fmt.Errorf("guard subscriber: %w", err)
	}
	if err := cli.Subscribe(ctx, floorTopic, g.handleFloor); err != nil {
		cli.Close()
		return nil, fmt.Errorf("guard subscriber: %w", err)
	}
	g.cli = cli
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

func (g *guard) handleFloor(m roomclient.Message) {
	n, err := strconv.ParseUint(string(m.Payload), 10, 64)
	if err != nil {
		g.bad.Add(1)
		return
	}
	select {
	case g.floor <- floorMsg{n: n, arrived: m.Arrived}:
	default:
		g.overflow.Add(1)
	}
}

func (g *guard) handle(m roomclient.Message) {
	if m.Err != nil {
		g.bad.Add(1)
		return
	}
	if m.Reply != nil {
		g.mu.Lock()
		ch := g.inboxes[m.Room]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- received{Topic: m.Topic, Reply: m.Reply, Arrived: m.Arrived}:
			default:
				g.overflow.Add(1)
			}
		}
		return
	}
	if m.Event == nil {
		return
	}
	rec := received{Topic: m.Topic, Event: *m.Event, Arrived: m.Arrived}
	ev := m.Event
	g.mu.Lock()
	ch := g.inboxes[m.Room]
	if rs := g.seen[m.Room]; rs != nil {
		if m.Kind == roomclient.KindAlert {
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

func (g *guard) Close() { g.cli.Close() }

// prober is the floor's publisher and the console that sends commands and
// sim/set messages: a roomclient connection, QoS 1, clean session, sending
// commands on the booking system's anonymous topic.
type prober struct {
	cli *roomclient.Client
	mu  sync.Mutex // one floor probe at a time
	n   uint64
}

func newProber(broker, clientID string) (*prober, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := roomclient.Dial(ctx, roomclient.Options{
		Broker: broker, ClientID: clientID, CleanSession: true,
		Keepalive: 5 * time.Second, MaxReconnectInterval: 200 * time.Millisecond, CommandLife: commandLife,
	})
	if err != nil {
		return nil, fmt.Errorf("prober: %w", err)
	}
	return &prober{cli: cli}, nil
}

// publish publishes QoS 1 and waits for the PUBACK.
func (p *prober) publish(topic string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.cli.Publish(ctx, topic, payload, false)
}

// post publishes a command to room once and waits for the PUBACK (the
// reply reaches the guard).
func (p *prober) post(room string, cmd roomclient.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.cli.Post(ctx, room, cmd)
	return err
}

// floorSample publishes one probe and returns the time from just before the
// publish to its arrival at the guard. Probes from several goroutines take
// turns.
func (p *prober) floorSample(g *guard, timeout time.Duration) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	n := p.n
	start := wallclock.Now()
	if err := p.publish(floorTopic, []byte(strconv.FormatUint(n, 10))); err != nil {
		return 0, err
	}
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

func (p *prober) Close() { p.cli.Close() }
