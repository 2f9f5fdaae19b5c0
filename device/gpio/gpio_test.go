package gpio

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/devicetest"
)

// fakePin is a periph fake pin whose reads can be made to fail, and whose
// In can be made to fail like a busy line.
type fakePin struct {
	*gpiotest.Pin
	fail   atomic.Bool
	inErr  error
	closed atomic.Bool
}

func newFakePin(name string, n int) *fakePin {
	return &fakePin{Pin: &gpiotest.Pin{N: name, Num: n, EdgesChan: make(chan pgpio.Level, 64)}}
}

func (p *fakePin) ReadChecked() (pgpio.Level, error) {
	if p.fail.Load() {
		return pgpio.Low, errors.New("injected read fault")
	}
	return p.Read(), nil
}

func (p *fakePin) In(pull pgpio.Pull, edge pgpio.Edge) error {
	if p.inErr != nil {
		return p.inErr
	}
	return p.Pin.In(pull, edge)
}

func (p *fakePin) Close() { p.closed.Store(true) }

func fakeChip(name, label string, n int, named func(i int) string) (Chip, []*fakePin) {
	c := Chip{Name: name, Label: label}
	var pins []*fakePin
	for i := range n {
		lname := ""
		if named != nil {
			lname = named(i)
		}
		p := newFakePin(lname, i)
		pins = append(pins, p)
		c.Lines = append(c.Lines, Line{Name: lname, Offset: i, Pin: p})
	}
	return c, pins
}

// relayPin is a fake output line with a relay's auxiliary contact wired to
// a feedback line: the contact follows the output unless stuck.
type relayPin struct {
	*fakePin
	fb                        *fakePin
	outActiveLow, fbActiveLow bool
	mu                        sync.Mutex
	stuck                     bool
}

func (r *relayPin) Out(l pgpio.Level) error {
	if err := r.fakePin.Out(l); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stuck {
		r.follow()
	}
	return nil
}

// follow copies the output's level to the contact, with an edge; mu is held.
func (r *relayPin) follow() {
	on := bool(r.fakePin.Read()) != r.outActiveLow
	l := pgpio.Level(on != r.fbActiveLow)
	r.fb.Lock()
	changed := r.fb.L != l
	r.fb.L = l
	r.fb.Unlock()
	if changed {
		select {
		case r.fb.EdgesChan <- l:
		default:
		}
	}
}

type harness struct {
	b      *Backend
	pins   []*fakePin
	spec   device.Spec
	relays map[controller.Output]*relayPin
}

func (h *harness) StickFeedback(o controller.Output, stuck bool) {
	r := h.relays[o]
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stuck = stuck
	if !stuck {
		r.follow()
	}
}

func (h *harness) FailFeedbackReads(o controller.Output, fail bool) {
	h.pins[h.spec.Feedback[o].Line].fail.Store(fail)
}

func (h *harness) Backend() device.Backend { return h.b }

func (h *harness) pin(in controller.Input, i int) *fakePin {
	return h.pins[h.spec.Inputs[in][i].Line]
}

func (h *harness) SetRaw(in controller.Input, i int, high, edge bool) {
	p := h.pin(in, i)
	p.Lock()
	p.L = pgpio.Level(high)
	p.Unlock()
	if edge {
		select {
		case p.EdgesChan <- pgpio.Level(high):
		default: // the queue is full: the edge is lost, as in the kernel
		}
	}
}

func (h *harness) FailReads(in controller.Input, i int, fail bool) { h.pin(in, i).fail.Store(fail) }

func (h *harness) OutputHigh(o controller.Output) bool {
	return bool(h.pins[h.spec.Outputs[o].Line].Read())
}

func TestBehaviour(t *testing.T) {
	devicetest.Run(t, func(t *testing.T, spec device.Spec) devicetest.Harness {
		chip, pins := fakeChip("gpiochip3", "roomtest", 16, nil)
		other, _ := fakeChip("gpiochip0", "pinctrl-bcm2711", 4, nil)
		h := &harness{pins: pins, spec: spec, relays: map[controller.Output]*relayPin{}}
		for o, fs := range spec.Feedback {
			out := spec.Outputs[o]
			r := &relayPin{fakePin: pins[out.Line], fb: pins[fs.Line], outActiveLow: out.ActiveLow, fbActiveLow: fs.ActiveLow}
			chip.Lines[out.Line].Pin = r
			h.relays[o] = r
		}
		b, err := OpenChips(spec, []Chip{other, chip}, nil)
		require.NoError(t, err)
		h.b = b
		return h
	})
}

