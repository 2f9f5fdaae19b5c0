package device

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// FeedbackRecovery is how long the read-back of a failed output must follow
// without a miss before it counts as working again: the longest alarm
// pattern cycle, so that every phase of any pattern was seen following.
const FeedbackRecovery = longestAlarmCycle

// supervise watches the feedback line of output st until ctx ends. The
// read-back must reach the level driven within Spec.FeedbackGrace of every
// change of it, and stay there while the output holds; a read that fails
// counts as a miss. The first verdict is sent one grace after the start
// (Follows true unless a miss came first); then a miss sends Follows false
// at once, and FeedbackRecovery without a miss sends Follows true.
func (c *Core) supervise(ctx context.Context, st *outState, out chan<- Reading) {
	grace := c.spec.FeedbackGrace
	ls := c.spec.Feedback[st.o]
	edges := make(chan struct{}, 1)
	var fwd sync.WaitGroup
	defer fwd.Wait() // Run returns only after every goroutine it started
	fwd.Go(func() {
		for ctx.Err() == nil {
			if st.fb.WaitForEdge(maxWait) {
				select {
				case edges <- struct{}{}:
				default:
				}
			}
		}
	})

	start := wallclock.Now()
	var (
		reported    bool      // a verdict was sent
		faulted     bool      // the verdict sent last was a miss
		mismatch    time.Time // since when the read-back differs; zero if it follows
		lastMatch   = start   // when it was last seen following
		lastMiss    time.Time
		pendingMiss string // the detail of a miss not yet sent
		verdict     = func(now time.Time, follows bool, detail string) bool {
			r := Reading{Output: st.o, Follows: follows, At: now, Detail: detail}
			if err := send(ctx, out, r); err != nil {
				return false
			}
			if !follows {
				c.logger.Warn("output read-back does not follow", "output", st.o.String(), "detail", detail)
			} else if faulted {
				c.logger.Info("output read-back follows again", "output", st.o.String())
			}
			reported, faulted = true, !follows
			return true
		}
	)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for {
		now := wallclock.Now()
		on, changed := c.commanded(st.o)
		level, err := st.fb.Read(), error(nil)
		if cr, ok := st.fb.(CheckedReader); ok {
			level, err = cr.ReadChecked()
		}
		back := bool(level) != ls.ActiveLow
		switch {
		case err != nil:
			lastMiss = now
			pendingMiss = DetailReadFailed + err.Error()
		case back == on:
			mismatch = time.Time{}
			lastMatch = now
		default:
			if mismatch.IsZero() {
				mismatch = changed
				if lastMatch.After(mismatch) {
					mismatch = lastMatch
				}
			}
			if now.Sub(mismatch) >= grace {
				lastMiss = now
				pendingMiss = fmt.Sprintf("read back %s while driven %s for %s", onOff(back), onOff(on), now.Sub(mismatch).Round(time.Millisecond))
			}
		}
		switch {
		case pendingMiss != "" && (!reported || !faulted):
			if !verdict(now, false, pendingMiss) {
				return
			}
			pendingMiss = ""
		case pendingMiss != "":
			pendingMiss = "" // already reported failing
		case !reported && now.Sub(start) >= grace:
			if !verdict(now, true, "") {
				return
			}
		case faulted && err == nil && mismatch.IsZero() && now.Sub(lastMiss) >= FeedbackRecovery:
			if !verdict(now, true, "") {
				return
			}
		}

		// Wake at the next instant a verdict could change, at an edge, at a
		// change of what is driven, or for a safety re-read.
		wait := c.spec.RereadEvery
		if faulted || err != nil {
			wait = min(wait, maxWait)
		}
		if !mismatch.IsZero() {
			wait = min(wait, mismatch.Add(grace).Sub(now))
		}
		if !reported {
			wait = min(wait, start.Add(grace).Sub(now))
		}
		if faulted {
			wait = min(wait, lastMiss.Add(FeedbackRecovery).Sub(now))
		}
		wait = max(wait, minWait)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-edges:
		case <-st.notify:
		case <-timer.C:
		}
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
