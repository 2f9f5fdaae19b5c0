package siteworld

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// commandLog remembers the expires_at of every command the consoles send,
// for the check that none acted after it (CommandsInTime).
type commandLog struct {
	mu   sync.Mutex
	sent map[string]time.Time // request id → expires_at
}

// encode encodes cmd with expires and remembers the expiry.
func (c *commandLog) encode(cmd controller.Command, expires time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = map[string]time.Time{}
	}
	c.sent[cmd.RequestID] = expires
	return contract.EncodeCommand(cmd, expires)
}

func (c *commandLog) snapshot() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.sent)
}

// Seen is a record or a reply as a site's guard console saw it: the first
// copy of each record.
type Seen struct {
	Key   Key
	Event contract.EventMessage
	Reply *contract.ReplyMessage // a reply instead of a record
	// Arrived is when it came; WANDown whether the site's WAN was cut then.
	Arrived time.Time
	WANDown bool
}

// IsAlert reports whether s is an alert record of type typ
// ("alert_raised") and kind ("panic").
func (s Seen) IsAlert(typ, kind string) bool {
	return s.Reply == nil && s.Event.Type == typ && s.Event.Alert != nil && s.Event.Alert.Kind == kind
}

// Guard is a site's guard console: a session on the site broker under the
// guard-station identity, reading every room's alerts and replies and
// acknowledging alerts on cmd/guard-1 (GuardOperator). It keeps the first copy of
// each alert record, in an inbox per room.
type Guard struct {
	site     *Site
	cli      paho.Client
	cmds     *commandLog
	errorf   func(format string, args ...any)
	patience time.Duration

	mu      sync.Mutex
	inboxes map[string]chan Seen
	seen    map[Key]bool
	floor   chan probeMsg
	ids     atomic.Uint64
}

func newGuard(s *Site, persistent bool, cmds *commandLog, errorf func(string, ...any), patience time.Duration) (*Guard, error) {
	g := &Guard{site: s, cmds: cmds, errorf: errorf, patience: patience, inboxes: map[string]chan Seen{},
		seen: map[Key]bool{}, floor: make(chan probeMsg, 64)}
	tc, err := s.Broker.CA.ClientConfig("", "")
	if err != nil {
		return nil, err
	}
	g.cli, err = console{urls: []string{s.URL()}, user: GuardUser, tls: tc, clean: !persistent, patience: patience,
		filters: map[string]byte{"visitrooms/+/alerts": 1, "visitrooms/+/reply": 1}, handler: g.handle}.connect()
	if err != nil {
		return nil, fmt.Errorf("guard of %s: %w", s.ID, err)
	}
	return g, nil
}

func (g *Guard) inbox(room string) chan Seen {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := g.inboxes[room]
	if ch == nil {
		ch = make(chan Seen, 1024)
		g.inboxes[room] = ch
	}
	return ch
}

func (g *Guard) handle(_ paho.Client, m paho.Message) {
	now := wallclock.Now()
	down := g.site.WAN.Down()
	parts := strings.Split(m.Topic(), "/")
	if len(parts) != 3 {
		return
	}
	room, kind := parts[1], parts[2]
	if room == FloorUser {
		if n, err := strconv.ParseUint(string(m.Payload()), 10, 64); err == nil {
			select {
			case g.floor <- probeMsg{n: n, arrived: now}:
			default:
			}
		}
		return
	}
	s := Seen{Arrived: now, WANDown: down}
	if kind == "reply" {
		var rep contract.ReplyMessage
		if json.Unmarshal(m.Payload(), &rep) != nil {
			return
		}
		s.Reply = &rep
	} else {
		if json.Unmarshal(m.Payload(), &s.Event) != nil {
			g.problem("guard %s: bad alert on %s: %q", g.site.ID, m.Topic(), m.Payload())
			return
		}
		s.Key = Key{Site: g.site.ID, Room: room, Epoch: s.Event.Epoch, Seq: s.Event.Seq}
		g.mu.Lock()
		dup := g.seen[s.Key]
		g.seen[s.Key] = true
		g.mu.Unlock()
		if dup {
			return // a redelivery, or a replay for the centre
		}
	}
	select {
	case g.inbox(room) <- s:
	default:
		g.problem("guard %s: inbox of %s full", g.site.ID, room)
	}
}

func (g *Guard) problem(format string, args ...any) {
	if g.errorf != nil {
		g.errorf(format, args...)
	}
}

// Await waits up to timeout for a record or reply of room for which ok is
// true; what comes before it is dropped.
func (g *Guard) Await(ctx context.Context, room string, timeout time.Duration, ok func(Seen) bool) (Seen, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	in := g.inbox(room)
	for {
		select {
		case m := <-in:
			if ok(m) {
				return m, nil
			}
		case <-t.C:
			return Seen{}, fmt.Errorf("guard %s: nothing from %s within %s", g.site.ID, room, timeout)
		case <-ctx.Done():
			return Seen{}, ctx.Err()
		}
	}
}

