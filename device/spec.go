package device

import (
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
)

// Defaults applied by Spec.WithDefaults for zero fields.
const (
	DefaultRereadEvery    = 5 * time.Second
	DefaultBlinkPeriod    = time.Second
	DefaultFlapMaxChanges = 20
	DefaultFlapWindow     = 10 * time.Second
	DefaultFeedbackGrace  = 100 * time.Millisecond
	maxWait               = time.Second // longest single WaitForEdge, so Run ends promptly
	minWait               = time.Millisecond
	maxPresenceLines      = 8
	maxPanicPoints        = 8
)

// Pull is the bias applied to an input line.
type Pull uint8

// The pulls. PullNone leaves the line floating (external resistor).
const (
	PullNone Pull = iota
	PullUp
	PullDown
)

func (p Pull) String() string {
	switch p {
	case PullUp:
		return "up"
	case PullDown:
		return "down"
	default:
		return "none"
	}
}

// ParsePull accepts "none", "up" and "down" ("" means none).
func ParsePull(s string) (Pull, error) {
	switch s {
	case "", "none":
		return PullNone, nil
	case "up":
		return PullUp, nil
	case "down":
		return PullDown, nil
	}
	return 0, fmt.Errorf("unknown pull %q (want none, up or down)", s)
}

// LineSpec names one physical line and says how to read or drive it.
//
// A line is found either by Pin, a line name searched on every GPIO chip
// ("GPIO17" on a Raspberry Pi), or by Chip (a chip label such as
// "pinctrl-bcm2711" or a chip name such as "gpiochip0") plus Line, the
// offset on that chip. The simulator ignores both.
type LineSpec struct {
	Pin  string
	Chip string
	Line int
	// Pull is the input bias; ignored for outputs.
	Pull Pull
	// ActiveLow inverts the line: a low line is the active level (input) or
	// drives the output on.
	ActiveLow bool
	// Debounce is how long a raw input level must stay unchanged before it
	// counts (settle debounce); zero takes the first read. Ignored for outputs.
	Debounce time.Duration
	// Name names the panic point a line of the panic role is ("bed",
	// "toilet"; see controller.ValidPointName). A room with one panic line
	// may leave it empty: the point is then controller.DefaultPanicPoint.
	// Other roles leave it empty.
	Name string
	// Loop, when not nil, makes this input an end-of-line supervised loop
	// read through an ADC channel instead of a GPIO line: Pin, Chip, Line,
	// Pull, ActiveLow and Debounce are then unused.
	Loop *Loop
}

// Loop is an input wired as an end-of-line supervised loop (package eol):
// the ADC channel it is read through, how volts become ohms, the bands,
// the loop's commissioned baseline and the timing of the reads.
type Loop struct {
	ADC     ADCChannel
	Table   eol.Table
	Divider eol.Divider
	// Baseline is what commissioning measured (zero: none yet); drift is
	// judged against it, within Tolerance (zero: eol.DefaultTolerance).
	Baseline  eol.Baseline
	Tolerance float64
	// Hold is how long a band must hold to count (zero: eol.DefaultHold).
	Hold time.Duration
	// Every is the interval of the reads (zero: DefaultLoopEvery); at most
	// MaxLoopEvery, so that the loop is read at least 50 times a second.
	Every time.Duration
}

// ADCChannel names one input of an ADC on an I²C bus.
type ADCChannel struct {
	Bus     string // the I²C bus ("1" for /dev/i2c-1); empty: the first
	Address uint16 // the converter's address (0x48 to 0x4B for an ADS1115)
	Channel int    // the single-ended input, 0 to 3
}

func (a ADCChannel) String() string {
	bus := a.Bus
	if bus == "" {
		bus = "default"
	}
	return fmt.Sprintf("ADC i2c-%s 0x%02x channel %d", bus, a.Address, a.Channel)
}

// Loop timing defaults and bounds.
const (
	DefaultLoopEvery = 10 * time.Millisecond
	MaxLoopEvery     = 20 * time.Millisecond // 50 reads a second
)

// Power is a power-supply status input: the status lines of a UPS.
type Power uint8

// The power inputs. Active means the trouble: mains lost, battery low.
const (
	PowerMains   Power = iota + 1 // active: mains lost, running on the battery
	PowerBattery                  // active: the battery is nearly flat
)

// Powers lists the power inputs in a stable order.
var Powers = []Power{PowerMains, PowerBattery}

func (p Power) String() string {
	switch p {
	case PowerMains:
		return "mains_fail"
	case PowerBattery:
		return "battery_low"
	}
	return fmt.Sprintf("power(%d)", uint8(p))
}

// String names the line for errors and logs.
func (l LineSpec) String() string {
	if l.Loop != nil {
		return l.Loop.ADC.String()
	}
	if l.Pin != "" {
		return l.Pin
	}
	return fmt.Sprintf("%s line %d", l.Chip, l.Line)
}

