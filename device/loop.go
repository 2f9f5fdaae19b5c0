package device

import (
	"context"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/wallclock"
)

// loopWatcher reads one end-of-line supervised loop through its ADC
// channel every Loop.Every, judges each read against the bands and the
// baseline (eol.Table.Judge) and reports a judgement once it has held for
// Loop.Hold. A read that fails is a judgement too (StateFailed): it must
// hold like any other, and is then reported as unknown, "read failed: ...";
// it is never taken as a level. Raw changes of the contact's state are
// flap-supervised as a GPIO line's are.
type loopWatcher struct {
	in   controller.Input
	idx  int
	spec LineSpec
	loop Loop
	line AnalogLine
	flap Flap

	deb      eol.Debouncer
	lastErr  error
	ohms     float64 // of the last read
	candOhms float64 // of the first read of the verdict waiting to settle
	raw      eol.State
	hasRaw   bool
	lastV    eol.Verdict
	hasV     bool
	changes  []time.Time
	flapping bool
	cur      lineReading
}

func (w *loopWatcher) current() lineReading { return w.cur }
func (w *loopWatcher) halt()                {}

func (w *loopWatcher) start(now time.Time) {
	w.deb = eol.Debouncer{Hold: w.loop.Hold}
	w.sample(now)
}

func (w *loopWatcher) run(ctx context.Context, updates chan<- lineUpdate) {
	t := time.NewTicker(w.loop.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		prev := w.cur
		w.sample(wallclock.Now())
		if w.cur.same(prev) {
			continue
		}
		select {
		case updates <- lineUpdate{in: w.in, idx: w.idx, r: w.cur}:
		case <-ctx.Done():
			return
		}
	}
}

// sample reads once at now and updates the reading.
func (w *loopWatcher) sample(now time.Time) {
	var v eol.Verdict
	s, err := w.line.Read()
	if err != nil {
		w.lastErr = err
		v = eol.Verdict{State: eol.StateFailed}
	} else {
		w.ohms = w.loop.Divider.Ohms(float64(s.V) / float64(physic.Volt))
		v = w.loop.Table.Judge(w.ohms, w.loop.Baseline, w.loop.Tolerance)
	}
	if !w.hasV || v != w.lastV {
		w.candOhms = w.ohms // a verdict settles with the ohms of its first read
	}
	w.lastV, w.hasV = v, true
	w.flapCheck(now, v.State)
	settled, since, changed := w.deb.Observe(now, v)
	if w.flapping {
		if len(w.changes) > 0 {
			if w.cur.level != controller.LevelUnknown || w.cur.detail != DetailFlapping {
				w.cur = lineReading{level: controller.LevelUnknown, detail: DetailFlapping, at: now, sensor: w.idx}
			}
			return
		}
		w.flapping = false
		settled, _ = w.deb.Settled()
		since, changed = now, true
	}
	if changed || w.cur.at.IsZero() {
		w.cur = w.reading(settled, since)
	}
}

// flapCheck counts raw changes of the contact's state over the flap window.
func (w *loopWatcher) flapCheck(now time.Time, st eol.State) {
	if w.hasRaw && st != w.raw {
		w.changes = append(w.changes, now)
	}
	w.raw, w.hasRaw = st, true
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
}

// reading is what a settled verdict says.
func (w *loopWatcher) reading(v eol.Verdict, at time.Time) lineReading {
	r := lineReading{at: at, sensor: w.idx, ohms: w.candOhms}
	switch v.State {
	case eol.StateRest:
		r.level = controller.LevelInactive
	case eol.StateActed:
		r.level = controller.LevelActive
	case eol.StateFailed:
		r.level, r.detail, r.ohms = controller.LevelUnknown, DetailReadFailed+w.lastErr.Error(), 0
	default:
		r.level, r.detail, r.tamper = controller.LevelUnknown, v.State.Words(), true
	}
	r.drift = map[eol.Drift]controller.Drift{eol.DriftLow: controller.DriftLow, eol.DriftHigh: controller.DriftHigh}[v.Drift]
	return r
}
