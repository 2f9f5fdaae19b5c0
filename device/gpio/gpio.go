// Package gpio is roomd's hardware backend: the room's lines on the Linux GPIO
// character device (/dev/gpiochip*), through periph.io's gpioioctl driver.
//
// The same code path runs on a Raspberry Pi and against the kernel's gpio-sim:
// lines are opened through gpioioctl.Chips directly (never through gpioreg,
// where a Pi's memory-mapped driver would replace them), chips are found by
// label or name, and outputs are never read back through their line.
package gpio

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3/gpioioctl"
	_ "periph.io/x/host/v3/sysfs" // registers the I²C buses of /dev/i2c-* in i2creg

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

// Chip is one GPIO chip as line resolution sees it.
type Chip struct {
	Name  string // kernel name, "gpiochip0"
	Label string // kernel label, "pinctrl-bcm2711", "gpio-sim.0-node0"
	Lines []Line // indexed by offset
}

// Line is one line of a Chip.
type Line struct {
	Name     string // kernel line name ("GPIO17"); empty if unnamed
	Offset   int
	Consumer string // who held the line when the chips were enumerated; "" if free
	// Pin drives the line. For a host chip the line is requested from the
	// kernel on its first In or Out.
	Pin pgpio.PinIO
}

// Backend is the GPIO backend of one room.
type Backend struct {
	*device.Core
}

var _ device.Backend = (*Backend)(nil)

var initOnce = sync.OnceValue(func() error {
	_, err := driverreg.Init()
	return err
})

// HostChips returns the chips of /dev/gpiochip*. The first call enumerates
// them (periph's gpioioctl driver does it once per process, so a chip that
// appears later is never seen).
func HostChips() ([]Chip, error) {
	if err := initOnce(); err != nil {
		return nil, fmt.Errorf("initialise GPIO: %w", err)
	}
	chips := make([]Chip, 0, len(gpioioctl.Chips))
	for _, c := range gpioioctl.Chips {
		ch := Chip{Name: c.Name(), Label: c.Label()}
		for _, l := range c.Lines() {
			ch.Lines = append(ch.Lines, Line{Name: l.Name(), Offset: l.Number(), Consumer: l.Consumer(), Pin: l})
		}
		chips = append(chips, ch)
	}
	if len(chips) == 0 {
		return nil, errors.New("initialise GPIO: no GPIO chip found (/dev/gpiochip*)")
	}
	return chips, nil
}

// Open opens the room's lines on the host's GPIO chips and its loops'
// ADCs on the host's I²C buses: HostChips, then OpenWith.
func Open(spec device.Spec, logger *slog.Logger) (*Backend, error) {
	chips, err := HostChips()
	if err != nil {
		return nil, err
	}
	return OpenWith(spec, chips, &HostADCs{}, logger)
}

// HostADCs opens ADS1115 channels on the host's I²C buses (periph's
// i2creg), each bus and converter once.
type HostADCs struct {
	buses map[string]i2c.BusCloser
	devs  map[string]*ADS1115
}

// Open implements ADCs.
func (h *HostADCs) Open(ch device.ADCChannel) (device.AnalogLine, error) {
	if err := initOnce(); err != nil {
		return nil, fmt.Errorf("initialise I²C: %w", err)
	}
	if h.buses == nil {
		h.buses, h.devs = map[string]i2c.BusCloser{}, map[string]*ADS1115{}
	}
	bus, ok := h.buses[ch.Bus]
	if !ok {
		b, err := i2creg.Open(ch.Bus)
		if err != nil {
			return nil, fmt.Errorf("open I²C bus %q: %w", ch.Bus, err)
		}
		h.buses[ch.Bus], bus = b, b
	}
	key := fmt.Sprintf("%s/%x", ch.Bus, ch.Address)
	dev, ok := h.devs[key]
	if !ok {
		d, err := NewADS1115(bus, ch.Address)
		if err != nil {
			return nil, err
		}
		h.devs[key], dev = d, d
	}
	return dev.Channel(ch.Channel)
}

// Close implements ADCs.
func (h *HostADCs) Close() error {
	var errs []error
	for name, b := range h.buses {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("I²C bus %q: %w", name, err))
		}
	}
	h.buses = nil
	return errors.Join(errs...)
}

