package pager_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/pager"
	"github.com/roomd/roomd/pager/espa"
	"github.com/roomd/roomd/pager/espatest"
	"github.com/roomd/roomd/wallclock"
)

// rig is a gateway on one end of a pseudo-terminal pair and the simulated
// paging system on the other.
type rig struct {
	gw    *pager.Gateway
	sim   *espatest.Sim
	links chan pager.LinkStatus
	run   func()
}

func newRig(t *testing.T, rules pager.Rules) *rig {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	port, err := espa.OpenSerial(tty.Name(), espa.DefaultSerial)
	require.NoError(t, err)
	tty.Close()
	sim := espatest.Start(ptmx)
	st, err := espa.NewStation(port, espa.Config{ReplyTimeout: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	r := &rig{sim: sim, links: make(chan pager.LinkStatus, 16)}
	r.gw = pager.NewGateway(pager.GatewayOptions{
		Rules:     rules,
		Open:      func() (pager.Line, func(), error) { return st, func() {}, nil },
		PollEvery: 50 * time.Millisecond,
		DeadAfter: 2,
		OnLink:    func(s pager.LinkStatus) { r.links <- s },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.run = func() { go func() { done <- r.gw.Run(ctx) }() }
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		port.Close()
		ptmx.Close()
		<-sim.Done()
	})
	return r
}

func (r *rig) waitLink(t *testing.T, want pager.LinkState) pager.LinkStatus {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-r.links:
			if s.State == want {
				return s
			}
		case <-deadline:
			t.Fatalf("link never became %s", want)
		}
	}
}

var rules = pager.Rules{
	Notices: true,
	Routes: []pager.Route{
		{Rooms: []string{"room-3"}, Kinds: []string{"panic"}, MinSeverity: pager.SeverityWarning, Addresses: []string{"103"}},
	},
}

func raised(room, id, kind string, sev pager.Severity, at time.Time) pager.Input {
	return pager.Input{Event: &pager.Event{Type: pager.Raised, At: at,
		Alert: pager.Alert{Room: room, ID: id, Kind: kind, Severity: sev, Point: "bed", RaisedAt: at}}}
}

func TestAPanicPagesItsAddressAtHighPriorityWithinASecond(t *testing.T) {
	r := newRig(t, rules)
	r.run()
	r.waitLink(t, pager.LinkUp)
	start := wallclock.Now()
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, start))
	r.gw.Deliver(raised("room-4", "panic-1", "panic", pager.SeverityCritical, start)) // no route: not paged
	calls := r.sim.WaitCalls(1, 2*time.Second)
	require.Len(t, calls, 1)
	assert.Less(t, calls[0].At.Sub(start), time.Second, "paged after %v", calls[0].At.Sub(start))
	assert.Equal(t, "103", calls[0].Address)
	assert.Equal(t, "2", calls[0].Priority, "record 6: high")
	assert.Equal(t, "PANIC room-3 bed", calls[0].Message)
}

func TestTheRoomsRepeatPagesAgain(t *testing.T) {
	r := newRig(t, rules)
	r.run()
	at := wallclock.Now()
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, at))
	require.Len(t, r.sim.WaitCalls(1, 2*time.Second), 1)
	rep := raised("room-3", "panic-1", "panic", pager.SeverityCritical, at)
	rep.Event.Type, rep.Event.At = pager.Repeated, at.Add(time.Minute)
	r.gw.Deliver(rep)
	calls := r.sim.WaitCalls(2, 2*time.Second)
	require.Len(t, calls, 2)
	assert.Equal(t, calls[0].Message, calls[1].Message)
	assert.Equal(t, "2", calls[1].Priority)
}

func TestThePagersOwnRepeatWhenTheRoomIsSilent(t *testing.T) {
	rl := rules
	rl.RepeatEvery, rl.RepeatGrace = 200*time.Millisecond, 100*time.Millisecond
	r := newRig(t, rl)
	r.run()
	at := wallclock.Now()
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, at))
	calls := r.sim.WaitCalls(2, 3*time.Second)
	require.Len(t, calls, 2)
	assert.GreaterOrEqual(t, calls[1].At.Sub(calls[0].At), 250*time.Millisecond)
}

