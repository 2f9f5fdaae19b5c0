package device

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// The alarm patterns (Pattern). Each repeats within 10 s and each burst of
// sound is either part of a pulsed pattern or lasts 3 s, as UL 1069 asks of
// nurse call annunciation (docs/wiring.md).
const (
	panicOn, panicOff   = 250 * time.Millisecond, 250 * time.Millisecond  // 2 Hz, urgent
	lockedOn, lockedGap = 250 * time.Millisecond, 1250 * time.Millisecond // two short, a pause: every 2 s
	timeUpOn, timeUpOff = time.Second, time.Second                        // slow, every 2 s
	faultOn, faultOff   = 3 * time.Second, 7 * time.Second                // 3 s continuous, every 10 s
	shortestAlarmPhase  = 250 * time.Millisecond                          // of the patterns above
	longestAlarmCycle   = faultOn + faultOff                              // of the patterns above
)

// Pattern returns the cycle mode m shows: durations of on and off
// alternating, starting on, repeated while the mode holds. Steady modes
// (off, on) have none. blinkPeriod is the cycle of ModeBlink; the alarm
// patterns have fixed timings:
//
//	panic        on 250ms, off 250ms                          (every 0.5 s)
//	door_locked  on 250ms, off 250ms, on 250ms, off 1250ms    (every 2 s)
//	time_up      on 1s, off 1s                                (every 2 s)
//	fault        on 3s, off 7s                                (every 10 s)
func Pattern(m controller.Mode, blinkPeriod time.Duration) []time.Duration {
	switch m {
	case controller.ModeBlink:
		half := max(blinkPeriod/2, time.Millisecond)
		return []time.Duration{half, half}
	case controller.ModePanic:
		return []time.Duration{panicOn, panicOff}
	case controller.ModeDoorLocked:
		return []time.Duration{lockedOn, lockedOn, lockedOn, lockedGap}
	case controller.ModeTimeUp:
		return []time.Duration{timeUpOn, timeUpOff}
	case controller.ModeFault:
		return []time.Duration{faultOn, faultOff}
	}
	return nil
}

// Set drives output o. pulses > 0 first shows that many pulses (on for half
// a BlinkPeriod, off for half), then holds mode. A patterned mode (blink or
// an alarm pattern, see Pattern) starts on. Setting an unwired output only
// records the state. The state is recorded even when driving the line
// fails; the error names the output.
func (c *Core) Set(o controller.Output, mode controller.Mode, pulses uint8) error {
	if int(mode) >= len(controller.Modes) {
		return fmt.Errorf("set output %s: invalid mode %d", o, uint8(mode))
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outClosed {
		return fmt.Errorf("set output %s: %w", o, ErrClosed)
	}
	st, ok := c.outs[o]
	if !ok {
		return fmt.Errorf("set output %s: unknown output", o)
	}
	changed := st.mode != mode || st.pulses != pulses
	st.stopPattern()
	st.mode, st.pulses = mode, pulses
	var err error
	if pulses > 0 || mode.IsPattern() {
		err = c.drive(st, true)
		st.stop = make(chan struct{})
		c.anim.Add(1)
		go c.pattern(st, st.stop, Pattern(mode, c.spec.BlinkPeriod), pulses > 0)
	} else {
		err = c.drive(st, mode == controller.ModeOn)
	}
	if changed && c.onChange != nil {
		c.onChange(o, st.state())
	}
	if err != nil {
		return fmt.Errorf("set output %s %s: %w", o, mode, err)
	}
	return nil
}

// Safe stops every pattern and drives every output off (inactive, after
// active-low). It tries every output even if one fails and joins the
// errors. After Close it does nothing: Close already made the outputs safe.
func (c *Core) Safe() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outClosed {
		return nil
	}
	var errs []error
	for _, o := range controller.Outputs {
		st := c.outs[o]
		changed := st.mode != controller.ModeOff || st.pulses != 0
		st.stopPattern()
		st.mode, st.pulses = controller.ModeOff, 0
		if err := c.drive(st, false); err != nil {
			errs = append(errs, fmt.Errorf("output %s off: %w", o, err))
		}
		if changed && c.onChange != nil {
			c.onChange(o, st.state())
		}
	}
	return errors.Join(errs...)
}

// Output returns the commanded state of output o.
func (c *Core) Output(o controller.Output) OutputState {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if st, ok := c.outs[o]; ok {
		return st.state()
	}
	return OutputState{}
}

// Outputs returns the commanded mode of every output.
func (c *Core) Outputs() map[controller.Output]controller.Mode {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	m := make(map[controller.Output]controller.Mode, len(c.outs))
	for o, st := range c.outs {
		m[o] = st.mode
	}
	return m
}

func (st *outState) state() OutputState {
	return OutputState{Mode: st.mode, Pulses: st.pulses, On: st.on}
}

func (st *outState) stopPattern() {
	if st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
}

// drive sets the logical level of st's line; outMu is held. A change of
// level is timed and told to the output's supervisor, if any.
func (c *Core) drive(st *outState, on bool) error {
	if st.on != on || st.changedAt.IsZero() {
		st.changedAt = wallclock.Now()
		if st.notify != nil {
			select {
			case st.notify <- struct{}{}:
			default:
			}
		}
	}
	st.on = on
	if st.line == nil {
		return nil
	}
	return st.line.Out(gpio.Level(on != st.activeLow))
}

// pattern runs the pulses (if pulsing) and then cycle, the pattern of the
// held mode (nil for a steady one), of one output until stop closes, or
// until the pulses are done and the held mode is steady. Set has driven the
// first phase (on). No goroutine runs for an
// output that is steady, so an idle room does no timed work for outputs.
func (c *Core) pattern(st *outState, stop chan struct{}, cycle []time.Duration, pulsing bool) {
	defer c.anim.Done()
	half := max(c.spec.BlinkPeriod/2, time.Millisecond)
	phase := 0
	next := half
	if !pulsing {
		next = cycle[0]
	}
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.outMu.Lock()
		if st.stop != stop {
			c.outMu.Unlock()
			return
		}
		var err error
		done := false
		switch {
		case pulsing && st.on:
			err = c.drive(st, false)
			st.pulses--
			next = half
		case pulsing && st.pulses > 0:
			err = c.drive(st, true)
			next = half
		case pulsing && cycle == nil:
			err = c.drive(st, st.mode == controller.ModeOn)
			st.stop = nil
			done = true
		case pulsing:
			pulsing = false
			err = c.drive(st, true)
			phase, next = 0, cycle[0]
		default:
			phase = (phase + 1) % len(cycle)
			err = c.drive(st, phase%2 == 0)
			next = cycle[phase]
		}
		c.outMu.Unlock()
		if err != nil {
			c.logger.Warn("drive output", "output", st.o.String(), "err", err)
		}
		if done {
			return
		}
		t.Reset(next)
	}
}
