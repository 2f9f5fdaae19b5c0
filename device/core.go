package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/controller"
)

// InputLine is a raw input line as the pipeline needs it. Every periph
// gpio.PinIO satisfies it.
type InputLine interface {
	// In configures the line as an input with the given bias and edge detection.
	In(pull gpio.Pull, edge gpio.Edge) error
	// Read returns the raw level. A line that can report a failed read
	// implements CheckedReader as well.
	Read() gpio.Level
	// WaitForEdge waits at most timeout (always > 0 here) for an edge and
	// reports whether one came. It is only called by one goroutine at a time.
	WaitForEdge(timeout time.Duration) bool
	// Halt interrupts a pending WaitForEdge if it can.
	Halt() error
}

// EdgeQueue is implemented by input lines that can tell, without waiting,
// whether an edge is queued for the next WaitForEdge. The end of a
// debounce asks it: a glitch between two reads is then seen before the
// level is reported, not after. Lines without it are only read.
type EdgeQueue interface {
	EdgeQueued() bool
}

// CheckedReader is implemented by input lines that can tell a failed read
// from a low level. The pipeline prefers it over Read.
type CheckedReader interface {
	ReadChecked() (gpio.Level, error)
}

// OutputLine is a raw output line. Every periph gpio.PinIO satisfies it. The
// pipeline never reads an output back through its own line: it keeps the
// commanded state itself, and supervises an output only through a separate
// feedback line (Spec.Feedback).
type OutputLine interface {
	Out(l gpio.Level) error
}

// AnalogLine is one ADC channel an end-of-line loop is read through. A
// periph analog.PinADC satisfies it. Read converts once and must report
// every failure (a bus error, a conversion that did not finish): a read
// that fails is never taken as a level.
type AnalogLine interface {
	Read() (analog.Sample, error)
}

// Lines are the opened raw lines of a Spec, in the same shape.
type Lines struct {
	// Inputs holds an opened line for every input line of the spec; the
	// slot of a supervised loop (LineSpec.Loop) is nil, its ADC channel is
	// in Loops at the same index.
	Inputs  map[controller.Input][]InputLine
	Loops   map[controller.Input][]AnalogLine
	Power   map[Power]InputLine
	Healthy OutputLine
	Outputs map[controller.Output]OutputLine
	// Feedback holds the opened feedback line of each supervised output.
	Feedback map[controller.Output]InputLine
	// Release, if not nil, releases every line; Core.Close calls it once,
	// after the outputs are safe and every input watcher has stopped.
	Release func() error
}

// OutputState is the commanded state of one output.
type OutputState struct {
	Mode controller.Mode
	// Pulses is the number of pulses still to show before Mode holds.
	Pulses uint8
	// On is the logical level driven now (true = lamp lit, sounder on),
	// before active-low inversion.
	On bool
}

// Core is the pipeline shared by every backend: debounced, supervised input
// readings from raw lines and timed output patterns. It implements Backend.
type Core struct {
	spec   Spec
	lines  Lines
	logger *slog.Logger

	runMu   sync.Mutex // held by Run for its whole life
	stateMu sync.Mutex // guards closed, cancel, runDone
	closed  bool
	cancel  context.CancelFunc
	runDone chan struct{}

	healthyMu sync.Mutex
	healthyOn bool

	outMu     sync.Mutex
	outs      map[controller.Output]*outState
	outClosed bool
	anim      sync.WaitGroup
	onChange  func(controller.Output, OutputState)
}

type outState struct {
	o         controller.Output
	line      OutputLine // nil when unwired
	activeLow bool
	mode      controller.Mode
	pulses    uint8
	on        bool
	changedAt time.Time     // when on last changed
	stop      chan struct{} // closes to stop the running pattern; nil when none
	// notify, for a supervised output, is signalled (without blocking) at
	// every change of on.
	notify chan struct{}
	fb     InputLine // the feedback line; nil when not supervised
}

