package siteworld

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// LinkTopic is where the booking system learns which sites are connected:
// each site's bridge publishes 1 (up) or 0 (down, its Last Will) there,
// retained at the centre, the site's id as the fourth level
// (site-bridge.conf's notifications).
const LinkTopic = "$SYS/broker/connection/+/state"

// Consoles say how a world's consoles behave: the booking system at the
// centre (Consumer) and the guard console at each site (Guard).
type Consoles struct {
	// Persistent keeps the consoles' sessions at their brokers (clean
	// session false) while they are away, as production consoles do; false
	// gives them clean sessions.
	Persistent bool
	// States: the booking system also follows the rooms' retained states,
	// which name each room's latest seq, so that a gap at the end of a
	// room's records shows. Replies: it keeps the replies to commands
	// (Reply).
	States, Replies bool
	// RepairEvery, if not zero, makes the booking system ask for a replay of
	// every gap this often, for the sites whose bridge is up; otherwise it
	// asks only when Repair or CatchUp does.
	RepairEvery time.Duration
	// FloorProbes adds a FloorProbe at each site.
	FloorProbes bool
}

// Consumer is the booking system at the centre: a session under the
// booking identity, following every room of every site. It keeps the first
// arrival of every (site, room, epoch, seq) on events and on alerts, counts
// duplicates (delivery is at least once), learns how far each room's
// records go, and asks the rooms to replay what is missing.
type Consumer struct {
	cli      paho.Client
	cmds     *commandLog
	errorf   func(format string, args ...any)
	patience time.Duration
	messages atomic.Int64
	floors   map[string]chan probeMsg // site → floor probes; fixed at start

	mu      sync.Mutex
	l       *ledger
	replies map[string]contract.ReplyMessage
	links   map[string]string    // site → "1" up, "0" down
	ups     map[string]int       // site → live (not retained) "1"s: the bridge's connections
	heard   map[string]time.Time // site → when a record or state of one of its rooms last arrived
	changed chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newConsumer(centre Centre, sites []string, o Consoles, cmds *commandLog, errorf func(string, ...any), patience time.Duration) (*Consumer, error) {
	c := &Consumer{cmds: cmds, errorf: errorf, patience: patience, floors: map[string]chan probeMsg{}, l: newLedger(),
		replies: map[string]contract.ReplyMessage{}, links: map[string]string{}, ups: map[string]int{}, heard: map[string]time.Time{}, changed: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range sites {
		c.floors[s] = make(chan probeMsg, 64)
	}
	filters := map[string]byte{"visitrooms/+/+/events": 1, "visitrooms/+/+/alerts": 1, LinkTopic: 1}
	if o.States {
		filters["visitrooms/+/+/state"] = 1
	}
	if o.Replies {
		filters["visitrooms/+/+/reply"] = 1
	}
	cert, key, err := centre.ClientCert(BookingUser)
	if err != nil {
		return nil, fmt.Errorf("booking system: %w", err)
	}
	tc, err := centre.CA().ClientConfig(cert, key)
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, n := range centre.Nodes() {
		urls = append(urls, "ssl://"+n.ClientAddr())
	}
	c.cli, err = console{urls: urls, user: BookingUser, tls: tc, clean: !o.Persistent, filters: filters,
		handler: c.handle, patience: patience}.connect()
	if err != nil {
		return nil, fmt.Errorf("booking system: %w", err)
	}
	if o.RepairEvery > 0 {
		go c.repairEvery(o.RepairEvery)
	} else {
		close(c.done)
	}
	return c, nil
}

func (c *Consumer) handle(_ paho.Client, m paho.Message) {
	now := wallclock.Now()
	parts := strings.Split(m.Topic(), "/")
	defer c.notify()
	if parts[0] == "$SYS" && len(parts) == 5 {
		c.mu.Lock()
		c.links[parts[3]] = string(m.Payload())
		if !m.Retained() && string(m.Payload()) == "1" {
			c.ups[parts[3]]++
		}
		c.mu.Unlock()
		return
	}
	if len(parts) != 4 || parts[0] != "visitrooms" {
		return
	}
	site, room, kind := parts[1], parts[2], parts[3]
	if !m.Retained() {
		c.mu.Lock()
		c.heard[site] = now
		c.mu.Unlock()
	}
	switch kind {
	case "events", "alerts":
		c.messages.Add(1)
		if room == FloorUser {
			if n, err := strconv.ParseUint(string(m.Payload()), 10, 64); err == nil {
				select {
				case c.floors[site] <- probeMsg{n: n, arrived: now}:
				default:
				}
			}
			return
		}
		var ev contract.EventMessage
		if json.Unmarshal(m.Payload(), &ev) != nil || ev.Room != room {
			c.problem("booking: bad record on %s: %q", m.Topic(), m.Payload())
			return
		}
		on := onEvents
		if kind == "alerts" {
			on = onAlerts
		}
		c.mu.Lock()
		c.l.add(on, Key{Site: site, Room: room, Epoch: ev.Epoch, Seq: ev.Seq}, ev.Type, now)
		c.mu.Unlock()
	case "state":
		var st contract.StateMessage
		if len(m.Payload()) == 0 || json.Unmarshal(m.Payload(), &st) != nil {
			return
		}
		c.mu.Lock()
		c.l.known(Key{Site: site, Room: room, Epoch: st.Epoch, Seq: st.Seq})
		c.mu.Unlock()
	case "reply":
		var rep contract.ReplyMessage
		if json.Unmarshal(m.Payload(), &rep) == nil {
			c.mu.Lock()
			c.replies[rep.RequestID] = rep
			c.mu.Unlock()
		}
	}
}

func (c *Consumer) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *Consumer) problem(format string, args ...any) {
	if c.errorf != nil {
		c.errorf(format, args...)
	}
}

// Messages counts what arrived on events and alerts, duplicates and floor
// probes included.
func (c *Consumer) Messages() int64 { return c.messages.Load() }

// repairEvery asks for a replay of every gap every period until Close.
func (c *Consumer) repairEvery(period time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.Repair()
	}
}

