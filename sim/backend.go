// Package sim is the simulator backend: a whole room in memory. It runs the
// same pipeline as the GPIO backend (package device's Core) over simulated
// pins, so debounce, flap supervision, re-reads, presence combination and
// output patterns behave exactly as on the hardware. Tests and the demo
// drive it through Room's methods or the JSON control surface (contract.DecodeSimControl,
// Apply).
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

// DefaultSpec is a fully wired room for the simulator: every input role
// (one presence sensor, one panic point) and every output, with the pulls
// and active-low settings of the recommended wiring (docs/wiring.md) and a
// 30 ms debounce. No output is supervised.
func DefaultSpec() device.Spec {
	in := func(pull device.Pull, activeLow bool) []device.LineSpec {
		return []device.LineSpec{{Pull: pull, ActiveLow: activeLow, Debounce: 30 * time.Millisecond}}
	}
	return device.Spec{
		Inputs: map[controller.Input][]device.LineSpec{
			controller.InputDoor:     in(device.PullUp, false),
			controller.InputLock:     in(device.PullUp, false),
			controller.InputPresence: in(device.PullUp, false),
			controller.InputPanic:    in(device.PullUp, false),
			controller.InputStaff:    in(device.PullUp, true), // normally open
		},
		Outputs: map[controller.Output]device.LineSpec{
			controller.OutputInUse:        {},
			controller.OutputWarning:      {},
			controller.OutputAlarmLight:   {},
			controller.OutputAlarmSounder: {},
			controller.OutputReassurance:  {},
		},
	}
}

// RecommendedWiring returns spec with each input line's ActiveLow as the
// recommended wiring of docs/wiring.md gives it: the door contact, the bolt
// sensor, the presence relays and the panic points are normally-closed
// contacts to GND on a pulled-up pin (active high: a cut wire reads
// active), the staff key is normally open (active low). It is the
// simulated room's hardware for NewWired: a config that says otherwise
// reads those sensors inverted, as it would on a room wired this way.
func RecommendedWiring(spec device.Spec) device.Spec {
	wired := spec
	wired.Inputs = make(map[controller.Input][]device.LineSpec, len(spec.Inputs))
	for in, lines := range spec.Inputs {
		ls := slices.Clone(lines)
		for i := range ls {
			ls[i].ActiveLow = in == controller.InputStaff
		}
		wired.Inputs[in] = ls
	}
	return wired
}

// OutputsChanged is sent by Watch when an output's commanded mode or pulses
// change. Outputs is a full snapshot, so a watcher that lags only misses
// intermediate snapshots, never the latest.
type OutputsChanged struct {
	Outputs map[controller.Output]controller.Mode
	Output  controller.Output  // the output that changed last
	State   device.OutputState // its state
}

// Room is a simulated room. It implements device.Backend; its other methods
// change the simulated sensors and inspect the outputs, and are safe for
// concurrent use.
type Room struct {
	*device.Core
	spec    device.Spec
	wiring  device.Spec // the simulated hardware: the raw level of each input
	logger  *slog.Logger
	inputs  map[controller.Input][]*Pin // nil for a supervised loop
	loops   map[controller.Input][]*Loop
	outputs map[controller.Output]*Pin
	// power are the simulated status lines of a UPS; healthy the
	// watchdog's "alive" line.
	power   map[device.Power]*Pin
	healthy *Pin
	// wires and contact are what was done to each line's wires and the
	// level of its contact (setLevel).
	wireMu  sync.Mutex
	wires   map[lineKey]contract.SimWire
	contact map[lineKey]controller.Level
	// feedback are the simulated relay contacts of supervised outputs.
	feedback map[controller.Output]*relay

	bg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	watchMu sync.Mutex
	watches []chan OutputsChanged
	modesMu sync.Mutex
	modes   map[controller.Output]controller.Mode // as last reported by the core
}

var _ device.Backend = (*Room)(nil)

