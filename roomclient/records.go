package roomclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/contract"
)

// track feeds the tracker with a record or a state and delivers a new
// record to OnRecord (on the receiving goroutine, outside the lock).
func (c *Client) track(m Message) {
	var obs Observation
	switch {
	case m.Kind == KindEvent && m.Event != nil:
		c.mu.Lock()
		obs = c.tracker.Observe(m.Room, m.Event.Epoch, m.Event.Seq)
		c.mu.Unlock()
	case m.Kind == KindState && m.State != nil:
		c.mu.Lock()
		obs = c.tracker.ObserveState(m.Room, m.State.Epoch, m.State.Seq)
		c.mu.Unlock()
	default:
		return
	}
	if obs.Gap != nil {
		c.log.Info("records missing; asking for a replay", "room", obs.Gap.Room, "epoch", obs.Gap.Epoch,
			"from_seq", obs.Gap.From, "to_seq", obs.Gap.To)
		c.wake()
	}
	if obs.Dropped != nil {
		c.lost(Loss{Gap: *obs.Dropped, Reason: "too many gaps at once; the oldest was given up"})
	}
	if obs.NewEpoch {
		c.log.Warn("room started a new epoch: its journal was lost; gap detection starts afresh",
			"room", m.Room, "epoch", m.Event.Epoch, "previous", obs.PrevEpoch)
	}
	if m.Kind == KindEvent && (obs.Verdict == New || obs.Verdict == Filled) {
		c.o.OnRecord(Record{Room: m.Room, Arrived: m.Arrived, Verdict: obs.Verdict, NewEpoch: obs.NewEpoch, EventMessage: *m.Event})
	}
}

func (c *Client) lost(l Loss) {
	c.log.Warn("records lost", "room", l.Room, "epoch", l.Epoch, "from_seq", l.From, "to_seq", l.To, "reason", l.Reason)
	if c.o.OnLoss != nil {
		c.o.OnLoss(l)
	}
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// replayLoop asks the rooms to replay what is missing: ReplayDelay after a
// gap is found (a late copy may still fill it), then again every few
// RetryEvery while a room does not answer.
func (c *Client) replayLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			return
		}
		wait := c.o.ReplayDelay
		for {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.stop:
				t.Stop()
				return
			}
			if c.replayMissing() {
				break
			}
			wait = 5 * c.o.RetryEvery
		}
	}
}

// replayMissing asks for every gap open now; it reports whether all of
// them were answered (filled or given up).
func (c *Client) replayMissing() bool {
	c.mu.Lock()
	gaps := c.tracker.Missing()
	c.mu.Unlock()
	done := true
	for _, g := range gaps {
		if !c.replayGap(g) {
			done = false
		}
		select {
		case <-c.stop:
			return true
		default:
		}
	}
	return done
}

// replayGap asks room to replay g, contract.MaxReplay records at a time. It
// reports false when the room did not answer (ask again later).
func (c *Client) replayGap(g Gap) bool {
	from := g.From
	for from <= g.To {
		to := min(g.To, from+contract.MaxReplay-1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*c.o.RetryEvery)
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		r, err := c.Send(ctx, g.Room, Replay(g.Epoch, from, to))
		cancel()
		var inv *InvalidCommandError
		switch {
		case errors.As(err, &inv):
			c.forget(Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{from, g.To}}, err.Error())
			return true
		case err != nil:
			c.log.Warn("replay not answered; asking again later", "room", g.Room, "err", err)
			return false
		case !r.OK:
			reason := "replay refused"
			if r.Error != nil {
				reason = r.Error.Code + ": " + r.Error.Message
			}
			c.forget(Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{from, to}}, reason)
		case r.Replay != nil && r.Replay.ToSeq >= from:
			// The records came before the reply: whatever is still missing
			// in the range the room replayed is not in its journal.
			to = r.Replay.ToSeq
			c.forget(Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{from, to}},
				fmt.Sprintf("the room replayed %d records of seqs %d to %d without these", r.Replay.Count, from, to))
		default:
			c.forget(Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{from, to}}, "the room replayed nothing")
		}
		from = to + 1
	}
	return true
}

// forget gives up the seqs of g still missing, reporting each range lost.
func (c *Client) forget(g Gap, reason string) {
	var still []Gap
	c.mu.Lock()
	for _, m := range c.tracker.Missing() {
		if m.Room != g.Room || m.Epoch != g.Epoch || m.To < g.From || m.From > g.To {
			continue
		}
		lo, hi := max(m.From, g.From), min(m.To, g.To)
		still = append(still, Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{lo, hi}})
		c.tracker.Forget(Gap{Room: g.Room, Epoch: g.Epoch, Range: Range{lo, hi}})
	}
	c.mu.Unlock()
	for _, l := range still {
		c.lost(Loss{Gap: l, Reason: reason})
	}
}