// Repair asks the rooms, through their sites' bridges that are up, to
// replay every gap in their records (a request unanswered for 5 s is sent
// again), and returns how many requests it sent.
func (c *Consumer) Repair() int {
	c.mu.Lock()
	gaps := c.l.gaps(wallclock.Now(), c.reachable)
	c.mu.Unlock()
	for _, g := range gaps {
		c.replay(g)
	}
	return len(gaps)
}

// reachable reports whether a replay request can reach the site now: its
// bridge's flag is up, or one of its rooms was heard from within
// heardRecently. The flag alone can lie: on a clustered centre a bridge's
// Last Will dies with the node that held its connection, and a retained
// flag delivered on resubscribing may be older than the live one before
// it. c.mu is held.
func (c *Consumer) reachable(site string) bool {
	return c.links[site] == "1" || wallclock.Since(c.heard[site]) < heardRecently
}

// heardRecently: a room publishes its state every 30 s (heartbeat).
const heardRecently = 30 * time.Second

func (c *Consumer) replay(g gap) {
	ep, err := journal.ParseEpoch(g.Room.Epoch)
	if err != nil {
		c.problem("booking: epoch %q of %s: %v", g.Room.Epoch, g.Room, err)
		return
	}
	id := fmt.Sprintf("replay-%s-%s-%d-%d-%d", g.Room.Site, g.Room.Room, g.From, g.To, wallclock.Now().UnixNano())
	payload := contract.EncodeReplay(id, contract.Replay{Epoch: ep, From: g.From, To: g.To}, wallclock.Now().Add(CommandLife))
	c.cli.Publish(fmt.Sprintf("visitrooms/%s/%s/cmd", g.Room.Site, g.Room.Room), 1, false, payload)
}

// Send publishes a command to a room of a site, expiring at expires.
func (c *Consumer) Send(site, room string, cmd controller.Command, expires time.Time) error {
	return waitToken(c.patience, c.cli.Publish(fmt.Sprintf("visitrooms/%s/%s/cmd", site, room), 1, false, c.cmds.encode(cmd, expires)),
		"booking: %s to %s/%s: publish", cmd.Action, site, room)
}

// Pause disconnects the booking system; a persistent session stays at the
// centre and queues what arrives meanwhile.
func (c *Consumer) Pause() {
	c.cli.Disconnect(100)
	c.mu.Lock()
	clear(c.links) // learnt again on reconnecting (retained)
	c.mu.Unlock()
}

// Resume connects the booking system again.
func (c *Consumer) Resume() error {
	return waitToken(c.patience, c.cli.Connect(), "booking: reconnect")
}

