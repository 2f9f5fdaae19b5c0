package daemon

import (
	"sync"
	"time"

	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/wallclock"
)

// SystemClock is the real Clock: the system's time sources, real timers.
type SystemClock struct{ timebase.System }

// NewTimer implements Clock.
func (SystemClock) NewTimer(d time.Duration) Timer { return &realTimer{t: time.NewTimer(d)} }

// Since implements Clock.
func (SystemClock) Since(t time.Time) time.Duration { return wallclock.Since(t) }

type realTimer struct{ t *time.Timer }

func (r *realTimer) C() <-chan time.Time   { return r.t.C }
func (r *realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r *realTimer) Stop()                 { r.t.Stop() }

// FastClock is a Clock whose axis runs Speed times faster than real time,
// from the real time at which it was made; under testing/synctest it runs on
// the bubble's clock. Only compressed replays use it (the demo, roomd
// scenario), so that a visit passes in seconds under the real policy. Its
// speed may change while it runs (SetSpeed, JoinWall): its time never jumps.
type FastClock struct {
	mu sync.Mutex
	// The axis is base at the real time start (with its monotonic
	// reading), then runs speed times faster; from the real time join on
	// (if set) it runs at real time.
	start time.Time
	base  time.Time
	speed float64
	join  time.Time
	first time.Time // the axis when the clock was made
}

// NewFastClock returns a clock running speed times faster than real time
// (values below 1 mean 1), from now.
func NewFastClock(speed float64) *FastClock {
	now := wallclock.Now()
	return NewClockAt(now.Round(0), speed)
}

// NewClockAt returns a clock whose axis starts at base and runs speed times
// faster than real time (values below 1 mean 1). A test that reads a
// fixture with absolute times runs its room on a clock anchored to it, so
// that it passes on any date.
func NewClockAt(base time.Time, speed float64) *FastClock {
	return &FastClock{start: wallclock.Now(), base: base.Round(0), first: base.Round(0), speed: max(speed, 1)}
}

// Speed returns how many times faster than real time the clock runs now.
func (c *FastClock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.join.IsZero() && !wallclock.Now().Before(c.join) {
		return 1
	}
	return c.speed
}

// at returns the axis time at the real time r (with its monotonic reading).
func (c *FastClock) at(r time.Time) time.Time {
	if !c.join.IsZero() && !r.Before(c.join) {
		return c.base.Add(time.Duration(float64(c.join.Sub(c.start))*c.speed) + r.Sub(c.join))
	}
	return c.base.Add(time.Duration(float64(r.Sub(c.start)) * c.speed))
}

// rebase makes the axis continue from its time now at the real time now:
// what a change of speed starts from.
func (c *FastClock) rebase(now time.Time) {
	axis := c.at(now)
	if !c.join.IsZero() && !now.Before(c.join) {
		c.speed = 1
	}
	c.start, c.base, c.join = now, axis, time.Time{}
}

// SetSpeed makes the clock run speed times faster than real time from now
// on (values below 1 mean 1); its time does not jump.
func (c *FastClock) SetSpeed(speed float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebase(wallclock.Now())
	c.speed = max(speed, 1)
}

// JoinWall brings the clock to the wall clock without a jump, then runs it
// at real time: while its time is behind the wall clock's it keeps its speed
// until it catches up (it returns how long that takes, in real time), then
// it runs at real time, on the wall clock. A clock already at or ahead of
// the wall clock runs at real time from now on, as far ahead as it is
// (caught is false).
func (c *FastClock) JoinWall() (wait time.Duration, caught bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := wallclock.Now()
	c.rebase(now)
	behind := now.Round(0).Sub(c.base)
	if behind <= 0 || c.speed <= 1 {
		c.speed = 1
		return 0, behind == 0
	}
	// The axis gains speed-1 on the wall clock per real second.
	wait = time.Duration(float64(behind) / (c.speed - 1))
	c.join = now.Add(wait)
	return wait, true
}

func (c *FastClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at(wallclock.Now())
}

// Now is the time on the compressed axis.
func (c *FastClock) Now() time.Time { return c.now() }

// Wall implements timebase.Sources: the axis itself, so it is anchored to it.
func (c *FastClock) Wall() time.Time { return c.Now() }

// Boot implements timebase.Sources: compressed time since the clock was
// made, plus an hour.
func (c *FastClock) Boot() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Hour + c.at(wallclock.Now()).Sub(c.origin())
}

// origin is the axis time at which the clock was made (Boot's zero).
func (c *FastClock) origin() time.Time {
	if c.first.IsZero() {
		c.first = c.base
	}
	return c.first
}

// BootID implements timebase.Sources: a replay is one boot.
func (c *FastClock) BootID() (string, error) { return "fast-clock", nil }

// Synced implements timebase.Sources: the replay's wall is the axis.
func (c *FastClock) Synced() bool { return true }

// NewTimer implements Clock: d of axis time is d/Speed of real time (a
// timer armed before a change of speed may fire early: the loop then finds
// nothing due and arms again).
func (c *FastClock) NewTimer(d time.Duration) Timer {
	return &fastTimer{t: time.NewTimer(c.real(d)), c: c}
}

// Since implements Clock: the axis time passed since the real time t (a
// device reading's age; one older than the last change of speed is
// measured at the speed of now).
func (c *FastClock) Since(t time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := wallclock.Now()
	return c.at(now).Sub(c.at(now.Add(-wallclock.Since(t))))
}

// real returns the real time until d of axis time has passed.
func (c *FastClock) real(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d = max(d, 0)
	now := wallclock.Now()
	if !c.join.IsZero() && now.Before(c.join) {
		fast := time.Duration(float64(c.join.Sub(now)) * c.speed) // axis time until the join
		if d > fast {
			return c.join.Sub(now) + (d - fast)
		}
	} else if !c.join.IsZero() {
		return d
	}
	return time.Duration(float64(d) / c.speed)
}

type fastTimer struct {
	t *time.Timer
	c *FastClock
}

func (f *fastTimer) C() <-chan time.Time   { return f.t.C }
func (f *fastTimer) Reset(d time.Duration) { f.t.Reset(f.c.real(d)) }
func (f *fastTimer) Stop()                 { f.t.Stop() }