// ADCs opens the ADC channel a supervised loop (device.Loop) is read
// through; HostADCs is the host's, on its I²C buses.
type ADCs interface {
	Open(device.ADCChannel) (device.AnalogLine, error)
	// Close releases every bus opened.
	Close() error
}

// OpenChips resolves every line of spec among chips, configures inputs (bias,
// both edges) and drives every output inactive. A line that does not exist,
// is used twice, or cannot be requested (busy: held by another process or a
// kernel driver) fails the start with an error naming the role and the line.
// On error every line already requested is released. A spec with
// supervised loops needs OpenWith.
func OpenChips(spec device.Spec, chips []Chip, logger *slog.Logger) (*Backend, error) {
	return OpenWith(spec, chips, nil, logger)
}

// OpenWith is OpenChips with the ADCs that supervised loops are read
// through; adcs may be nil when no input is a loop. It closes adcs with
// the lines.
func OpenWith(spec device.Spec, chips []Chip, adcs ADCs, logger *slog.Logger) (*Backend, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lines := device.Lines{
		Inputs:   map[controller.Input][]device.InputLine{},
		Loops:    map[controller.Input][]device.AnalogLine{},
		Outputs:  map[controller.Output]device.OutputLine{},
		Feedback: map[controller.Output]device.InputLine{},
		Power:    map[device.Power]device.InputLine{},
	}
	var opened []Line
	users := map[string]string{} // chip/offset -> role
	claim := func(role string, ls device.LineSpec) (Line, error) {
		l, chip, err := Resolve(chips, ls)
		if err != nil {
			return Line{}, fmt.Errorf("%s: %w", role, err)
		}
		key := fmt.Sprintf("%s/%d", chip, l.Offset)
		if other, ok := users[key]; ok {
			return Line{}, fmt.Errorf("%s: line %s (%s offset %d) is already wired to %s", role, ls, chip, l.Offset, other)
		}
		users[key] = role
		opened = append(opened, l)
		return l, nil
	}
	var errs []error
	for _, in := range controller.Inputs {
		for i, ls := range spec.Inputs[in] {
			role := "input " + in.String()
			switch {
			case in == controller.InputPanic && len(spec.Inputs[in]) > 1:
				role = fmt.Sprintf("input panic point %s", spec.PanicPoint(i))
			case len(spec.Inputs[in]) > 1:
				role = fmt.Sprintf("input %s sensor %d", in, i+1)
			}
			if ls.Loop != nil {
				lines.Inputs[in] = append(lines.Inputs[in], nil)
				lines.Loops[in] = append(lines.Loops[in], nil)
				key := "adc/" + ls.Loop.ADC.String()
				if other, ok := users[key]; ok {
					errs = append(errs, fmt.Errorf("%s: %s is already wired to %s", role, ls.Loop.ADC, other))
					continue
				}
				users[key] = role
				if adcs == nil {
					errs = append(errs, fmt.Errorf("%s: a supervised loop needs an ADC, and none is set up", role))
					continue
				}
				a, err := adcs.Open(ls.Loop.ADC)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", role, err))
					continue
				}
				lines.Loops[in][i] = a
				continue
			}
			l, err := claim(role, ls)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			lines.Inputs[in] = append(lines.Inputs[in], hostLine{PinIO: l.Pin, consumer: l.Consumer})
			lines.Loops[in] = append(lines.Loops[in], nil)
		}
	}
	for _, p := range device.Powers {
		ls, ok := spec.Power[p]
		if !ok {
			continue
		}
		l, err := claim("power input "+p.String(), ls)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lines.Power[p] = hostLine{PinIO: l.Pin, consumer: l.Consumer}
	}
	if spec.Healthy != nil {
		l, err := claim("healthy output", *spec.Healthy)
		if err != nil {
			errs = append(errs, err)
		} else {
			lines.Healthy = hostLine{PinIO: l.Pin, consumer: l.Consumer}
		}
	}
	for _, o := range controller.Outputs {
		ls, ok := spec.Outputs[o]
		if !ok {
			continue
		}
		l, err := claim("output "+o.String(), ls)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lines.Outputs[o] = hostLine{PinIO: l.Pin, consumer: l.Consumer}
	}
	for _, o := range controller.Outputs {
		ls, ok := spec.Feedback[o]
		if !ok {
			continue
		}
		l, err := claim("feedback of output "+o.String(), ls)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lines.Feedback[o] = hostLine{PinIO: l.Pin, consumer: l.Consumer}
	}
	release := func() error {
		for _, l := range opened {
			if c, ok := l.Pin.(interface{ Close() }); ok {
				c.Close()
			}
		}
		if adcs != nil {
			if err := adcs.Close(); err != nil {
				return fmt.Errorf("close ADC buses: %w", err)
			}
		}
		return nil
	}
	if err := errors.Join(errs...); err != nil {
		_ = release()
		return nil, fmt.Errorf("open GPIO lines: %w", err)
	}
	lines.Release = release
	core, err := device.NewCore(spec, lines, logger)
	if err != nil {
		_ = release()
		return nil, fmt.Errorf("open GPIO lines: %w", err)
	}
	logger.Info("GPIO lines open", "inputs", len(spec.Inputs), "outputs", len(spec.Outputs), "feedback", len(spec.Feedback))
	return &Backend{Core: core}, nil
}

