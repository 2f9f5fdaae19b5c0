package pager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/roomd/roomd/pager/espa"
	"github.com/roomd/roomd/wallclock"
)

// Line is the paging system's side of the gateway: an espa.Station.
type Line interface {
	Poll() (*espa.Block, error)
	Send(espa.Call) error
}

// LinkState is what the gateway knows of the paging system.
type LinkState string

// The link states.
const (
	LinkUnknown LinkState = "unknown" // no exchange yet
	LinkUp      LinkState = "ok"      // the paging system answers
	LinkDown    LinkState = "paging_down"
)

// LinkStatus is reported at every change of the link's state.
type LinkStatus struct {
	State  LinkState
	Since  time.Time
	Detail string // why it is down
	Queued int    // pages waiting
}

// GatewayOptions configure a Gateway.
type GatewayOptions struct {
	Rules Rules
	// Open opens the line (the serial port); it is opened again after an
	// I/O error (a USB adapter pulled out and put back). close releases it.
	Open func() (line Line, close func(), err error)
	// PollEvery: the paging system is polled this often while nothing is
	// sent; an unanswered poll is a failed exchange.
	PollEvery time.Duration
	// DeadAfter consecutive failed exchanges make the link down.
	DeadAfter int
	// Tries: a page the paging system refuses this many times while it
	// answers polls is dropped (logged), so that it cannot hold the queue.
	Tries int
	// OnLink is called (on the gateway's goroutine) at every change.
	OnLink func(LinkStatus)
	// OnPage is called after every page the paging system took.
	OnPage func(Page)
	Logger *slog.Logger
	Now    func() time.Time
}

// Input is one thing for the gateway to apply: exactly one field is set.
type Input struct {
	Event       *Event
	Room        string        // for Active, RepeatEvery, Forget
	Active      []Alert       // the room's active alerts (its state), with Reconcile
	Reconcile   bool          // apply Active
	RepeatEvery time.Duration // the room's repeat_every, with SetRepeat
	SetRepeat   bool
	Forget      bool
}

// Gateway pages the paging system with what the Pager decides. Deliver
// may be called from any goroutine; Run is the one loop doing I/O.
type Gateway struct {
	o     GatewayOptions
	pager *Pager
	log   *slog.Logger

	mu     sync.Mutex
	inbox  []Input
	signal chan struct{}

	line      Line
	closeLine func()
	state     LinkState
	since     time.Time
	fails     int
	lastErr   error
	nextPoll  time.Time
	pageFails map[uint64]int
}

// NewGateway returns a gateway.
func NewGateway(o GatewayOptions) *Gateway {
	if o.PollEvery <= 0 {
		o.PollEvery = 2 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 3
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.Now == nil {
		o.Now = wallclock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Gateway{o: o, pager: New(o.Rules), log: o.Logger, signal: make(chan struct{}, 1),
		state: LinkUnknown, pageFails: map[uint64]int{}}
}

// Deliver queues an input for the loop; it never blocks.
func (g *Gateway) Deliver(in Input) {
	g.mu.Lock()
	g.inbox = append(g.inbox, in)
	g.mu.Unlock()
	select {
	case g.signal <- struct{}{}:
	default:
	}
}

func (g *Gateway) apply(now time.Time) {
	g.mu.Lock()
	in := g.inbox
	g.inbox = nil
	g.mu.Unlock()
	for _, i := range in {
		switch {
		case i.Event != nil:
			g.pager.Apply(*i.Event)
		case i.Reconcile:
			g.pager.Reconcile(i.Room, i.Active, now)
		case i.SetRepeat:
			g.pager.SetRepeatEvery(i.Room, i.RepeatEvery)
		case i.Forget:
			g.pager.Forget(i.Room)
		}
	}
}

// Run pages until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.drop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := g.o.Now()
		g.apply(now)
		g.pager.Tick(now)
		if pg, ok := g.pager.Next(); ok && g.state != LinkDown && g.open() {
			g.send(pg)
			continue
		}
		if !now.Before(g.nextPoll) {
			g.poll()
			continue
		}
		wait := g.nextPoll.Sub(now)
		if w := g.pager.Wake(); !w.IsZero() && w.Sub(now) < wait {
			wait = max(w.Sub(now), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-g.signal:
		case <-t.C:
		}
		t.Stop()
	}
}

// open makes sure the line is open; a failure counts as a failed exchange.
func (g *Gateway) open() bool {
	if g.line != nil {
		return true
	}
	line, closeLine, err := g.o.Open()
	if err != nil {
		g.failed(fmt.Errorf("open the line: %w", err))
		return false
	}
	g.line, g.closeLine = line, closeLine
	return true
}

func (g *Gateway) drop() {
	if g.closeLine != nil {
		g.closeLine()
	}
	g.line, g.closeLine = nil, nil
}

func (g *Gateway) send(pg Page) {
	err := g.line.Send(pg.Call())
	if err == nil {
		g.pager.Sent(pg)
		delete(g.pageFails, pg.seq)
		g.log.Info("paged", "room", pg.Room, "alert", pg.AlertID, "address", pg.Address,
			"priority", pg.Priority.String(), "reason", pg.Reason.String())
		g.ok()
		if g.o.OnPage != nil {
			g.o.OnPage(pg)
		}
		return
	}
	g.failed(err)
	if errors.Is(err, espa.ErrRefused) {
		g.pageFails[pg.seq]++
		if g.pageFails[pg.seq] >= g.o.Tries {
			delete(g.pageFails, pg.seq)
			g.pager.Drop(pg)
			g.log.Error("the paging system refuses this page; dropped", "room", pg.Room, "alert", pg.AlertID,
				"address", pg.Address, "err", err)
		}
	}
}

func (g *Gateway) poll() {
	g.nextPoll = g.o.Now().Add(g.o.PollEvery)
	if !g.open() {
		return
	}
	blk, err := g.line.Poll()
	if err != nil {
		g.failed(err)
		return
	}
	if blk != nil {
		g.log.Info("paging system sent a block", "header", string(rune(blk.Header)), "records", len(blk.Records))
	}
	g.ok()
}

func (g *Gateway) ok() {
	g.fails, g.lastErr = 0, nil
	g.nextPoll = g.o.Now().Add(g.o.PollEvery)
	if g.state != LinkUp {
		if g.state == LinkDown {
			g.log.Info("paging system reachable again", "queued", g.pager.Queued())
		}
		g.change(LinkUp, "")
	}
}

func (g *Gateway) failed(err error) {
	g.fails++
	g.lastErr = err
	g.log.Warn("paging system exchange failed", "err", err, "consecutive", g.fails)
	if !errors.Is(err, espa.ErrNoAnswer) && !errors.Is(err, espa.ErrRefused) {
		g.drop() // an I/O error: open the port again at the next try
	}
	if g.fails >= g.o.DeadAfter && g.state != LinkDown {
		g.log.Error("paging system not reachable: pages wait until it answers", "err", err, "queued", g.pager.Queued())
		g.change(LinkDown, err.Error())
	}
}

func (g *Gateway) change(s LinkState, detail string) {
	g.state, g.since = s, g.o.Now()
	if g.o.OnLink != nil {
		g.o.OnLink(LinkStatus{State: s, Since: g.since, Detail: detail, Queued: g.pager.Queued()})
	}
}
