package link

import (
	"sync"
	"time"

	"github.com/roomd/roomd/contract"
)

// RateLimit bounds the commands one identity may send (the {operator} of
// cmd/{operator}; the plain cmd topic is one identity of its own, and cmd/
// with an empty level another), so that
// a flood from one never delays an alert nor another identity's commands:
//
//   - up to Burst commands at once, refilled at PerSecond: each is handled
//     as usual;
//   - beyond that, up to CapPerSecond in any one second: answered busy at
//     the edge, never journaled, never given to the loop;
//   - beyond CapPerSecond: dropped without an answer (an answer is itself a
//     message the broker must carry), and one system_fault of source
//     commands names the identity. It ends when the identity has been
//     quiet (within its rate) for QuietAfter.
//
// The limits are announced in info (command_rate).
type RateLimit = contract.CommandRate

// DefaultRateLimit is the shipped limit: a console sends a few commands a
// second at most; a booking system at the start of a day a few dozen.
var DefaultRateLimit = RateLimit{PerSecond: 20, Burst: 40, CapPerSecond: 100}

// QuietAfter is how long an identity over its cap must stay within its
// rate before its next flood raises the fault again.
const QuietAfter = 10 * time.Second

// maxIdentities bounds the identities tracked; the oldest idle one goes.
const maxIdentities = 4096

type verdict uint8

const (
	verdictPass verdict = iota
	verdictBusy
	verdictDrop
)

type bucket struct {
	tokens   float64
	last     time.Time
	winStart time.Time
	winCount int
	capped   bool      // over the cap now (its fault was raised)
	overAt   time.Time // last time it was over the cap
}

// limiter applies a RateLimit per identity.
type limiter struct {
	l   RateLimit
	mu  sync.Mutex
	ids map[string]*bucket
}

func newLimiter(l RateLimit) *limiter { return &limiter{l: l, ids: map[string]*bucket{}} }

// take judges one command of identity op at now; first is true when this
// command puts op over its cap for the first time in a flood.
func (lm *limiter) take(op string, now time.Time) (v verdict, first bool) {
	if lm.l.PerSecond <= 0 {
		return verdictPass, false
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	b, ok := lm.ids[op]
	if !ok {
		if len(lm.ids) >= maxIdentities {
			lm.evict(now)
		}
		b = &bucket{tokens: float64(lm.l.Burst), last: now, winStart: now}
		lm.ids[op] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(lm.l.Burst), b.tokens+el.Seconds()*float64(lm.l.PerSecond))
		b.last = now
	}
	if now.Sub(b.winStart) >= time.Second {
		b.winStart, b.winCount = now, 0
	}
	b.winCount++
	if b.capped && now.Sub(b.overAt) >= QuietAfter {
		b.capped = false
	}
	if b.winCount > lm.l.CapPerSecond {
		b.overAt = now
		if !b.capped {
			b.capped = true
			return verdictDrop, true
		}
		return verdictDrop, false
	}
	if b.tokens >= 1 {
		b.tokens--
		return verdictPass, false
	}
	return verdictBusy, false
}

// evict removes the identity idle for longest. The caller holds lm.mu.
func (lm *limiter) evict(now time.Time) {
	var oldest string
	var at time.Time
	for id, b := range lm.ids {
		if oldest == "" || b.last.Before(at) {
			oldest, at = id, b.last
		}
	}
	delete(lm.ids, oldest)
}