// Resolve finds the line that ls names: by Pin, a line name searched on every
// chip (or only on ls.Chip if set), or by ls.Chip (label or name) and the
// offset ls.Line. It returns the line and the name of its chip.
func Resolve(chips []Chip, ls device.LineSpec) (Line, string, error) {
	var chip *Chip
	if ls.Chip != "" {
		for i := range chips {
			if chips[i].Label == ls.Chip || chips[i].Name == ls.Chip {
				chip = &chips[i]
				break
			}
		}
		if chip == nil {
			return Line{}, "", fmt.Errorf("GPIO chip %q not found (have %s)", ls.Chip, chipList(chips))
		}
	}
	if ls.Pin != "" {
		var found []Line
		var where []string
		for i := range chips {
			if chip != nil && &chips[i] != chip {
				continue
			}
			for _, l := range chips[i].Lines {
				if l.Name == ls.Pin {
					found = append(found, l)
					where = append(where, chips[i].Name)
				}
			}
		}
		switch len(found) {
		case 0:
			return Line{}, "", fmt.Errorf("pin %q not found on any GPIO chip (have %s)", ls.Pin, chipList(chips))
		case 1:
			return found[0], where[0], nil
		default:
			return Line{}, "", fmt.Errorf("pin %q is on several chips (%s): name the chip", ls.Pin, strings.Join(where, ", "))
		}
	}
	if chip == nil {
		return Line{}, "", errors.New("line names neither a pin nor a chip")
	}
	if ls.Line < 0 || ls.Line >= len(chip.Lines) {
		return Line{}, "", fmt.Errorf("GPIO chip %s (%s) has no line %d (it has %d)", chip.Name, chip.Label, ls.Line, len(chip.Lines))
	}
	return chip.Lines[ls.Line], chip.Name, nil
}

func chipList(chips []Chip) string {
	if len(chips) == 0 {
		return "no chips"
	}
	var b []string
	for _, c := range chips {
		b = append(b, fmt.Sprintf("%s %q with %d lines", c.Name, c.Label, len(c.Lines)))
	}
	return strings.Join(b, ", ")
}

// hostLine adds who held the line at enumeration to a request error, so a
// busy line names its holder.
type hostLine struct {
	pgpio.PinIO
	consumer string
}

func (h hostLine) hint(err error) error {
	if err != nil && h.consumer != "" {
		return fmt.Errorf("%w (line held by %q)", err, h.consumer)
	}
	return err
}

func (h hostLine) In(pull pgpio.Pull, edge pgpio.Edge) error {
	return h.hint(h.PinIO.In(pull, edge))
}

func (h hostLine) Out(l pgpio.Level) error {
	return h.hint(h.PinIO.Out(l))
}

// ReadChecked forwards to the wrapped pin when it can report read errors.
func (h hostLine) ReadChecked() (pgpio.Level, error) {
	if cr, ok := h.PinIO.(device.CheckedReader); ok {
		return cr.ReadChecked()
	}
	return h.PinIO.Read(), nil
}