// Flap is the flapping supervision of inputs: more than MaxChanges raw
// changes of one line within Window make the line LevelUnknown ("flapping")
// until it has been quiet for a whole Window.
type Flap struct {
	MaxChanges int
	Window     time.Duration
}

// Spec is the wiring of one room and the timing of the pipeline.
type Spec struct {
	// Inputs maps each wired input role to its lines. Presence may have
	// several sensors (combined: any active → active, else any unknown →
	// unknown, else inactive). The panic role may have several points, each
	// a line with its own Name, each read on its own (Reading.Point). Every
	// other role has exactly one line. An unwired role is never sent by Run.
	Inputs map[controller.Input][]LineSpec
	// Outputs maps each wired output to its line. Setting an unwired output
	// is accepted and only recorded.
	Outputs map[controller.Output]LineSpec
	// RereadEvery is the safety-net re-read of every input, which corrects a
	// lost edge. Zero means DefaultRereadEvery.
	RereadEvery time.Duration
	// Flap supervises inputs. Zero fields take DefaultFlapMaxChanges and
	// DefaultFlapWindow.
	Flap Flap
	// BlinkPeriod is one on+off cycle of a blinking output and of one pulse.
	// Zero means DefaultBlinkPeriod. The alarm patterns have their own
	// timings (Pattern).
	BlinkPeriod time.Duration
	// Feedback maps a wired output to the input line that reads it back (a
	// relay's auxiliary contact; active when the output is on). Run
	// supervises each: see FeedbackGrace.
	Feedback map[controller.Output]LineSpec
	// FeedbackGrace is how long a read-back may differ from what is driven
	// before the output counts as failed. It must be shorter than the
	// shortest phase of a pattern (half a BlinkPeriod, and 250ms of the
	// panic pattern), so that every phase is checked. Zero means
	// DefaultFeedbackGrace.
	FeedbackGrace time.Duration
	// Power maps each wired power status input to its GPIO line; Run
	// sends its readings (Reading.Power) as it does an input's.
	Power map[Power]LineSpec
	// Healthy, when not nil, is the output Pulse toggles: the "alive" line
	// of an external watchdog relay or monostable, pulsed only while the
	// daemon's loop runs.
	Healthy *LineSpec
}

// WithDefaults returns s with zero timing fields replaced by the defaults.
func (s Spec) WithDefaults() Spec {
	if s.RereadEvery == 0 {
		s.RereadEvery = DefaultRereadEvery
	}
	if s.Flap.MaxChanges == 0 {
		s.Flap.MaxChanges = DefaultFlapMaxChanges
	}
	if s.Flap.Window == 0 {
		s.Flap.Window = DefaultFlapWindow
	}
	if s.BlinkPeriod == 0 {
		s.BlinkPeriod = DefaultBlinkPeriod
	}
	if s.FeedbackGrace == 0 {
		s.FeedbackGrace = DefaultFeedbackGrace
	}
	return s
}

// PanicPoint returns the point name of panic line i (the line's Name, or
// controller.DefaultPanicPoint for an unnamed line).
func (s Spec) PanicPoint(i int) string {
	if lines := s.Inputs[controller.InputPanic]; i < len(lines) && lines[i].Name != "" {
		return lines[i].Name
	}
	return controller.DefaultPanicPoint
}