// New builds a simulated room wired as spec (the line names, chips and
// offsets are ignored). Every input starts inactive (door closed, unlocked,
// nobody, buttons released) and every output off. A supervised output's
// feedback line is a simulated relay contact that follows the output until
// StickFeedback.
func New(spec device.Spec, logger *slog.Logger) (*Room, error) {
	return NewWired(spec, spec, logger)
}

// NewWired is New for a room whose sensors are wired as wiring says (which
// raw level each input line gives when active: wiring's ActiveLow), while
// roomd reads them as spec says. Where the two differ, roomd reads the
// sensor inverted, as it would read real hardware wired against its
// config. wiring must have the lines of spec, role by role; only the
// inputs' ActiveLow is taken from it (see RecommendedWiring).
func NewWired(spec, wiring device.Spec, logger *slog.Logger) (*Room, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for in, lines := range spec.Inputs {
		if len(wiring.Inputs[in]) != len(lines) {
			return nil, fmt.Errorf("simulated room: input %s: %d lines wired, %d configured", in, len(wiring.Inputs[in]), len(lines))
		}
	}
	r := &Room{spec: spec, wiring: wiring, logger: logger, inputs: map[controller.Input][]*Pin{}, outputs: map[controller.Output]*Pin{},
		loops: map[controller.Input][]*Loop{}, feedback: map[controller.Output]*relay{}, power: map[device.Power]*Pin{},
		wires: map[lineKey]contract.SimWire{}, contact: map[lineKey]controller.Level{}}
	lines := device.Lines{Inputs: map[controller.Input][]device.InputLine{}, Outputs: map[controller.Output]device.OutputLine{},
		Feedback: map[controller.Output]device.InputLine{}, Loops: map[controller.Input][]device.AnalogLine{}, Power: map[device.Power]device.InputLine{}}
	for in, specs := range spec.Inputs {
		for i, ls := range specs {
			if ls.Loop != nil {
				lp := NewLoop(*ls.Loop)
				r.inputs[in] = append(r.inputs[in], nil)
				r.loops[in] = append(r.loops[in], lp)
				lines.Inputs[in] = append(lines.Inputs[in], nil)
				lines.Loops[in] = append(lines.Loops[in], lp)
				continue
			}
			p := NewPin(gpio.Level(wiring.Inputs[in][i].ActiveLow)) // inactive, as wired
			r.inputs[in] = append(r.inputs[in], p)
			r.loops[in] = append(r.loops[in], nil)
			lines.Inputs[in] = append(lines.Inputs[in], p)
			lines.Loops[in] = append(lines.Loops[in], nil)
		}
	}
	for p, ls := range spec.Power {
		pin := NewPin(gpio.Level(ls.ActiveLow)) // no trouble
		r.power[p] = pin
		lines.Power[p] = pin
	}
	if spec.Healthy != nil {
		r.healthy = NewPin(gpio.Level(spec.Healthy.ActiveLow))
		lines.Healthy = r.healthy
	}
	for o, ls := range spec.Outputs {
		p := NewPin(gpio.Level(ls.ActiveLow)) // off
		r.outputs[o] = p
		lines.Outputs[o] = p
		if fs, ok := spec.Feedback[o]; ok {
			rl := &relay{out: p, outActiveLow: ls.ActiveLow, fbActiveLow: fs.ActiveLow, contact: NewPin(gpio.Level(fs.ActiveLow))}
			r.feedback[o] = rl
			lines.Outputs[o] = rl
			lines.Feedback[o] = rl.contact
		}
	}
	core, err := device.NewCore(spec, lines, logger)
	if err != nil {
		return nil, fmt.Errorf("simulated room: %w", err)
	}
	r.Core = core
	r.ctx, r.cancel = context.WithCancel(context.Background())
	core.SetObserver(r.notify)
	return r, nil
}