// Next waits up to timeout for the room's next alert record of type typ
// and kind.
func (g *Guard) Next(ctx context.Context, room, typ, kind string, timeout time.Duration) (Seen, error) {
	s, err := g.Await(ctx, room, timeout, func(s Seen) bool { return s.IsAlert(typ, kind) })
	if err != nil && ctx.Err() == nil {
		return s, fmt.Errorf("guard %s: no %s %s from %s within %s", g.site.ID, typ, kind, room, timeout)
	}
	return s, err
}

// Request sends cmd to room on cmd/guard-1, as the board sends for the
// guard it logs in (with a request id of its
// own unless cmd has one) and waits up to timeout for a message matching
// want (nil: the reply), sending it again with the same request id every
// 2 s while neither came.
func (g *Guard) Request(ctx context.Context, room string, cmd controller.Command, timeout time.Duration, want func(Seen) bool) (Seen, error) {
	if cmd.RequestID == "" {
		cmd.RequestID = fmt.Sprintf("%s-%d", GuardUser, g.ids.Add(1))
	}
	payload := g.cmds.encode(cmd, wallclock.Now().Add(CommandLife))
	end := wallclock.Now().Add(timeout)
	replied := false
	for wallclock.Now().Before(end) {
		if !replied {
			if err := waitToken(g.patience, g.cli.Publish("visitrooms/"+room+"/cmd/"+GuardOperator, 1, false, payload),
				"guard %s: %s to %s: publish", g.site.ID, cmd.Action, room); err != nil {
				return Seen{}, err
			}
		}
		m, err := g.Await(ctx, room, 2*time.Second, func(m Seen) bool {
			if m.Reply != nil && m.Reply.RequestID == cmd.RequestID {
				replied = true
				return want == nil
			}
			return want != nil && want(m)
		})
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return Seen{}, ctx.Err()
		}
	}
	return Seen{}, fmt.Errorf("guard %s: %s to %s (request %s): nothing within %s", g.site.ID, cmd.Action, room, cmd.RequestID, timeout)
}

// Ack acknowledges the alert of raised as the guard station and waits up to
// timeout until the room clears an alert of its kind.
func (g *Guard) Ack(ctx context.Context, raised Seen, timeout time.Duration) (Seen, error) {
	a := raised.Event.Alert
	if a == nil {
		return Seen{}, fmt.Errorf("guard %s: ack %s: not an alert", g.site.ID, raised.Key)
	}
	room := raised.Key.Room
	cmd := controller.Command{RequestID: fmt.Sprintf("ack-%s-%s-%s", g.site.ID, room, a.ID), Action: controller.ActionAckAlert, AlertID: a.ID}
	return g.Request(ctx, room, cmd, timeout, func(s Seen) bool { return s.IsAlert("alert_cleared", a.Kind) })
}

// Close disconnects the console.
func (g *Guard) Close() { g.cli.Disconnect(100) }

// probeMsg is a floor probe as it arrived.
type probeMsg struct {
	n       uint64
	arrived time.Time
}

// FloorProbe publishes, as the floor-probe identity at a site, a counter on
// visitrooms/floor-probe/alerts: the site's guard gets it from the site
// broker, the booking system through the bridge. Its times are the floor of
// the rooms' latencies: no room, no journal, the same brokers and links.
type FloorProbe struct {
	cli     paho.Client
	guard   *Guard
	booking *Consumer
	site    string
	n       uint64
}

func newFloorProbe(s *Site, c *Consumer, patience time.Duration) (*FloorProbe, error) {
	tc, err := s.Broker.CA.ClientConfig("", "")
	if err != nil {
		return nil, err
	}
	cli, err := console{urls: []string{s.URL()}, user: FloorUser, tls: tc, clean: true, patience: patience,
		handler: func(paho.Client, paho.Message) {}}.connect()
	if err != nil {
		return nil, fmt.Errorf("floor probe of %s: %w", s.ID, err)
	}
	return &FloorProbe{cli: cli, guard: s.Guard, booking: c, site: s.ID}, nil
}

// Sample publishes one probe and returns its time to the site's guard and,
// if withCentre, to the booking system; timeout bounds the whole.
func (f *FloorProbe) Sample(withCentre bool, timeout time.Duration) (site, centre time.Duration, err error) {
	f.n++
	n := f.n
	atCentre := f.booking.floors[f.site]
	start := wallclock.Now()
	f.cli.Publish("visitrooms/"+FloorUser+"/alerts", 1, false, []byte(strconv.FormatUint(n, 10)))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for site == 0 {
		select {
		case m := <-f.guard.floor:
			if m.n == n {
				site = m.arrived.Sub(start)
			}
		case <-deadline.C:
			return 0, 0, fmt.Errorf("floor probe %d of %s did not reach the guard", n, f.site)
		}
	}
	for withCentre && centre == 0 {
		select {
		case m := <-atCentre:
			if m.n == n {
				centre = m.arrived.Sub(start)
			}
		case <-deadline.C:
			return 0, 0, fmt.Errorf("floor probe %d of %s did not reach the centre", n, f.site)
		}
	}
	return site, centre, nil
}

// Close disconnects the probe.
func (f *FloorProbe) Close() { f.cli.Disconnect(100) }