// Await waits up to timeout until cond (called with no lock held) is true,
// testing it again whenever a message arrives.
func (c *Consumer) Await(what string, timeout time.Duration, cond func() bool) error {
	return c.AwaitOr(what, timeout, cond, func() string { return "" })
}

// AwaitOr is Await with more to say when it fails.
func (c *Consumer) AwaitOr(what string, timeout time.Duration, cond func() bool, explain func() string) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-c.changed:
		case <-deadline.C:
			c.mu.Lock()
			state := fmt.Sprintf("links %v; latest seqs %v; %d replay requests", c.links, c.l.latest, c.l.replays)
			c.mu.Unlock()
			return fmt.Errorf("booking: %s: not within %s; %s. %s", what, timeout, state, explain())
		}
	}
	return nil
}

// AwaitLink waits up to timeout until the centre holds the site's bridge as
// up (or down).
func (c *Consumer) AwaitLink(site string, up bool, timeout time.Duration) error {
	want := map[bool]string{true: "1", false: "0"}[up]
	return c.Await(fmt.Sprintf("bridge of %s %s", site, map[bool]string{true: "up", false: "down"}[up]), timeout, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.links[site] == want
	})
}

// LinkUps counts the times the site's bridge announced itself up while the
// booking system was connected: each is a connection the centre accepted.
func (c *Consumer) LinkUps(site string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ups[site]
}

// HasType reports whether a record of type typ of the room has arrived.
func (c *Consumer) HasType(site, room, typ string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.l.types {
		if k.Site == site && k.Room == room && v == typ {
			return true
		}
	}
	return false
}

// AlertArrived returns when record k first arrived on alerts.
func (c *Consumer) AlertArrived(k Key) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.l.alerts[k]
	return at, ok
}

// Reply returns the reply to request id, with Consoles.Replies.
func (c *Consumer) Reply(id string) (contract.ReplyMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.replies[id]
	return r, ok
}

// Missing returns the keys of all not yet received on events, and those of
// alerts not yet received on alerts.
func (c *Consumer) Missing(all, alerts []Key) (events, alertsMissing []Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.missing(all, alerts)
}

// Stats are the booking system's counts.
type Stats struct {
	Records    int // distinct records received on events
	Duplicates int // copies dropped, on events and alerts
	Replays    int // replay requests sent
	Recovered  int // records that first arrived after a replay asked for them
}

// Stats returns the counts so far.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Records: len(c.l.events), Duplicates: c.l.dups, Replays: c.l.replays, Recovered: c.l.recovered}
}

// Expect says what must arrive: every record of all (World.Expected), on
// events. CatchUp waits for it; the catch-up figures start afresh.
func (c *Consumer) Expect(all []Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.expect(all)
}

// CatchUp is how the booking system caught up with what Expect named.
type CatchUp struct {
	First     time.Time // the first record after Expect
	Caught    time.Time // when the last expected record arrived (since, if none was missing)
	Recovered int       // records that first arrived after a replay asked for them
}

// CatchUp waits up to timeout until every record Expect named has arrived.
// Whenever nothing has arrived for quiet since the first record while
// records are missing, it asks for replays of the gaps (Repair): the site's
// queue may have dropped them.
func (c *Consumer) CatchUp(ctx context.Context, since time.Time, timeout, quiet time.Duration) (CatchUp, error) {
	deadline := wallclock.Now().Add(timeout)
	lastCount, still := c.messages.Load(), wallclock.Now()
	for wallclock.Now().Before(deadline) {
		c.mu.Lock()
		behind, first, caught, recovered := c.l.behind, c.l.first, c.l.caught, c.l.recovered
		c.mu.Unlock()
		if behind == 0 {
			if caught.IsZero() {
				caught = since
			}
			return CatchUp{First: first, Caught: caught, Recovered: recovered}, nil
		}
		if n := c.messages.Load(); n != lastCount || first.IsZero() {
			lastCount, still = n, wallclock.Now()
		} else if wallclock.Since(still) > quiet {
			c.Repair()
			still = wallclock.Now()
		}
		select {
		case <-c.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return CatchUp{First: first}, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CatchUp{First: c.l.first}, fmt.Errorf("the centre still lacked records of %d rooms %s after the WAN came back", c.l.behind, timeout)
}

// DrainRate returns the records per second since Expect, second by second
// from the first: the median second and the busiest.
func (c *Consumer) DrainRate() (median, busiest int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.drainRate()
}

// Close stops asking for replays and disconnects.
func (c *Consumer) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.cli.Disconnect(100)
}
