package device

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// Detail texts of an unknown reading.
const (
	DetailFlapping   = "flapping"
	DetailReadFailed = "read failed: "
)

// Run implements Inputs. It reads every wired input, sends one reading per
// wired role (in controller.Inputs order; one per point for the panic
// role), then sends every change of a role's combined reading (of a panic
// point's own reading). Outputs with a feedback line are supervised
// meanwhile (see supervise). One watcher goroutine per line waits for edges
// (at most a second at a time), re-reads the level after every edge, while a
// level settles, while a line fails or flaps, and every RereadEvery.
//
// Only one Run (or RunLines) may be active at a time; a second concurrent
// call returns an error at once. Run after Close returns ErrClosed.
func (c *Core) Run(ctx context.Context, out chan<- Reading) error {
	current := map[controller.Input][]lineReading{}
	sent := map[sourceKey]lineReading{}
	initial := func(watchers map[controller.Input][]lineWatcher) error {
		for _, in := range controller.Inputs {
			for _, w := range watchers[in] {
				current[in] = append(current[in], w.current())
			}
		}
		// Initial readings, in a stable order.
		for _, in := range controller.Inputs {
			for i := range watchers[in] {
				k, r := c.source(in, i, current[in])
				if in != controller.InputPanic && i > 0 {
					break // one combined reading per role
				}
				sent[k] = r
				if err := send(ctx, out, r.reading(k)); err != nil {
					return err
				}
			}
		}
		for _, p := range Powers {
			if ws := watchers[powerKey(p)]; len(ws) > 0 {
				r := ws[0].current()
				if err := send(ctx, out, Reading{Power: p, Level: r.level, At: r.at, Detail: r.detail}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	update := func(u lineUpdate) error {
		if u.power != 0 {
			if u.r.level == controller.LevelActive {
				c.logger.Warn("power trouble", "input", u.power.String())
			}
			return send(ctx, out, Reading{Power: u.power, Level: u.r.level, At: u.r.at, Detail: u.r.detail})
		}
		current[u.in][u.idx] = u.r
		k, r := c.source(u.in, u.idx, current[u.in])
		if r.same(sent[k]) {
			return nil
		}
		if r.level == controller.LevelUnknown {
			c.logger.Warn("input unknown", "input", u.in.String(), "point", k.point, "detail", r.detail)
		} else if sent[k].level == controller.LevelUnknown {
			c.logger.Info("input readable again", "input", u.in.String(), "point", k.point, "level", u.in.Describe(r.level))
		}
		sent[k] = r
		return send(ctx, out, r.reading(k))
	}
	return c.watch(ctx, out, initial, update)
}

// LineReading is the settled level of one input line on its own, as the
// function test needs it: unlike Run's readings, the sensors of a role are
// not combined, so each presence sensor is seen alone.
type LineReading struct {
	Input controller.Input
	// Index is the line's place in Spec.Inputs[Input], from 0.
	Index int
	// Point names the panic point of a panic line; empty otherwise.
	Point  string
	Level  controller.Level
	Detail string // why Level is LevelUnknown ("flapping", "read failed: ...")
	At     time.Time
	// Ohms, for a supervised loop, is the resistance read when Level was
	// established: what commissioning records as the loop's baseline. It
	// never leaves the room. Tamper and Drift are as in Reading.
	Ohms   float64
	Tamper bool
	Drift  controller.Drift
}

// RunLines is Run line by line: it reads every wired input line and sends
// its level (in controller.Inputs order, then the lines' order), then
// every change of one line's settled level, debounced, flap-supervised and
// re-read exactly as Run does, until ctx ends; then it returns ctx.Err().
// It supervises no output. Only one Run or RunLines may be active at a
// time; a second concurrent call returns an error at once.
func (c *Core) RunLines(ctx context.Context, out chan<- LineReading) error {
	reading := func(in controller.Input, idx int, r lineReading) LineReading {
		lr := LineReading{Input: in, Index: idx, Level: r.level, Detail: r.detail, At: r.at, Ohms: r.ohms, Tamper: r.tamper, Drift: r.drift}
		if in == controller.InputPanic {
			lr.Point = c.spec.PanicPoint(idx)
		}
		return lr
	}
	sendLine := func(lr LineReading) error {
		select {
		case out <- lr:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	initial := func(watchers map[controller.Input][]lineWatcher) error {
		for _, in := range controller.Inputs {
			for i, w := range watchers[in] {
				if err := sendLine(reading(in, i, w.current())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	update := func(u lineUpdate) error {
		if u.power != 0 {
			return nil // the function test walks the room's inputs only
		}
		return sendLine(reading(u.in, u.idx, u.r))
	}
	return c.watch(ctx, nil, initial, update)
}

// watch runs one watcher per input line until ctx ends: initial sees the
// watchers after their first reading, update every change of one line's
// reading. With supervise, outputs with a feedback line are supervised and
// their verdicts sent there. An error of initial or update ends it.
func (c *Core) watch(ctx context.Context, supervise chan<- Reading, initial func(map[controller.Input][]lineWatcher) error, update func(lineUpdate) error) error {
	if !c.runMu.TryLock() {
		return errors.New("run inputs: already running")
	}
	defer c.runMu.Unlock()
	c.stateMu.Lock()
	if c.closed {
		c.stateMu.Unlock()
		return fmt.Errorf("run inputs: %w", ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.cancel, c.runDone = cancel, done
	c.stateMu.Unlock()

	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		c.stateMu.Lock()
		c.cancel, c.runDone = nil, nil
		c.stateMu.Unlock()
		close(done)
	}()

	now := wallclock.Now()
	watchers := map[controller.Input][]lineWatcher{}
	for _, in := range controller.Inputs {
		specs, ok := c.spec.Inputs[in]
		if !ok {
			continue
		}
		for i, ls := range specs {
			var w lineWatcher
			if ls.Loop != nil {
				w = &loopWatcher{in: in, idx: i, spec: ls, loop: ls.Loop.withDefaults(), line: c.lines.Loops[in][i], flap: c.spec.Flap}
			} else {
				w = &watcher{in: in, idx: i, spec: ls, line: c.lines.Inputs[in][i], reread: c.spec.RereadEvery, flap: c.spec.Flap}
			}
			w.start(now)
			watchers[in] = append(watchers[in], w)
		}
	}
	for _, p := range Powers {
		if ls, ok := c.spec.Power[p]; ok {
			w := &watcher{power: p, spec: ls, line: c.lines.Power[p], reread: c.spec.RereadEvery, flap: c.spec.Flap}
			w.start(now)
			watchers[powerKey(p)] = []lineWatcher{w}
		}
	}
	if err := initial(watchers); err != nil {
		return err
	}

	updates := make(chan lineUpdate)
	for _, ws := range watchers {
		for _, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(ctx, updates)
			}()
		}
	}
	var feedback []InputLine
	if supervise != nil {
		for _, o := range controller.Outputs {
			if st := c.outs[o]; st.fb != nil {
				feedback = append(feedback, st.fb)
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.supervise(ctx, st, supervise)
				}()
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		for _, ws := range watchers {
			for _, w := range ws {
				w.halt()
			}
		}
		for _, l := range feedback {
			_ = l.Halt()
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u := <-updates:
			if err := update(u); err != nil {
				return err
			}
		}
	}
}

// sourceKey names what one reading is about: an input role, and for the
// panic role one of its points.
type sourceKey struct {
	in    controller.Input
	point string
}

// source returns the key and the reading of line idx of role in: the
// panic line's own reading, or the role's combined reading.
func (c *Core) source(in controller.Input, idx int, current []lineReading) (sourceKey, lineReading) {
	if in == controller.InputPanic {
		return sourceKey{in: in, point: c.spec.PanicPoint(idx)}, current[idx]
	}
	return sourceKey{in: in}, combine(current)
}

func send(ctx context.Context, out chan<- Reading, r Reading) error {
	select {
	case out <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type lineReading struct {
	level  controller.Level
	detail string
	at     time.Time
	sensor int // index of the line, for the detail of a combined reading
	// A supervised loop's: what was done to it, its drift, and the ohms
	// read when the reading was established (kept in the room).
	tamper bool
	drift  controller.Drift
	ohms   float64
}

// same reports whether r says what o says (the ohms aside).
func (r lineReading) same(o lineReading) bool {
	return r.level == o.level && r.detail == o.detail && r.tamper == o.tamper && r.drift == o.drift
}

func (r lineReading) reading(k sourceKey) Reading {
	return Reading{Input: k.in, Point: k.point, Level: r.level, At: r.at, Detail: r.detail, Tamper: r.tamper, Drift: r.drift}
}

type lineUpdate struct {
	in    controller.Input
	power Power // a power status input (in is zero)
	idx   int
	r     lineReading
}

// lineWatcher turns one line into settled, supervised readings: a GPIO
// line (watcher) or a supervised loop (loopWatcher).
type lineWatcher interface {
	// start takes the first reading.
	start(now time.Time)
	// run sends every change of the reading until ctx ends.
	run(ctx context.Context, updates chan<- lineUpdate)
	current() lineReading
	// halt interrupts a pending wait, if it can.
	halt()
}

// powerKey is where the watcher of a power input is kept among the
// watchers of the inputs (no input role has this value).
func powerKey(p Power) controller.Input { return controller.Input(200 + p) }

// combine merges the readings of one role: any active → active, else any
// unknown → unknown, else inactive.
func combine(rs []lineReading) lineReading {
	if len(rs) == 1 {
		return rs[0]
	}
	var unknown, inactive *lineReading
	for i := range rs {
		switch rs[i].level {
		case controller.LevelActive:
			return rs[i]
		case controller.LevelUnknown:
			if unknown == nil {
				unknown = &rs[i]
			}
		default:
			if inactive == nil || rs[i].at.After(inactive.at) {
				inactive = &rs[i]
			}
		}
	}
	if unknown != nil {
		r := *unknown
		r.detail = fmt.Sprintf("sensor %d: %s", r.sensor+1, r.detail)
		return r
	}
	return *inactive
}

// watcher turns one raw line into settled, supervised readings.
type watcher struct {
	in     controller.Input
	power  Power
	idx    int
	spec   LineSpec
	line   InputLine
	reread time.Duration
	flap   Flap

	raw       gpio.Level // last raw level read
	failing   bool
	settled   bool      // raw has been stable for the debounce and is reported
	changedAt time.Time // last raw change (edge or differing read)
	changes   []time.Time
	flapping  bool
	lastRead  time.Time
	cur       lineReading // what this line reports now
}

func (w *watcher) current() lineReading { return w.cur }
func (w *watcher) halt()                { _ = w.line.Halt() }

func (w *watcher) read() (gpio.Level, error) {
	if cr, ok := w.line.(CheckedReader); ok {
		return cr.ReadChecked()
	}
	return w.line.Read(), nil
}

func (w *watcher) level(l gpio.Level) controller.Level {
	if bool(l) != w.spec.ActiveLow {
		return controller.LevelActive
	}
	return controller.LevelInactive
}

// start takes the first reading, without debounce.
func (w *watcher) start(now time.Time) {
	w.lastRead = now
	w.cur.sensor = w.idx
	l, err := w.read()
	if err != nil {
		w.failing = true
		w.cur = lineReading{level: controller.LevelUnknown, detail: DetailReadFailed + err.Error(), at: now, sensor: w.idx}
		return
	}
	w.raw, w.settled, w.changedAt = l, true, now
	w.cur = lineReading{level: w.level(l), at: now, sensor: w.idx}
}

func (w *watcher) run(ctx context.Context, updates chan<- lineUpdate) {
	for {
		var edge bool
		if at, ok := w.settlesAt(); ok && at.Sub(wallclock.Now()) <= settleLead {
			// A change seen while finishing counts as an edge, even if the
			// line is back at its level by the time observe reads it.
			edge = w.finishSettle(at)
		} else {
			edge = w.line.WaitForEdge(w.wait(wallclock.Now()))
		}
		if ctx.Err() != nil {
			return
		}
		prev := w.cur
		w.observe(wallclock.Now(), edge)
		if w.cur.level == prev.level && w.cur.detail == prev.detail {
			continue
		}
		select {
		case updates <- lineUpdate{in: w.in, power: w.power, idx: w.idx, r: w.cur}:
		case <-ctx.Done():
			return
		}
	}
}

// wait is the timeout of the next WaitForEdge: the nearest deadline (end
// of flapping, re-read, or settleLead before a level settles), at most a
// second, at least a millisecond (but for a settling level, whose wait
// ends settleLead early, which is lead enough).
func (w *watcher) wait(now time.Time) time.Duration {
	d := min(maxWait, w.lastRead.Add(w.reread).Sub(now))
	if w.flapping && len(w.changes) > 0 {
		d = min(d, w.changes[len(w.changes)-1].Add(w.flap.Window).Sub(now))
	} else if at, ok := w.settlesAt(); ok {
		if s := at.Add(-settleLead).Sub(now); s < max(d, minWait) {
			return max(s, time.Microsecond)
		}
	}
	return max(d, minWait)
}

// settlesAt is when the raw level, unchanged since, settles; false when no
// level is settling (settled, failing or flapping).
func (w *watcher) settlesAt() (time.Time, bool) {
	if w.settled || w.failing || w.flapping {
		return time.Time{}, false
	}
	return w.changedAt.Add(w.spec.Debounce), true
}

// settleLead is how long before a level settles its watcher stops waiting
// on a timer and finishes on the clock (finishSettle). A runtime timer
// fires late: the netpoller sleeps in whole milliseconds, and a 30 ms timer
// fired 0.36 ms late at p50 and 1.2 ms at p99 on a 2-core VM (roombench
// latency, its timer floor); every settled press carried that lateness to
// the guard. The lead covers it at p99; what it costs is at most this much
// CPU per settling edge, once per press, never while a line is at rest.
const settleLead = 2 * time.Millisecond

// spinStill is how many turns of finishSettle may see the clock stand
// still before it concludes the clock is a fake one (a test's synctest
// bubble, where time moves only while every goroutine waits) and sleeps
// the rest instead. A real clock moves between any two turns.
const spinStill = 64

// finishSettle waits until at on the clock, yielding the processor
// between looks, so that a settled level is reported when it settles
// rather than when a timer fires. On every turn it reads the line, and
// asks a line that can tell (EdgeQueue) whether an edge is queued; it
// returns true at once when the level differs, a read fails or an edge is
// queued (observe then restarts the debounce, or reports the failure when
// it persists). A line that cannot tell its queued edges (periph's
// gpioioctl) is read only: a glitch that comes and goes between two reads
// is seen by the next WaitForEdge, after the level was reported; it then
// restarts the debounce and counts towards flapping.
func (w *watcher) finishSettle(at time.Time) (changed bool) {
	eq, _ := w.line.(EdgeQueue)
	last, still := wallclock.Now(), 0
	for {
		if l, err := w.read(); err != nil || l != w.raw {
			return true
		}
		if eq != nil && eq.EdgeQueued() {
			return true
		}
		now := wallclock.Now()
		if !now.Before(at) {
			return false
		}
		if now.Equal(last) {
			if still++; still >= spinStill {
				time.Sleep(at.Sub(now))
				return eq != nil && eq.EdgeQueued()
			}
		} else {
			last, still = now, 0
		}
		runtime.Gosched()
	}
}

// observe updates the state after a wake at now; edge says whether an edge
// woke it.
func (w *watcher) observe(now time.Time, edge bool) {
	due := now.Sub(w.lastRead) >= w.reread
	if !edge && !due && !w.failing && w.settled && !w.flapping {
		return
	}
	l, err := w.read()
	w.lastRead = now
	if err != nil {
		w.failing = true
		w.cur = lineReading{level: controller.LevelUnknown, detail: DetailReadFailed + err.Error(), at: now, sensor: w.idx}
		return
	}
	if w.failing {
		// Recovered: the level read now must settle like any change.
		w.failing = false
		w.raw, w.changedAt, w.settled = l, now, false
	}
	if edge || l != w.raw {
		w.raw, w.changedAt, w.settled = l, now, false
		w.changes = append(w.changes, now)
	}
	// Flap supervision over the raw changes of the last Window.
	cut := now.Add(-w.flap.Window)
	keep := 0
	for keep < len(w.changes) && !w.changes[keep].After(cut) {
		keep++
	}
	w.changes = w.changes[keep:]
	if len(w.changes) > w.flap.MaxChanges {
		w.flapping = true
		w.changes = w.changes[len(w.changes)-w.flap.MaxChanges-1:]
	}
	if w.flapping {
		if len(w.changes) > 0 {
			if w.cur.level != controller.LevelUnknown || w.cur.detail != DetailFlapping {
				w.cur = lineReading{level: controller.LevelUnknown, detail: DetailFlapping, at: now, sensor: w.idx}
			}
			return
		}
		// Quiet for a whole window: the level has settled long ago.
		w.flapping = false
		w.settled = true
		w.cur = lineReading{level: w.level(w.raw), at: w.changedAt.Add(w.flap.Window), sensor: w.idx}
		return
	}
	if !w.settled && now.Sub(w.changedAt) >= w.spec.Debounce {
		w.settled = true
		at := w.changedAt.Add(w.spec.Debounce)
		if w.cur.level == controller.LevelUnknown {
			at = now
		}
		w.cur = lineReading{level: w.level(w.raw), at: at, sensor: w.idx}
	}
}
