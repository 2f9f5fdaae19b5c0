package commission

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/wallclock"
)

// Defaults of WalkOptions.
const (
	DefaultWait   = time.Minute
	DefaultSettle = time.Second
)

// Lines is what the walk-through needs of a room's device backend. Both
// backends (device/gpio, sim) have it through device.Core.
type Lines interface {
	// Spec is the wiring the backend was opened with.
	Spec() device.Spec
	// RunLines sends every input line's level, then every change of one
	// line's settled level, until ctx ends (device.Core.RunLines).
	RunLines(ctx context.Context, out chan<- device.LineReading) error
	// Set drives one output.
	Set(o controller.Output, mode controller.Mode, pulses uint8) error
	// Safe turns every output off; it must work even after a failed Set.
	Safe() error
}

// StepKind says what a Step asks of the installer.
type StepKind uint8

// The kinds of step.
const (
	StepAct     StepKind = iota + 1 // act on an input (open the door, press the point); the walk-through watches the line
	StepRest                        // put the input back to rest (close the door, release the point)
	StepConfirm                     // say whether an output shows (or sounds) what it is driven to
)

// Step is one thing the walk-through asks of the installer: an action on
// one input line (Input, with Index its place among the role's lines,
// Point for a panic point, Sensor for a presence sensor) or a question
// about one output (Output, driven at Mode). Text says it in words.
type Step struct {
	Kind   StepKind
	Input  controller.Input
	Index  int
	Point  string
	Sensor int
	Output controller.Output
	Mode   controller.Mode
	Line   string // the line's name in the config: "GPIO17", "gpiochip0 line 27"
	Text   string
	// Loop: the line is an end-of-line supervised loop, whose baseline
	// (ohms at rest and acted on) the walk-through records.
	Loop bool
}

// Installer is the person at the room, or whatever plays them.
type Installer interface {
	// Show tells the installer one line of what the walk-through saw.
	Show(text string)
	// Act asks the installer to carry out s (StepAct or StepRest) and
	// returns at once: the walk-through then watches the line.
	Act(s Step)
	// Confirm asks whether the output of s shows what s.Text says, and
	// returns the answer (true: yes, it does). It returns ctx.Err() when
	// ctx ends first; the walk-through counts that as not confirmed when
	// its own wait ran out.
	Confirm(ctx context.Context, s Step) (bool, error)
}

// WalkOptions tune the walk-through.
type WalkOptions struct {
	// Mode is full (every input line and output) or light (the panic
	// points and the sounder, or the alarm light where no sounder is wired).
	Mode controller.TestMode
	// Wait bounds each wait for the installer: for a line to change when
	// asked, for it to come back to rest, for an answer about an output.
	// Zero: DefaultWait.
	Wait time.Duration
	// Settle is how long after a line changed further changes count as
	// bouncing: a clean action changes the settled level once. Zero:
	// DefaultSettle.
	Settle time.Duration
}

// LineReport is one line of the walk-through as the report shows it: the
// result the room records, the line's name in the config, and what was
// seen, in words.
type LineReport struct {
	controller.LineResult
	Line string
	Seen string
	// Baseline, for a supervised loop that passed, is what it measured at
	// rest and acted on; it stays in the room (the report, the state
	// directory), never in the record.
	Baseline *eol.Baseline
}