// Close stops running bounces, puts the outputs in their safe state and ends
// every Watch channel.
func (r *Room) Close() error {
	r.cancel()
	r.bg.Wait()
	err := r.Core.Close()
	r.watchMu.Lock()
	for _, w := range r.watches {
		close(w)
	}
	r.watches = nil
	r.watchMu.Unlock()
	return err
}

// Watch returns a channel that receives the outputs after each change of a
// commanded mode or pulses. It holds the latest snapshot only (capacity 1,
// older snapshots are replaced). It is closed by Close.
func (r *Room) Watch() <-chan OutputsChanged {
	ch := make(chan OutputsChanged, 1)
	r.watchMu.Lock()
	r.watches = append(r.watches, ch)
	r.watchMu.Unlock()
	return ch
}

// notify runs with the core's output lock held: it must not call the core.
func (r *Room) notify(o controller.Output, st device.OutputState) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if len(r.watches) == 0 {
		return
	}
	ev := OutputsChanged{Outputs: r.snapshot(o, st), Output: o, State: st}
	for _, w := range r.watches {
		select {
		case <-w: // replace an unread older snapshot
		default:
		}
		w <- ev
	}
}

// snapshot builds the mode map from the recorded modes without the core
// (whose lock is held by the caller).
func (r *Room) snapshot(o controller.Output, st device.OutputState) map[controller.Output]controller.Mode {
	r.modesMu.Lock()
	defer r.modesMu.Unlock()
	if r.modes == nil {
		r.modes = map[controller.Output]controller.Mode{}
		for _, out := range controller.Outputs {
			r.modes[out] = controller.ModeOff
		}
	}
	r.modes[o] = st.Mode
	m := make(map[controller.Output]controller.Mode, len(r.modes))
	for k, v := range r.modes {
		m[k] = v
	}
	return m
}

func (r *Room) pins(in controller.Input) ([]*Pin, error) {
	ps, ok := r.inputs[in]
	if !ok {
		return nil, fmt.Errorf("simulated room: input %s is not wired", in)
	}
	return ps, nil
}

// raw is the level line i of input in gives at level l, as it is wired.
func (r *Room) raw(in controller.Input, i int, l controller.Level) gpio.Level {
	return gpio.Level((l == controller.LevelActive) != r.wiring.Inputs[in][i].ActiveLow)
}

// SetInput sets every sensor of input in to the semantic level l (the door
// open, the key turned); the raw pin gets the level the wiring gives it
// (see NewWired), with an edge if it changes. LevelUnknown faults the input (reads fail) instead.
func (r *Room) SetInput(in controller.Input, l controller.Level) error {
	if l == controller.LevelUnknown {
		return r.Fault(in)
	}
	ps, err := r.pins(in)
	if err != nil {
		return err
	}
	for i := range ps {
		r.setLevel(in, i, l, true)
	}
	return nil
}

// SetPoint sets the panic point named name to the semantic level l (as
// SetInput); LevelUnknown faults the point instead.
func (r *Room) SetPoint(name string, l controller.Level) error {
	i, err := r.point(name)
	if err != nil {
		return err
	}
	if l == controller.LevelUnknown {
		r.setFailLine(controller.InputPanic, i, true)
		return nil
	}
	r.setLevel(controller.InputPanic, i, l, true)
	return nil
}

// point returns the index of the panic point named name.
func (r *Room) point(name string) (int, error) {
	ps, err := r.pins(controller.InputPanic)
	if err != nil {
		return 0, err
	}
	var names []string
	for i := range ps {
		if r.spec.PanicPoint(i) == name {
			return i, nil
		}
		names = append(names, r.spec.PanicPoint(i))
	}
	return 0, fmt.Errorf("simulated room: no panic point %q (have %s)", name, strings.Join(names, ", "))
}

// setFaultAt faults or heals input in, or only its panic point when point
// is not empty.
func (r *Room) setFaultAt(in controller.Input, point string, fail bool) error {
	if point == "" {
		return r.setFault(in, fail)
	}
	i, err := r.point(point)
	if err != nil {
		return err
	}
	r.setFailLine(controller.InputPanic, i, fail)
	return nil
}

