package device

import (
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/controller"
)

// Set drives output o. pulses > 0 first shows that many pulses (on for half
// a BlinkPeriod, off for half), then holds mode. A blinking output is on for
// half a BlinkPeriod and off for half, starting on. Setting an unwired output
// only records the state. The state is recorded even when driving the line
// fails; the error names the output.
func (c *Core) Set(o controller.Output, mode controller.Mode, pulses uint8) error {
	if mode > controller.ModeBlink {
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
	if pulses > 0 || mode == controller.ModeBlink {
		err = c.drive(st, true)
		st.stop = make(chan struct{})
		c.anim.Add(1)
		go c.pattern(st, st.stop)
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

// drive sets the logical level of st's line; outMu is held.
func (c *Core) drive(st *outState, on bool) error {
	st.on = on
	if st.line == nil {
		return nil
	}
	return st.line.Out(gpio.Level(on != st.activeLow))
}

// pattern runs pulses and blinking of one output until stop closes or the
// pulses are done and the held mode is steady. No goroutine runs for an
// output that is steady, so an idle room does no timed work for outputs.
func (c *Core) pattern(st *outState, stop chan struct{}) {
	defer c.anim.Done()
	half := c.spec.BlinkPeriod / 2
	if half <= 0 {
		half = time.Millisecond
	}
	t := time.NewTimer(half)
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
		case st.on:
			err = c.drive(st, false)
			if st.pulses > 0 {
				st.pulses--
			}
		case st.pulses > 0 || st.mode == controller.ModeBlink:
			err = c.drive(st, true)
		default:
			err = c.drive(st, st.mode == controller.ModeOn)
			st.stop = nil
			done = true
		}
		c.outMu.Unlock()
		if err != nil {
			c.logger.Warn("drive output", "output", st.o.String(), "err", err)
		}
		if done {
			return
		}
		t.Reset(half)
	}
}