// NewCore configures every input line (bias, both edges) and drives every
// output to its safe (inactive) state. spec gets WithDefaults and must pass
// Validate; lines must hold an opened line for every line of spec. The error
// names the role and line that could not be configured.
func NewCore(spec Spec, lines Lines, logger *slog.Logger) (*Core, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("device spec: %w", err)
	}
	c := &Core{spec: spec, lines: lines, logger: logger, outs: map[controller.Output]*outState{}}
	for in, specs := range spec.Inputs {
		got := lines.Inputs[in]
		if len(got) != len(specs) {
			return nil, fmt.Errorf("input %s: %d lines opened for %d wired", in, len(got), len(specs))
		}
		for i, l := range got {
			if specs[i].Loop != nil {
				if i >= len(lines.Loops[in]) || lines.Loops[in][i] == nil {
					return nil, fmt.Errorf("input %s line %d (%s): ADC channel not opened", in, i, specs[i])
				}
				continue
			}
			if l == nil {
				return nil, fmt.Errorf("input %s line %d (%s): not opened", in, i, specs[i])
			}
			if err := l.In(toGPIOPull(specs[i].Pull), gpio.BothEdges); err != nil {
				return nil, fmt.Errorf("configure input %s line %s: %w", in, specs[i], err)
			}
		}
	}
	for _, p := range Powers {
		ls, ok := spec.Power[p]
		if !ok {
			continue
		}
		l := lines.Power[p]
		if l == nil {
			return nil, fmt.Errorf("power input %s (%s): not opened", p, ls)
		}
		if err := l.In(toGPIOPull(ls.Pull), gpio.BothEdges); err != nil {
			return nil, fmt.Errorf("configure power input %s line %s: %w", p, ls, err)
		}
	}
	if spec.Healthy != nil && lines.Healthy == nil {
		return nil, fmt.Errorf("healthy output (%s): not opened", spec.Healthy)
	}
	for _, o := range controller.Outputs {
		st := &outState{o: o}
		if ls, ok := spec.Outputs[o]; ok {
			st.line = lines.Outputs[o]
			st.activeLow = ls.ActiveLow
			if st.line == nil {
				return nil, fmt.Errorf("output %s (%s): not opened", o, ls)
			}
		}
		if ls, ok := spec.Feedback[o]; ok {
			st.fb = lines.Feedback[o]
			if st.fb == nil {
				return nil, fmt.Errorf("feedback of output %s (%s): not opened", o, ls)
			}
			if err := st.fb.In(toGPIOPull(ls.Pull), gpio.BothEdges); err != nil {
				return nil, fmt.Errorf("configure feedback of output %s line %s: %w", o, ls, err)
			}
			st.notify = make(chan struct{}, 1)
		}
		c.outs[o] = st
	}
	if err := c.Safe(); err != nil {
		return nil, fmt.Errorf("drive outputs to safe state: %w", err)
	}
	return c, nil
}

// commanded returns the logical level output o is driven at now and when
// it last changed.
func (c *Core) commanded(o controller.Output) (on bool, since time.Time) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	st := c.outs[o]
	return st.on, st.changedAt
}

// Pulse toggles the healthy output (Spec.Healthy), if wired. The daemon
// calls it from its loop only, so a stalled loop stops the pulses and the
// external watchdog relay drops out. Close leaves the line low.
func (c *Core) Pulse() error {
	if c.lines.Healthy == nil {
		return nil
	}
	c.healthyMu.Lock()
	defer c.healthyMu.Unlock()
	c.outMu.Lock()
	closed := c.outClosed
	c.outMu.Unlock()
	if closed {
		return fmt.Errorf("pulse healthy output: %w", ErrClosed)
	}
	c.healthyOn = !c.healthyOn
	if err := c.lines.Healthy.Out(gpio.Level(c.healthyOn != c.spec.Healthy.ActiveLow)); err != nil {
		return fmt.Errorf("pulse healthy output: %w", err)
	}
	return nil
}

// Spec returns the spec in use (with defaults applied).
func (c *Core) Spec() Spec { return c.spec }

// SetObserver registers f, called after every change of an output's
// commanded mode or pulses (not for every blink phase), with the core's
// output lock held: f must be quick and must not call back into the Core.
func (c *Core) SetObserver(f func(controller.Output, OutputState)) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.onChange = f
}

func toGPIOPull(p Pull) gpio.Pull {
	switch p {
	case PullUp:
		return gpio.PullUp
	case PullDown:
		return gpio.PullDown
	default:
		return gpio.Float
	}
}

// ErrClosed is returned by a Core after Close.
var ErrClosed = errors.New("device closed")

// Close stops a running Run, drives every output to its safe state and
// releases the lines. It is idempotent.
func (c *Core) Close() error {
	c.stateMu.Lock()
	if c.closed {
		c.stateMu.Unlock()
		return nil
	}
	c.closed = true
	cancel, done := c.cancel, c.runDone
	c.stateMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	err := c.Safe()
	c.outMu.Lock()
	c.outClosed = true
	c.outMu.Unlock()
	if c.lines.Healthy != nil {
		c.healthyMu.Lock()
		c.healthyOn = false
		if herr := c.lines.Healthy.Out(gpio.Level(c.spec.Healthy.ActiveLow)); herr != nil {
			err = errors.Join(err, fmt.Errorf("healthy output off: %w", herr))
		}
		c.healthyMu.Unlock()
	}
	c.anim.Wait()
	if c.lines.Release != nil {
		if rerr := c.lines.Release(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release lines: %w", rerr))
		}
	}
	return err
}

var _ Backend = (*Core)(nil)