// An acknowledgement that comes while the paging system is deaf takes the
// panic's page off the queue: when the link is back only the notice goes.
func TestAnAcknowledgementCancelsTheWaitingPage(t *testing.T) {
	r := newRig(t, rules)
	r.sim.SetSilent(true)
	r.run()
	at := wallclock.Now()
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, at))
	r.waitLink(t, pager.LinkDown)
	ack := raised("room-3", "panic-1", "panic", pager.SeverityCritical, at)
	ack.Event.Type, ack.Event.At = pager.Acked, at.Add(5*time.Second)
	r.gw.Deliver(ack)
	r.sim.SetSilent(false)
	// The link comes back; wait for the notice and a few polls after it.
	calls := r.sim.WaitCalls(1, 3*time.Second)
	polls := r.sim.Polls()
	r.sim.Wait(3*time.Second, func() bool { return r.sim.PollsLocked() >= polls+3 })
	calls = r.sim.Calls()
	require.Len(t, calls, 1, "%+v", calls)
	assert.Equal(t, "ACK PANIC room-3 bed", calls[0].Message)
	assert.Equal(t, "1", calls[0].Priority)
}

func TestACorruptedFrameIsSentAgain(t *testing.T) {
	r := newRig(t, rules)
	r.run()
	r.waitLink(t, pager.LinkUp)
	r.sim.CorruptNext(1)
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, wallclock.Now()))
	calls := r.sim.WaitCalls(1, 2*time.Second)
	require.Len(t, calls, 1)
	assert.Equal(t, 1, r.sim.BadBlocks(), "the first copy failed its BCC and was answered NAK")
	assert.Equal(t, "PANIC room-3 bed", calls[0].Message)
}

func TestADeadLinkIsReportedAndRecovers(t *testing.T) {
	r := newRig(t, rules)
	r.run()
	r.waitLink(t, pager.LinkUp)
	r.sim.SetSilent(true)
	down := r.waitLink(t, pager.LinkDown)
	assert.Contains(t, down.Detail, "no answer")
	// A panic while the link is down waits, and goes once it is back.
	r.gw.Deliver(raised("room-3", "panic-1", "panic", pager.SeverityCritical, wallclock.Now()))
	r.sim.SetSilent(false)
	up := r.waitLink(t, pager.LinkUp)
	assert.True(t, up.Since.After(down.Since))
	require.Len(t, r.sim.WaitCalls(1, 2*time.Second), 1)
}

// 50 alerts across 20 rooms arrive together: every one is paged, critical
// ones (high priority) first, each group in the order raised.
func TestABurstIsPagedInPriorityOrder(t *testing.T) {
	r := newRig(t, pager.Rules{Routes: []pager.Route{{MinSeverity: pager.SeverityWarning, Addresses: []string{"100"}}}})
	rng := rand.New(rand.NewPCG(23, 4))
	base := time.Date(2031, 5, 6, 9, 0, 0, 0, time.UTC)
	type want struct {
		msg  string
		prio string
		at   time.Time
	}
	var wants []want
	kinds := []struct {
		kind string
		sev  pager.Severity
		word string
	}{{"panic", pager.SeverityCritical, "PANIC"}, {"door_locked", pager.SeverityCritical, "DOOR LOCKED"},
		{"time_up", pager.SeverityWarning, "TIME UP"}, {"not_vacated", pager.SeverityWarning, "NOT VACATED"}}
	for i := range 50 {
		room := fmt.Sprintf("room-%d", i%20+1)
		k := kinds[rng.IntN(len(kinds))]
		at := base.Add(time.Duration(rng.IntN(3600)) * time.Second)
		in := raised(room, fmt.Sprintf("%s-%d", k.kind, i), k.kind, k.sev, at)
		in.Event.Alert.Point = ""
		r.gw.Deliver(in)
		prio := "1"
		if k.sev == pager.SeverityCritical {
			prio = "2"
		}
		wants = append(wants, want{k.word + " " + room, prio, at})
	}
	slices.SortStableFunc(wants, func(a, b want) int {
		if a.prio != b.prio {
			return -1 * compare(a.prio, b.prio)
		}
		return a.at.Compare(b.at)
	})
	r.run()
	calls := r.sim.WaitCalls(50, 10*time.Second)
	require.Len(t, calls, 50)
	for i, c := range calls {
		assert.Equal(t, wants[i].prio, c.Priority, "call %d", i)
		assert.Equal(t, wants[i].msg, c.Message, "call %d", i)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
