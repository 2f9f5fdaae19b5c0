package sim

import (
	"fmt"
	"math"
	"sync"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/physic"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
)

// Loop is a simulated end-of-line supervised loop and the ADC channel that
// reads it: the contact (at rest or acted on), what was done to its wires,
// and the ohms that make, read through the loop's divider. It satisfies
// device.AnalogLine.
type Loop struct {
	spec device.Loop

	mu     sync.Mutex
	active bool
	wire   contract.SimWire
	ohms   float64 // when set (SetOhms), read as is
	set    bool
	fail   bool
}

// NewLoop returns a loop wired as spec, at rest, its wires sound.
func NewLoop(spec device.Loop) *Loop { return &Loop{spec: spec, wire: contract.WireSound} }

// Ohms is what the loop measures now. At rest and acted on it is the
// scheme's nominal resistance (or the baseline, when commissioned); a
// drift moves the state at rest 15% low or 25% high (into Galaxy's and
// Texecom's low and high bands); bridged is 0 Ω, cut is open, masked is
// the middle of the masked band (open where the table has none).
func (l *Loop) Ohms() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ohmsLocked()
}

func (l *Loop) ohmsLocked() float64 {
	if l.set {
		return l.ohms
	}
	t := l.spec.Table
	rest, acted := t.Rest, t.Acted
	if b := l.spec.Baseline; b.Rest > 0 {
		rest = b.Rest
		if b.Acted > 0 {
			acted = b.Acted
		}
	}
	switch l.wire {
	case contract.WireBridged:
		return 0
	case contract.WireCut:
		return math.Inf(1)
	case contract.WireMasked:
		for _, r := range t.Ranges {
			if r.Band == eol.BandMasked {
				return (r.From + r.To) / 2
			}
		}
		return math.Inf(1)
	}
	if l.active {
		return acted
	}
	switch l.wire {
	case contract.WireDriftLow:
		return rest * 0.85
	case contract.WireDriftHigh:
		return rest * 1.25
	}
	return rest
}

// Read converts once: the volts across the loop, or ErrReadFault.
func (l *Loop) Read() (analog.Sample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return analog.Sample{}, ErrReadFault
	}
	v := l.spec.Divider.Volts(l.ohmsLocked())
	return analog.Sample{V: physic.ElectricPotential(v * float64(physic.Volt)), Raw: int32(v / 4.096 * 32767)}, nil
}

// setActive sets the contact.
func (l *Loop) setActive(on bool) {
	l.mu.Lock()
	l.active = on
	l.mu.Unlock()
}

// SetWire does w to the loop's wires.
func (l *Loop) SetWire(w contract.SimWire) {
	l.mu.Lock()
	l.wire = w
	l.mu.Unlock()
}

// SetOhms makes the loop read ohms whatever its contact and wires.
func (l *Loop) SetOhms(ohms float64) {
	l.mu.Lock()
	l.ohms, l.set = ohms, true
	l.mu.Unlock()
}

// SetFail makes reads fail (true) or work.
func (l *Loop) SetFail(fail bool) {
	l.mu.Lock()
	l.fail = fail
	l.mu.Unlock()
}

// setLevel puts line i of input in at level l, with an edge on a plain
// line if edge: a loop's contact moves, a plain line's pin is driven as
// its wires allow (a bridged contact stays at rest, a cut one reads open).
func (r *Room) setLevel(in controller.Input, i int, l controller.Level, edge bool) {
	r.wireMu.Lock()
	defer r.wireMu.Unlock()
	r.contact[lineKey{in, i}] = l
	if lp := r.loops[in][i]; lp != nil {
		lp.setActive(l == controller.LevelActive)
		return
	}
	r.inputs[in][i].Drive(r.raw(in, i, r.plainLevel(in, i, l)), edge)
}

// plainLevel is what a plain contact's pin says given its wires; wireMu
// is held.
func (r *Room) plainLevel(in controller.Input, i int, l controller.Level) controller.Level {
	switch r.wires[lineKey{in, i}] {
	case contract.WireBridged:
		return controller.LevelInactive // the contact can no longer open: at rest for ever
	case contract.WireCut:
		return controller.LevelActive // a normally-closed loop cut reads open
	}
	return l
}

// setFailLine makes reads of line i of input in fail, or work again.
func (r *Room) setFailLine(in controller.Input, i int, fail bool) {
	if lp := r.loops[in][i]; lp != nil {
		lp.SetFail(fail)
		return
	}
	r.inputs[in][i].SetFail(fail)
}

type lineKey struct {
	in controller.Input
	i  int
}

// SetWire does w to the wires of input in (every line of it), or of one
// panic point when point is not empty.
func (r *Room) SetWire(in controller.Input, point string, w contract.SimWire) error {
	ps, err := r.pins(in)
	if err != nil {
		return err
	}
	idx := make([]int, 0, len(ps))
	if point != "" {
		i, err := r.point(point)
		if err != nil {
			return err
		}
		idx = append(idx, i)
	} else {
		for i := range ps {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		r.wireMu.Lock()
		r.wires[lineKey{in, i}] = w
		l, ok := r.contact[lineKey{in, i}]
		if !ok {
			l = controller.LevelInactive
		}
		if lp := r.loops[in][i]; lp != nil {
			lp.SetWire(w)
		} else {
			r.inputs[in][i].Drive(r.raw(in, i, r.plainLevel(in, i, l)), true)
		}
		r.wireMu.Unlock()
	}
	return nil
}

// Wire is what was done to the wires of line i of input in.
func (r *Room) Wire(in controller.Input, i int) contract.SimWire {
	r.wireMu.Lock()
	defer r.wireMu.Unlock()
	if w, ok := r.wires[lineKey{in, i}]; ok {
		return w
	}
	return contract.WireSound
}

// LoopOhms is what loop i of input in measures now, and false for a plain
// line.
func (r *Room) LoopOhms(in controller.Input, i int) (float64, bool) {
	if i < 0 || i >= len(r.loops[in]) || r.loops[in][i] == nil {
		return 0, false
	}
	return r.loops[in][i].Ohms(), true
}

// Loop returns the simulated loop of line i of input in, or an error for a
// plain line.
func (r *Room) Loop(in controller.Input, i int) (*Loop, error) {
	if i < 0 || i >= len(r.loops[in]) || r.loops[in][i] == nil {
		return nil, fmt.Errorf("simulated room: input %s line %d is no supervised loop", in, i)
	}
	return r.loops[in][i], nil
}