// SetPresence sets presence sensor i (from 0) on or off.
func (r *Room) SetPresence(i int, on bool) error {
	ps, err := r.pins(controller.InputPresence)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(ps) {
		return fmt.Errorf("simulated room: no presence sensor %d (have %d)", i, len(ps))
	}
	l := controller.LevelInactive
	if on {
		l = controller.LevelActive
	}
	r.setLevel(controller.InputPresence, i, l, true)
	return nil
}

// LoseEdge sets input in to level l without an edge, like an edge the kernel
// lost; only the periodic re-read notices it.
func (r *Room) LoseEdge(in controller.Input, l controller.Level) error {
	ps, err := r.pins(in)
	if err != nil {
		return err
	}
	if l == controller.LevelUnknown {
		return fmt.Errorf("simulated room: lose edge of %s: level must be known", in)
	}
	for i := range ps {
		r.setLevel(in, i, l, false)
	}
	return nil
}

// Fault makes every read of input in fail until Heal.
func (r *Room) Fault(in controller.Input) error { return r.setFault(in, true) }

// Heal makes reads of input in work again.
func (r *Room) Heal(in controller.Input) error { return r.setFault(in, false) }

func (r *Room) setFault(in controller.Input, fail bool) error {
	ps, err := r.pins(in)
	if err != nil {
		return err
	}
	for i := range ps {
		r.setFailLine(in, i, fail)
	}
	return nil
}

// Bounce starts a contact bounce on input in: n raw changes, every apart
// (the first at once), ending at the level final. It returns at once; the
// burst runs in the background until done or Close.
func (r *Room) Bounce(in controller.Input, final controller.Level, n int, every time.Duration) error {
	ps, err := r.pins(in)
	if err != nil {
		return err
	}
	switch {
	case final == controller.LevelUnknown:
		return fmt.Errorf("simulated room: bounce %s: final level must be known", in)
	case n < 1 || n > contract.MaxBounceCount:
		return fmt.Errorf("simulated room: bounce %s: count %d outside 1..%d", in, n, contract.MaxBounceCount)
	case every <= 0 || every > contract.MaxBounceEvery:
		return fmt.Errorf("simulated room: bounce %s: interval %s outside (0, %s]", in, every, contract.MaxBounceEvery)
	}
	other := controller.LevelActive
	if final == controller.LevelActive {
		other = controller.LevelInactive
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for k := range n {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
			}
			l := final
			if (n-1-k)%2 == 1 {
				l = other
			}
			for i := range ps {
				r.setLevel(in, i, l, true)
			}
			t.Reset(every)
		}
	}()
	return nil
}

// relay is a simulated output relay with an auxiliary contact: the
// contact (a feedback input line) follows the output's logical level, or
// holds its level while stuck.
type relay struct {
	out          *Pin
	contact      *Pin
	outActiveLow bool
	fbActiveLow  bool

	mu    sync.Mutex
	stuck bool
}