// Validate reports every problem of s (after WithDefaults), naming the role.
func (s Spec) Validate() error {
	var errs []error
	if s.RereadEvery < 0 {
		errs = append(errs, fmt.Errorf("reread interval %s is negative", s.RereadEvery))
	}
	if s.Flap.MaxChanges < 0 || s.Flap.Window < 0 {
		errs = append(errs, fmt.Errorf("flap supervision %d changes in %s: negative", s.Flap.MaxChanges, s.Flap.Window))
	}
	if s.BlinkPeriod < 0 {
		errs = append(errs, fmt.Errorf("blink period %s is negative", s.BlinkPeriod))
	}
	for _, in := range controller.Inputs {
		lines, ok := s.Inputs[in]
		if !ok {
			continue
		}
		switch {
		case len(lines) == 0:
			errs = append(errs, fmt.Errorf("input %s: no line", in))
		case in != controller.InputPresence && in != controller.InputPanic && len(lines) > 1:
			errs = append(errs, fmt.Errorf("input %s: %d lines, only presence and panic may have several", in, len(lines)))
		case in == controller.InputPresence && len(lines) > maxPresenceLines:
			errs = append(errs, fmt.Errorf("input %s: %d lines, at most %d", in, len(lines), maxPresenceLines))
		case in == controller.InputPanic && len(lines) > maxPanicPoints:
			errs = append(errs, fmt.Errorf("input %s: %d points, at most %d", in, len(lines), maxPanicPoints))
		}
		names := map[string]bool{}
		for i, l := range lines {
			switch {
			case in != controller.InputPanic && l.Name != "":
				errs = append(errs, fmt.Errorf("input %s line %d (%s): only panic points have names", in, i, l))
			case in == controller.InputPanic && l.Name == "" && len(lines) > 1:
				errs = append(errs, fmt.Errorf("input %s line %d (%s): several panic points need a name each", in, i, l))
			case in == controller.InputPanic && l.Name != "" && !controller.ValidPointName(l.Name):
				errs = append(errs, fmt.Errorf("input %s line %d (%s): %q is not a point name (1 to 32 of a-z, 0-9 and _, starting with a letter)", in, i, l, l.Name))
			case in == controller.InputPanic && names[l.Name]:
				errs = append(errs, fmt.Errorf("input %s line %d (%s): point %q named twice", in, i, l, l.Name))
			}
			names[l.Name] = true
			if l.Debounce < 0 {
				errs = append(errs, fmt.Errorf("input %s line %d (%s): negative debounce %s", in, i, l, l.Debounce))
			}
			if l.Pull > PullDown {
				errs = append(errs, fmt.Errorf("input %s line %d (%s): invalid pull %d", in, i, l, l.Pull))
			}
			if l.Loop != nil {
				if err := l.Loop.validate(); err != nil {
					errs = append(errs, fmt.Errorf("input %s line %d (%s): %w", in, i, l, err))
				}
			}
		}
	}
	for p, l := range s.Power {
		if p != PowerMains && p != PowerBattery {
			errs = append(errs, fmt.Errorf("unknown power input %d", uint8(p)))
		}
		if l.Loop != nil {
			errs = append(errs, fmt.Errorf("power input %s: a status line, not a supervised loop", p))
		}
	}
	if s.Healthy != nil && s.Healthy.Loop != nil {
		errs = append(errs, errors.New("healthy output: an output, not a supervised loop"))
	}
	for in := range s.Inputs {
		if in.String() == fmt.Sprintf("input(%d)", uint8(in)) {
			errs = append(errs, fmt.Errorf("unknown input role %d", uint8(in)))
		}
	}
	for o := range s.Outputs {
		if o.String() == fmt.Sprintf("output(%d)", uint8(o)) {
			errs = append(errs, fmt.Errorf("unknown output role %d", uint8(o)))
		}
	}
	for _, o := range controller.Outputs {
		l, ok := s.Feedback[o]
		if !ok {
			continue
		}
		if _, wired := s.Outputs[o]; !wired {
			errs = append(errs, fmt.Errorf("feedback of output %s (%s): the output is not wired", o, l))
		}
		if l.Pull > PullDown {
			errs = append(errs, fmt.Errorf("feedback of output %s (%s): invalid pull %d", o, l, l.Pull))
		}
	}
	for o := range s.Feedback {
		if o.String() == fmt.Sprintf("output(%d)", uint8(o)) {
			errs = append(errs, fmt.Errorf("feedback of unknown output role %d", uint8(o)))
		}
	}
	if shortest := min(s.BlinkPeriod/2, shortestAlarmPhase); len(s.Feedback) > 0 && (s.FeedbackGrace <= 0 || s.FeedbackGrace >= shortest) {
		errs = append(errs, fmt.Errorf("feedback grace %s: must be positive and shorter than the shortest pattern phase %s", s.FeedbackGrace, shortest))
	}
	return errors.Join(errs...)
}

func (l *Loop) validate() error {
	var errs []error
	if err := l.Table.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("bands: %w", err))
	}
	if err := l.Divider.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("divider: %w", err))
	}
	if l.ADC.Channel < 0 || l.ADC.Channel > 3 {
		errs = append(errs, fmt.Errorf("ADC channel %d: want 0 to 3", l.ADC.Channel))
	}
	if l.Hold < 0 || l.Hold > 5*time.Second {
		errs = append(errs, fmt.Errorf("hold %s: want 0s to 5s", l.Hold))
	}
	if l.Every < 0 || l.Every > MaxLoopEvery {
		errs = append(errs, fmt.Errorf("read interval %s: at most %s (50 reads a second)", l.Every, MaxLoopEvery))
	}
	if l.Tolerance < 0 || l.Tolerance >= 1 {
		errs = append(errs, fmt.Errorf("drift tolerance %v: want a fraction below 1", l.Tolerance))
	}
	if l.Baseline.Rest < 0 || l.Baseline.Acted < 0 {
		errs = append(errs, errors.New("baseline: negative ohms"))
	}
	return errors.Join(errs...)
}

// withDefaults returns the loop with zero timing fields defaulted.
func (l Loop) withDefaults() Loop {
	if l.Hold == 0 {
		l.Hold = eol.DefaultHold
	}
	if l.Every == 0 {
		l.Every = DefaultLoopEvery
	}
	if l.Tolerance == 0 {
		l.Tolerance = eol.DefaultTolerance
	}
	return l
}