// Walk walks inst through the room's lines in order: every input line (the
// door, the lock, each presence sensor, each panic point, the staff key)
// is acted on and put back to rest while its settled level is watched; then
// every wired output is driven in turn with its pattern and the installer
// says whether it shows. In light mode only the panic points and the
// sounder are tested. Every output is off when Walk returns, whatever
// happened; it returns ctx's error when ctx ends first (Ctrl-C), and an
// error when the lines cannot be read.
func Walk(ctx context.Context, lines Lines, inst Installer, o WalkOptions) (_ []LineReport, err error) {
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.Mode != controller.TestFull && o.Mode != controller.TestLight {
		return nil, fmt.Errorf("function test: unknown mode %d", o.Mode)
	}
	defer func() {
		if serr := lines.Safe(); serr != nil {
			err = errors.Join(err, fmt.Errorf("turn every output off: %w", serr))
		}
	}()
	if err := lines.Safe(); err != nil {
		return nil, fmt.Errorf("turn every output off before the test: %w", err)
	}
	spec := lines.Spec()
	plan := planOf(spec, o.Mode)
	if len(plan.inputs)+len(plan.outputs) == 0 {
		return nil, fmt.Errorf("function test (%s): nothing to test: no line of the mode is wired", o.Mode)
	}

	rctx, stop := context.WithCancel(ctx)
	readings := make(chan device.LineReading, 64)
	w := &walker{ctx: ctx, inst: inst, o: o, readings: readings, runDone: make(chan struct{}), levels: map[lineKey]device.LineReading{}}
	go func() {
		w.runErr = lines.RunLines(rctx, readings)
		close(w.runDone)
	}()
	defer func() {
		stop()
		<-w.runDone
		if rerr := w.runErr; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
			err = fmt.Errorf("read the input lines: %w", rerr)
		}
	}()

	if err := w.initial(spec); err != nil {
		return nil, err
	}
	var out []LineReport
	for _, s := range plan.inputs {
		r, err := w.input(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	for _, s := range plan.outputs {
		r, err := w.output(lines, s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// plan is what a walk-through tests, in order.
type plan struct {
	inputs  []Step // StepAct steps
	outputs []Step // StepConfirm steps
}

func planOf(spec device.Spec, mode controller.TestMode) plan {
	var p plan
	for _, in := range controller.Inputs {
		if mode == controller.TestLight && in != controller.InputPanic {
			continue
		}
		ls := spec.Inputs[in]
		for i, l := range ls {
			s := Step{Kind: StepAct, Input: in, Index: i, Line: lineOf(l), Loop: l.Loop != nil}
			switch in {
			case controller.InputPanic:
				s.Point = spec.PanicPoint(i)
			case controller.InputPresence:
				s.Sensor = i + 1
			}
			s.Text = actText(s, len(ls))
			p.inputs = append(p.inputs, s)
		}
	}
	outputs := controller.Outputs
	if mode == controller.TestLight {
		outputs = []controller.Output{controller.OutputAlarmSounder}
		if _, ok := spec.Outputs[controller.OutputAlarmSounder]; !ok {
			outputs = []controller.Output{controller.OutputAlarmLight}
		}
	}
	for _, o := range outputs {
		l, ok := spec.Outputs[o]
		if !ok {
			continue
		}
		s := Step{Kind: StepConfirm, Output: o, Mode: outputMode(o), Line: lineOf(l)}
		s.Text = confirmText(o)
		p.outputs = append(p.outputs, s)
	}
	return p
}

// lineOf names a line as the config does; a simulated room's lines may
// have no name.
func lineOf(l device.LineSpec) string {
	if l.Pin == "" && l.Chip == "" && l.Loop == nil {
		return "simulated"
	}
	return l.String()
}

// outputMode is what an output shows during its test: the pattern a guard
// or an occupant will meet.
func outputMode(o controller.Output) controller.Mode {
	switch o {
	case controller.OutputInUse:
		return controller.ModeOn
	case controller.OutputAlarmLight, controller.OutputAlarmSounder:
		return controller.ModePanic
	default:
		return controller.ModeBlink
	}
}

func actText(s Step, of int) string {
	switch s.Input {
	case controller.InputDoor:
		return "open the door now"
	case controller.InputLock:
		return "throw the bolt now"
	case controller.InputPresence:
		if of > 1 {
			return fmt.Sprintf("walk in front of presence sensor %d (the PIR) now", s.Sensor)
		}
		return "walk in front of the PIR now"
	case controller.InputPanic:
		return fmt.Sprintf("press the panic point '%s' now", s.Point)
	case controller.InputStaff:
		return "turn the staff key now"
	}
	return "act on " + s.Input.String() + " now"
}

func restText(s Step) string {
	switch s.Input {
	case controller.InputDoor:
		return "close the door again"
	case controller.InputLock:
		return "draw the bolt back (unlocked)"
	case controller.InputPresence:
		return "step out of its view and keep still until it resets"
	case controller.InputPanic:
		return fmt.Sprintf("release the panic point '%s' (reset it if it latches)", s.Point)
	case controller.InputStaff:
		return "turn the staff key back"
	}
	return "put " + s.Input.String() + " back to rest"
}

func confirmText(o controller.Output) string {
	switch o {
	case controller.OutputInUse:
		return "is the lamp over the door (in use) lit steadily?"
	case controller.OutputWarning:
		return "is the warning lamp inside the room blinking (and its chime pulsing)?"
	case controller.OutputAlarmLight:
		return "does the alarm light at the door flash the panic pattern?"
	case controller.OutputAlarmSounder:
		return "does the sounder at the door sound the panic pattern?"
	case controller.OutputReassurance:
		return "is the reassurance lamp inside the room blinking?"
	}
	return "does " + o.String() + " show?"
}

// lineKey names one input line.
type lineKey struct {
	in  controller.Input
	idx int
}

// walker holds the state of one walk-through: the lines' latest readings.
type walker struct {
	ctx      context.Context
	inst     Installer
	o        WalkOptions
	readings <-chan device.LineReading
	// runDone is closed when RunLines returned, with runErr.
	runDone chan struct{}
	runErr  error
	levels  map[lineKey]device.LineReading
}

// initial waits for the first reading of every wired input line.
func (w *walker) initial(spec device.Spec) error {
	want := 0
	for _, ls := range spec.Inputs {
		want += len(ls)
	}
	t := time.NewTimer(w.o.Wait)
	defer t.Stop()
	for len(w.levels) < want {
		select {
		case <-w.ctx.Done():
			return w.ctx.Err()
		case <-w.runDone:
			return fmt.Errorf("read the input lines: %w", w.runErr)
		case <-t.C:
			return fmt.Errorf("read the input lines: only %d of %d lines read within %s", len(w.levels), want, w.o.Wait)
		case r := <-w.readings:
			w.levels[lineKey{r.Input, r.Index}] = r
		}
	}
	return nil
}

// next waits up to d for the next reading of any line and records it; ok
// is false when d passed first.
func (w *walker) next(d time.Duration) (r device.LineReading, ok bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ctx.Done():
		return r, false, w.ctx.Err()
	case <-w.runDone:
		return r, false, fmt.Errorf("read the input lines: %w", w.runErr)
	case <-t.C:
		return r, false, nil
	case r = <-w.readings:
		w.levels[lineKey{r.Input, r.Index}] = r
		return r, true, nil
	}
}

// track follows line k for up to d: every reading of k is a change, kept
// in seen; done, if not nil, ends the wait early when it holds for a
// reading of k. Readings of other lines are noted in others. It returns
// k's latest reading and whether done held.
func (w *walker) track(k lineKey, d time.Duration, done func(device.LineReading) bool, seen *[]device.LineReading, others map[lineKey]bool) (device.LineReading, bool, error) {
	deadline := wallclock.Now().Add(d)
	for {
		left := wallclock.Until(deadline)
		if left <= 0 {
			return w.levels[k], false, nil
		}
		r, ok, err := w.next(left)
		if err != nil || !ok {
			return w.levels[k], false, err
		}
		if rk := (lineKey{r.Input, r.Index}); rk != k {
			others[rk] = true
			continue
		}
		*seen = append(*seen, r)
		if done != nil && done(r) {
			return r, true, nil
		}
	}
}

// input tests one input line. The installer acts on it; its settled level
// must leave the rest level within Wait. After Settle (or as soon as it
// is back) the installer puts it back to rest; it must get there within
// Wait and stay for Settle. One clean action is two changes; three changes
// within Settle of each other are bouncing (the debounce did not hide
// them), as is a line that flaps.
func (w *walker) input(s Step) (LineReport, error) {
	k := lineKey{s.Input, s.Index}
	res := LineReport{LineResult: controller.LineResult{Input: s.Input, Point: s.Point, Sensor: s.Sensor}, Line: s.Line}
	name := lineName(s)
	words := func(l controller.Level) string { return s.Input.Describe(l) }
	fail := func(f controller.LineFault, format string, args ...any) (LineReport, error) {
		res.Fault = f
		res.Seen = fmt.Sprintf(format, args...)
		w.inst.Show(fmt.Sprintf("%s: FAILED (%s): %s", name, f, res.Seen))
		return res, nil
	}
	rest := w.levels[k].Level
	if rest == controller.LevelUnknown {
		return fail(controller.FaultUnknown, "reads unknown before it was touched (%s): check the wire and the line's name in the config", w.levels[k].Detail)
	}
	others := map[lineKey]bool{}
	var seen []device.LineReading
	back := s
	back.Kind, back.Text = StepRest, restText(s)

	w.inst.Act(s)
	first, changed, err := w.track(k, w.o.Wait, func(device.LineReading) bool { return true }, &seen, others)
	if err != nil {
		return res, err
	}
	if !changed {
		w.inst.Act(back)
		if rest == controller.LevelActive {
			return fail(controller.FaultNeverChanged, "reads %s at rest and never changed in %s: a cut wire of a normally-closed contact, or active_low is wrong and the contact does not switch%s",
				words(controller.LevelActive), w.o.Wait, w.hint(others))
		}
		return fail(controller.FaultNeverChanged, "still reads %s after %s: a wrong line in the config, a loose wire, or a wrong pull%s",
			words(controller.LevelInactive), w.o.Wait, w.hint(others))
	}
	if first.Level != controller.LevelUnknown && rest == controller.LevelInactive {
		w.inst.Show(fmt.Sprintf("%s: seen %s", name, words(first.Level)))
	}
	// Hold: let a bounce show itself, unless the line is back at once.
	last, _, err := w.track(k, w.o.Settle, func(r device.LineReading) bool { return r.Level == rest }, &seen, others)
	if err != nil {
		return res, err
	}
	w.inst.Act(back)
	returned := last.Level == rest
	if !returned && last.Level != controller.LevelUnknown {
		last, returned, err = w.track(k, w.o.Wait, func(r device.LineReading) bool { return r.Level == rest || r.Level == controller.LevelUnknown }, &seen, others)
		if err != nil {
			return res, err
		}
		returned = returned && last.Level == rest
	}
	if returned {
		// Quiet: it must stay at rest.
		if last, _, err = w.track(k, w.o.Settle, nil, &seen, others); err != nil {
			return res, err
		}
	}
	for _, r := range seen {
		if r.Level == controller.LevelUnknown && r.Detail == device.DetailFlapping {
			return fail(controller.FaultBouncing, "flapped (more changes than the flap bound allows): a loose contact or a chattering relay")
		}
	}
	for _, r := range seen {
		if r.Level == controller.LevelUnknown {
			return fail(controller.FaultUnknown, "became unreadable when acted on (%s)", r.Detail)
		}
	}
	for i := 0; i+2 < len(seen); i++ {
		if seen[i+2].At.Sub(seen[i].At) < w.o.Settle {
			return fail(controller.FaultBouncing, "changed %d times for one action, three of them within %s, which the debounce did not hide: a loose contact, a misaligned magnet or a chattering relay",
				len(seen), w.o.Settle)
		}
	}
	switch {
	case rest == controller.LevelActive:
		return fail(controller.FaultInverted, "reads %s at rest and %s when acted on: active_low is the wrong way round for how it is wired",
			words(controller.LevelActive), words(controller.LevelInactive))
	case last.Level != rest:
		return fail(controller.FaultNeverChanged, "did not come back to rest within %s: still reads %s (a contact that sticks, or a wire that shorts when moved)",
			w.o.Wait, words(last.Level))
	}
	res.Passed = true
	res.Seen = fmt.Sprintf("%s when acted on, %s at rest", words(controller.LevelActive), words(controller.LevelInactive))
	if s.Loop {
		b := eol.Baseline{Rest: last.Ohms, Acted: first.Ohms}
		res.Baseline = &b
		res.Seen += fmt.Sprintf("; baseline %s at rest, %s acted on", eol.Ohms(b.Rest), eol.Ohms(b.Acted))
	}
	w.inst.Show(fmt.Sprintf("%s: passed", name))
	return res, nil
}

// hint names the other lines that changed while one was tested: the
// likely sign of lines swapped in the config or in the wiring.
func (w *walker) hint(others map[lineKey]bool) string {
	if len(others) == 0 {
		return ""
	}
	keys := make([]lineKey, 0, len(others))
	for k := range others {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b lineKey) int {
		return cmp.Or(cmp.Compare(a.in, b.in), cmp.Compare(a.idx, b.idx))
	})
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		s := Step{Input: k.in, Index: k.idx, Point: w.levels[k].Point}
		if k.in == controller.InputPresence {
			s.Sensor = k.idx + 1
		}
		names = append(names, lineName(s))
	}
	return "; meanwhile " + strings.Join(names, ", ") + " changed: are lines swapped?"
}

// output tests one output: on with its pattern until the installer
// answers (or the wait runs out), then off.
func (w *walker) output(lines Lines, s Step) (LineReport, error) {
	res := LineReport{LineResult: controller.LineResult{Output: s.Output}, Line: s.Line}
	name := s.Output.String()
	if err := lines.Set(s.Output, s.Mode, 0); err != nil {
		res.Fault = controller.FaultNotConfirmed
		res.Seen = fmt.Sprintf("could not be driven: %v", err)
		w.inst.Show(fmt.Sprintf("%s: FAILED (%s): %s", name, res.Fault, res.Seen))
		return res, nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.o.Wait)
	yes, err := w.inst.Confirm(ctx, s)
	cancel()
	if oerr := lines.Set(s.Output, controller.ModeOff, 0); oerr != nil && err == nil {
		err = fmt.Errorf("turn %s off: %w", s.Output, oerr)
	}
	switch {
	case w.ctx.Err() != nil:
		return res, w.ctx.Err()
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		return res, err
	case err != nil:
		res.Fault, res.Seen = controller.FaultNotConfirmed, fmt.Sprintf("no answer within %s", w.o.Wait)
	case !yes:
		res.Fault, res.Seen = controller.FaultNotConfirmed, "the installer did not see (or hear) it: check the wire, the relay and active_low"
	default:
		res.Passed, res.Seen = true, "confirmed by the installer"
		w.inst.Show(fmt.Sprintf("%s: passed", name))
		return res, nil
	}
	w.inst.Show(fmt.Sprintf("%s: FAILED (%s): %s", name, res.Fault, res.Seen))
	return res, nil
}

// lineName names an input line for the installer: "door", "panic point
// 'toilet'", "presence sensor 2".
func lineName(s Step) string {
	switch {
	case s.Output != 0:
		return s.Output.String()
	case s.Input == controller.InputPanic:
		return fmt.Sprintf("panic point '%s'", s.Point)
	case s.Input == controller.InputPresence:
		return fmt.Sprintf("presence sensor %d", s.Sensor)
	}
	return s.Input.String()
}
