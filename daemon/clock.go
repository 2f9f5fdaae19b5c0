package daemon

import (
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
// scenario), so that a visit passes in seconds under the real policy.
type FastClock struct {
	start time.Time // with its monotonic reading
	base  time.Time
	speed float64
}

// NewFastClock returns a clock running speed times faster than real time
// (values below 1 mean 1), from now.
func NewFastClock(speed float64) *FastClock {
	now := wallclock.Now()
	return NewClockAt(now.Round(0), speed)
}

// NewClockAt returns a clock whose axis starts at base and runs speed times
// faster than real time (values below 1 mean 1). A test that reads a
// fixture with absolute times runs its room on a clock anchored to the
// fixture, so that it passes on any date.
func NewClockAt(base time.Time, speed float64) *FastClock {
	return &FastClock{start: wallclock.Now(), base: base.Round(0), speed: max(speed, 1)}
}

// Speed returns how many times faster than real time the clock runs.
func (c *FastClock) Speed() float64 { return c.speed }

func (c *FastClock) elapsed() time.Duration {
	return time.Duration(float64(wallclock.Since(c.start)) * c.speed)
}

// Now is the time on the compressed axis.
func (c *FastClock) Now() time.Time { return c.base.Add(c.elapsed()) }

// Wall implements timebase.Sources: the axis itself, so it is anchored to it.
func (c *FastClock) Wall() time.Time { return c.Now() }

// Boot implements timebase.Sources: compressed time since the clock was
// made, plus an hour.
func (c *FastClock) Boot() time.Duration { return time.Hour + c.elapsed() }

// BootID implements timebase.Sources: a replay is one boot.
func (c *FastClock) BootID() (string, error) { return "fast-clock", nil }

// Synced implements timebase.Sources: the replay's wall is the axis.
func (c *FastClock) Synced() bool { return true }

// NewTimer implements Clock: d of axis time is d/Speed of real time.
func (c *FastClock) NewTimer(d time.Duration) Timer {
	return &fastTimer{t: time.NewTimer(c.real(d)), c: c}
}

// Since implements Clock.
func (c *FastClock) Since(t time.Time) time.Duration {
	return time.Duration(float64(wallclock.Since(t)) * c.speed)
}

func (c *FastClock) real(d time.Duration) time.Duration {
	return time.Duration(float64(max(d, 0)) / c.speed)
}

type fastTimer struct {
	t *time.Timer
	c *FastClock
}

func (f *fastTimer) C() <-chan time.Time   { return f.t.C }
func (f *fastTimer) Reset(d time.Duration) { f.t.Reset(f.c.real(d)) }
func (f *fastTimer) Stop()                 { f.t.Stop() }