func TestResolve(t *testing.T) {
	pi, _ := fakeChip("gpiochip0", "pinctrl-bcm2711", 58, func(i int) string { return "GPIO" + itoa(i) })
	sim, _ := fakeChip("gpiochip1", "gpio-sim.0-node0", 8, func(i int) string {
		if i == 2 {
			return "GPIO17" // the same name as on the Pi chip
		}
		return ""
	})
	chips := []Chip{pi, sim}

	l, chip, err := Resolve(chips[:1], device.LineSpec{Pin: "GPIO17"})
	require.NoError(t, err)
	assert.Equal(t, 17, l.Offset)
	assert.Equal(t, "gpiochip0", chip)

	l, chip, err = Resolve(chips, device.LineSpec{Chip: "gpio-sim.0-node0", Line: 5})
	require.NoError(t, err)
	assert.Equal(t, 5, l.Offset)
	assert.Equal(t, "gpiochip1", chip)

	l, _, err = Resolve(chips, device.LineSpec{Chip: "gpiochip1", Pin: "GPIO17"})
	require.NoError(t, err, "pin on a named chip")
	assert.Equal(t, 2, l.Offset)

	_, _, err = Resolve(chips, device.LineSpec{Pin: "GPIO17"})
	require.ErrorContains(t, err, "several chips")
	_, _, err = Resolve(chips, device.LineSpec{Pin: "GPIO99"})
	require.ErrorContains(t, err, `pin "GPIO99" not found`)
	require.ErrorContains(t, err, "pinctrl-bcm2711")
	_, _, err = Resolve(chips, device.LineSpec{Chip: "nope", Line: 1})
	require.ErrorContains(t, err, `chip "nope" not found`)
	_, _, err = Resolve(chips, device.LineSpec{Chip: "gpiochip1", Line: 8})
	require.ErrorContains(t, err, "no line 8")
	_, _, err = Resolve(chips, device.LineSpec{Chip: "gpiochip1", Line: -1})
	require.ErrorContains(t, err, "no line -1")
	_, _, err = Resolve(chips, device.LineSpec{})
	require.ErrorContains(t, err, "neither a pin nor a chip")
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestOpenErrorsNameRoleAndLine(t *testing.T) {
	chip, pins := fakeChip("gpiochip0", "roomtest", 4, func(i int) string { return "GPIO" + itoa(20+i) })
	spec := device.Spec{
		Inputs: map[controller.Input][]device.LineSpec{
			controller.InputDoor:  {{Pin: "GPIO20", Pull: device.PullUp}},
			controller.InputPanic: {{Pin: "GPIO27"}},
		},
		Outputs: map[controller.Output]device.LineSpec{
			controller.OutputAlarmLight: {Pin: "GPIO20"},
		},
	}
	_, err := OpenChips(spec, []Chip{chip}, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, `input panic: pin "GPIO27" not found`)
	assert.ErrorContains(t, err, "output alarm_light: line GPIO20 (gpiochip0 offset 0) is already wired to input door")

	// A busy line: the kernel refuses the request.
	chip.Lines[1].Consumer = "otherd@42"
	pins[1].inErr = errors.New("line_request ioctl: device or resource busy")
	spec = device.Spec{
		Inputs: map[controller.Input][]device.LineSpec{
			controller.InputDoor: {{Pin: "GPIO20"}},
			controller.InputLock: {{Chip: "roomtest", Line: 1}},
		},
		Outputs: map[controller.Output]device.LineSpec{controller.OutputAlarmLight: {Pin: "GPIO23"}},
	}
	_, err = OpenChips(spec, []Chip{chip}, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "input lock line roomtest line 1")
	assert.ErrorContains(t, err, "device or resource busy")
	assert.ErrorContains(t, err, `held by "otherd@42"`)
	assert.True(t, pins[0].closed.Load(), "lines already requested are released on a failed start")

	// Several presence sensors are named by number.
	spec = device.Spec{Inputs: map[controller.Input][]device.LineSpec{
		controller.InputPresence: {{Pin: "GPIO20"}, {Pin: "GPIO99"}},
	}}
	_, err = OpenChips(spec, []Chip{chip}, nil)
	assert.ErrorContains(t, err, "input presence sensor 2")

	// An invalid spec.
	spec = device.Spec{Inputs: map[controller.Input][]device.LineSpec{
		controller.InputDoor: {{Pin: "GPIO20"}, {Pin: "GPIO21"}},
	}}
	_, err = OpenChips(spec, []Chip{chip}, nil)
	assert.ErrorContains(t, err, "only presence and panic may have several")

	// Panic points are named by point, feedback lines by their output.
	spec = device.Spec{
		Inputs:   map[controller.Input][]device.LineSpec{controller.InputPanic: {{Pin: "GPIO20", Name: "bed"}, {Pin: "GPIO98", Name: "toilet"}}},
		Outputs:  map[controller.Output]device.LineSpec{controller.OutputAlarmSounder: {Pin: "GPIO21"}},
		Feedback: map[controller.Output]device.LineSpec{controller.OutputAlarmSounder: {Pin: "GPIO20"}},
	}
	_, err = OpenChips(spec, []Chip{chip}, nil)
	assert.ErrorContains(t, err, `input panic point toilet: pin "GPIO98" not found`)
	assert.ErrorContains(t, err, "feedback of output alarm_sounder: line GPIO20 (gpiochip0 offset 0) is already wired to input panic point bed")
}

func TestCloseReleasesLinesAfterSafe(t *testing.T) {
	chip, pins := fakeChip("gpiochip0", "roomtest", 4, nil)
	spec := device.Spec{
		Inputs:  map[controller.Input][]device.LineSpec{controller.InputDoor: {{Chip: "roomtest", Line: 0}}},
		Outputs: map[controller.Output]device.LineSpec{controller.OutputAlarmLight: {Chip: "roomtest", Line: 1, ActiveLow: true}},
	}
	b, err := OpenChips(spec, []Chip{chip}, nil)
	require.NoError(t, err)
	assert.Equal(t, pgpio.High, pins[1].Read(), "active-low output inactive (high) at start")
	require.NoError(t, b.Set(controller.OutputAlarmLight, controller.ModeOn, 0))
	assert.Equal(t, pgpio.Low, pins[1].Read())
	require.NoError(t, b.Close())
	assert.Equal(t, pgpio.High, pins[1].Read(), "inactive after Close")
	assert.True(t, pins[0].closed.Load())
	assert.True(t, pins[1].closed.Load())
	assert.False(t, pins[2].closed.Load(), "unused lines untouched")
}
