package device

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/wallclock"
)

// scriptedLine reads its levels in turn (the last one for ever after);
// with queueAt > 0 it says an edge is queued from its queueAt-th read on.
type scriptedLine struct {
	mu      sync.Mutex
	levels  []gpio.Level
	reads   int
	queueAt int
}

func (l *scriptedLine) EdgeQueued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queueAt > 0 && l.reads >= l.queueAt
}

func (l *scriptedLine) In(gpio.Pull, gpio.Edge) error { return nil }
func (l *scriptedLine) Halt() error                   { return nil }

func (l *scriptedLine) Read() gpio.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv := l.levels[min(l.reads, len(l.levels)-1)]
	l.reads++
	return lv
}

func (l *scriptedLine) WaitForEdge(timeout time.Duration) bool {
	time.Sleep(timeout)
	return false
}

func (l *scriptedLine) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

func settling(line InputLine, changedAt time.Time) *watcher {
	return &watcher{line: line, spec: LineSpec{Debounce: 30 * time.Millisecond}, reread: DefaultRereadEvery,
		flap: Flap{MaxChanges: DefaultFlapMaxChanges, Window: DefaultFlapWindow},
		raw:  gpio.High, changedAt: changedAt, lastRead: changedAt}
}

// runWatcher runs w until the test ends and returns its updates.
func runWatcher(t *testing.T, w *watcher) <-chan lineUpdate {
	updates := make(chan lineUpdate, 1)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.run(ctx, updates)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return updates
}

// A settling level's timer ends settleLead before it settles, and never at
// the floor of a millisecond that would carry it past the deadline.
func TestSettlingWaitEndsALeadEarly(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	w := settling(&scriptedLine{levels: []gpio.Level{gpio.High}}, t0)
	at, ok := w.settlesAt()
	require.True(t, ok)
	assert.Equal(t, t0.Add(30*time.Millisecond), at)
	assert.Equal(t, 30*time.Millisecond-settleLead-10*time.Millisecond, w.wait(t0.Add(10*time.Millisecond)))
	assert.Equal(t, 500*time.Microsecond, w.wait(t0.Add(30*time.Millisecond-settleLead-500*time.Microsecond)),
		"less than a millisecond before the lead: not rounded up past it")

	w.settled = true
	_, ok = w.settlesAt()
	assert.False(t, ok, "a settled level settles no more")
	assert.Equal(t, maxWait, w.wait(t0.Add(10*time.Millisecond)), "at rest: the longest wait")
	w.settled, w.failing = false, true
	_, ok = w.settlesAt()
	assert.False(t, ok, "a failing line is not settling")
}

// The last stretch of a debounce is waited on the clock, and a level that
// changes during it ends it at once, so that observe restarts the debounce.
func TestFinishSettleEndsWhenTheLevelChanges(t *testing.T) {
	line := &scriptedLine{levels: []gpio.Level{gpio.High, gpio.High, gpio.High, gpio.Low}}
	w := settling(line, wallclock.Now())
	at := wallclock.Now().Add(time.Minute) // never reached unless the change is missed
	done := make(chan struct{})
	go func() {
		w.finishSettle(at)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("finishSettle did not end when the level changed")
	}
	assert.Equal(t, 4, line.count(), "it read the line on every turn and stopped at the change")
	assert.True(t, wallclock.Now().Before(at))

	// A line that stays put is waited out to the instant.
	line = &scriptedLine{levels: []gpio.Level{gpio.High}}
	w = settling(line, wallclock.Now())
	at = wallclock.Now().Add(3 * time.Millisecond)
	w.finishSettle(at)
	assert.False(t, wallclock.Now().Before(at), "not ended before its deadline")
	assert.GreaterOrEqual(t, line.count(), 1, "the line was read (more than once, unless the machine was too busy to look before the deadline)")
}

// On a clock that does not move while the spin runs (a synctest bubble),
// finishSettle sleeps the rest instead of spinning for ever, and the
// watcher reports the settled level exactly at the end of its debounce.
func TestSettleOnAFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &scriptedLine{levels: []gpio.Level{gpio.High}}
		start := wallclock.Now()
		w := settling(line, start)
		w.finishSettle(start.Add(time.Millisecond))
		assert.Equal(t, start.Add(time.Millisecond), wallclock.Now())
		assert.LessOrEqual(t, line.count(), spinStill+1, "it stopped spinning once it saw the clock stand still")

		// The whole loop: a level settling from now is reported settled at
		// the end of its debounce, on the fake clock to the nanosecond.
		w = settling(line, wallclock.Now())
		w.cur.level = w.level(gpio.Low)
		updates := runWatcher(t, w)
		u := <-updates
		assert.Equal(t, w.level(gpio.High), u.r.level)
		assert.Equal(t, w.changedAt.Add(30*time.Millisecond), u.r.at)
		assert.Equal(t, u.r.at, wallclock.Now(), "the spin gave way to a sleep that ended at the deadline")
	})
}

// An edge queued at the line while the debounce finishes (a glitch that
// came and went between two reads) ends it too.
func TestFinishSettleSeesAQueuedEdge(t *testing.T) {
	line := &scriptedLine{levels: []gpio.Level{gpio.High}, queueAt: 3}
	w := settling(line, wallclock.Now())
	at := wallclock.Now().Add(time.Minute) // never reached unless the edge is missed
	done := make(chan bool)
	go func() { done <- w.finishSettle(at) }()
	select {
	case changed := <-done:
		assert.True(t, changed)
	case <-time.After(30 * time.Second):
		t.Fatal("finishSettle did not end at the queued edge")
	}
	assert.Equal(t, 3, line.count())
}

// A glitch seen while the debounce finishes restarts it, even when the
// line is back at its level by the time it is read again: the level is
// reported a whole debounce after the glitch, not at the first deadline.
// The watcher starts inside the lead, so its first read is the finish's
// (before any deadline is looked at), whatever the machine's load.
func TestAGlitchWhileFinishingRestartsTheDebounce(t *testing.T) {
	line := &scriptedLine{levels: []gpio.Level{gpio.Low, gpio.High}}
	start := wallclock.Now().Add(-29 * time.Millisecond) // 1 ms of the debounce left
	w := settling(line, start)
	w.cur.level = w.level(gpio.Low)
	updates := runWatcher(t, w)
	var u lineUpdate
	select {
	case u = <-updates:
	case <-time.After(30 * time.Second):
		t.Fatal("the level never settled")
	}
	assert.Equal(t, w.level(gpio.High), u.r.level)
	first := start.Add(30 * time.Millisecond)
	assert.False(t, u.r.at.Before(first.Add(30*time.Millisecond-settleLead)),
		"settled at %s after the start: the glitch in the last %s did not restart the debounce", u.r.at.Sub(start), settleLead)
}