// Out drives the output and, unless stuck, moves the contact with it.
func (rl *relay) Out(l gpio.Level) error {
	if err := rl.out.Out(l); err != nil {
		return err
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.stuck {
		rl.follow()
	}
	return nil
}

// follow sets the contact to the output's level now; mu is held.
func (rl *relay) follow() {
	on := bool(rl.out.Read()) != rl.outActiveLow
	rl.contact.Drive(gpio.Level(on != rl.fbActiveLow), true)
}

// StickFeedback makes the feedback contact of output o hold its level (a
// stuck or welded relay), or follow the output again, from its level now.
func (r *Room) StickFeedback(o controller.Output, stuck bool) error {
	rl, ok := r.feedback[o]
	if !ok {
		return fmt.Errorf("simulated room: output %s has no feedback line", o)
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.stuck = stuck
	if !stuck {
		rl.follow()
	}
	return nil
}

// FailFeedback makes reads of output o's feedback line fail, or work again.
func (r *Room) FailFeedback(o controller.Output, fail bool) error {
	rl, ok := r.feedback[o]
	if !ok {
		return fmt.Errorf("simulated room: output %s has no feedback line", o)
	}
	rl.contact.SetFail(fail)
	return nil
}

// SetPower sets a power status input: trouble true is mains lost or the
// battery low.
func (r *Room) SetPower(p device.Power, trouble bool) error {
	pin, ok := r.power[p]
	if !ok {
		return fmt.Errorf("simulated room: power input %s is not wired", p)
	}
	pin.Drive(gpio.Level(trouble != r.spec.Power[p].ActiveLow), true)
	return nil
}

// HealthyLevel is the physical level of the healthy output now; false when
// it is not wired.
func (r *Room) HealthyLevel() bool {
	if r.healthy == nil {
		return false
	}
	return bool(r.healthy.Read())
}

// OutputLevel is the physical level of output o's line now (after
// active-low); false for an unwired output. Use it to check blink patterns.
func (r *Room) OutputLevel(o controller.Output) bool {
	p, ok := r.outputs[o]
	if !ok {
		return false
	}
	return bool(p.Read())
}

// Pin is a simulated GPIO line: a level, an edge queue, and an optional read
// fault. It satisfies device.InputLine, device.CheckedReader and
// device.OutputLine.
type Pin struct {
	mu    sync.Mutex
	level gpio.Level
	fail  bool
	pull  gpio.Pull
	edges chan struct{}
	halt  chan struct{}
}

// NewPin returns a pin at level l.
func NewPin(l gpio.Level) *Pin {
	return &Pin{level: l, edges: make(chan struct{}, 64), halt: make(chan struct{}, 1)}
}

// Drive sets the raw level; with edge and a change of level it queues an
// edge event (dropped when 64 are already queued, as a kernel queue
// overflows).
func (p *Pin) Drive(l gpio.Level, edge bool) {
	p.mu.Lock()
	changed := p.level != l
	p.level = l
	p.mu.Unlock()
	if edge && changed {
		select {
		case p.edges <- struct{}{}:
		default:
		}
	}
}

// SetFail makes reads fail (true) or work.
func (p *Pin) SetFail(fail bool) {
	p.mu.Lock()
	p.fail = fail
	p.mu.Unlock()
}

// In records the pull and drops queued edges; it keeps the level, which the
// simulation drives.
func (p *Pin) In(pull gpio.Pull, _ gpio.Edge) error {
	p.mu.Lock()
	p.pull = pull
	p.mu.Unlock()
	for {
		select {
		case <-p.edges:
		default:
			return nil
		}
	}
}

// Read returns the raw level (Low when reads fail).
func (p *Pin) Read() gpio.Level {
	l, _ := p.ReadChecked()
	return l
}

// ErrReadFault is the error of a read of a faulted pin.
var ErrReadFault = errors.New("simulated read fault")

// ReadChecked returns the raw level, or ErrReadFault.
func (p *Pin) ReadChecked() (gpio.Level, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return gpio.Low, ErrReadFault
	}
	return p.level, nil
}

// WaitForEdge waits up to timeout for a queued edge; Halt interrupts it.
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.edges:
		return true
	case <-p.halt:
		return false
	case <-t.C:
		return false
	}
}

// EdgeQueued reports whether an edge waits for the next WaitForEdge
// (device.EdgeQueue).
func (p *Pin) EdgeQueued() bool { return len(p.edges) > 0 }

// Halt interrupts a pending (or the next) WaitForEdge.
func (p *Pin) Halt() error {
	select {
	case p.halt <- struct{}{}:
	default:
	}
	return nil
}

// Out sets the level of an output pin.
func (p *Pin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.level = l
	p.mu.Unlock()
	return nil
}
