// Package devicetest is the behavioural suite every device backend must pass:
// the GPIO backend over periph's fake pins and the simulator over its own
// pins run the same cases, so they cannot drift apart.
//
// Every case runs in a testing/synctest bubble: the pipeline's timers run on
// fake time, and "nothing happens for a while" is a timeout select that costs
// no real time.
package devicetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/wallclock"
)

// Harness is one backend under test plus drivers of its raw lines.
type Harness interface {
	// Backend is the backend built from the spec, not yet running.
	Backend() device.Backend
	// SetRaw sets the raw (physical) level of line i of input in. With edge
	// the change also raises an edge event; without it the change is silent,
	// like an edge the kernel lost.
	SetRaw(in controller.Input, i int, high, edge bool)
	// FailReads makes reads of line i of input in fail, or work again.
	FailReads(in controller.Input, i int, fail bool)
	// OutputHigh is the raw (physical) level of output o's line now.
	OutputHigh(o controller.Output) bool
	// StickFeedback makes the feedback line of output o hold its level
	// (a stuck relay), or follow the output again: a following feedback
	// line copies every change of the output's level at once, with an edge,
	// as the auxiliary contact of a working relay does.
	StickFeedback(o controller.Output, stuck bool)
	// FailFeedbackReads makes reads of output o's feedback line fail, or
	// work again.
	FailFeedbackReads(o controller.Output, fail bool)
}

// Timing of the suite's spec.
const (
	DoorDebounce  = 50 * time.Millisecond
	LockDebounce  = 30 * time.Millisecond
	PanicDebounce = 20 * time.Millisecond
	RereadEvery   = 5 * time.Second
	FlapMax       = 6
	FlapWindow    = 2 * time.Second
	BlinkPeriod   = time.Second
	FeedbackGrace = 100 * time.Millisecond
)

// Panic points of the suite's spec.
const (
	PointBed    = "bed"
	PointToilet = "toilet"
)

// Spec is the wiring the suite uses: door (pull-up, active-high), lock
// (pull-up, active-low), two presence sensors (pull-down, no debounce),
// two panic points "bed" and "toilet" (pull-up, active-low); in_use,
// alarm_light, alarm_sounder and reassurance active-high, warning
// active-low. Chip "roomtest" offsets 0..5 for inputs, 8..12 for outputs,
// so a GPIO harness can resolve them on a fake chip. No output is
// supervised: see FeedbackSpec.
func Spec() device.Spec {
	return device.Spec{
		Inputs: map[controller.Input][]device.LineSpec{
			controller.InputDoor:     {line(0, device.PullUp, false, DoorDebounce)},
			controller.InputLock:     {line(1, device.PullUp, true, LockDebounce)},
			controller.InputPresence: {line(2, device.PullDown, false, 0), line(3, device.PullDown, false, 0)},
			controller.InputPanic:    {named(line(4, device.PullUp, true, PanicDebounce), PointBed), named(line(5, device.PullUp, true, PanicDebounce), PointToilet)},
		},
		Outputs: map[controller.Output]device.LineSpec{
			controller.OutputInUse:        line(8, device.PullNone, false, 0),
			controller.OutputWarning:      line(9, device.PullNone, true, 0),
			controller.OutputAlarmLight:   line(10, device.PullNone, false, 0),
			controller.OutputAlarmSounder: line(11, device.PullNone, false, 0),
			controller.OutputReassurance:  line(12, device.PullNone, false, 0),
		},
		RereadEvery: RereadEvery,
		Flap:        device.Flap{MaxChanges: FlapMax, Window: FlapWindow},
		BlinkPeriod: BlinkPeriod,
	}
}

// FeedbackSpec is Spec with the alarm sounder supervised by a feedback
// line at offset 13 (pull-down, active-high: high while the relay is
// energised) and the alarm light by one at offset 14 (pull-up, active-low).
func FeedbackSpec() device.Spec {
	s := Spec()
	s.Feedback = map[controller.Output]device.LineSpec{
		controller.OutputAlarmSounder: line(13, device.PullDown, false, 0),
		controller.OutputAlarmLight:   line(14, device.PullUp, true, 0),
	}
	s.FeedbackGrace = FeedbackGrace
	return s
}

func line(off int, pull device.Pull, activeLow bool, debounce time.Duration) device.LineSpec {
	return device.LineSpec{Chip: "roomtest", Line: off, Pull: pull, ActiveLow: activeLow, Debounce: debounce}
}

func named(l device.LineSpec, name string) device.LineSpec {
	l.Name = name
	return l
}

// Run runs every case against backends made by newHarness, which is called
// inside each case's synctest bubble.
func Run(t *testing.T, newHarness func(t *testing.T, spec device.Spec) Harness) {
	cases := []struct {
		name string
		f    func(t *testing.T, r *rig)
		spec func() device.Spec
	}{
		{"InitialLevels", initialLevels, nil},
		{"DebounceSettlesFinalLevel", debounceSettles, nil},
		{"ShortBurstSendsNothing", shortBurst, nil},
		{"LostEdgeCorrectedByReread", lostEdge, nil},
		{"ActiveLow", activeLow, nil},
		{"ReadFailureThenRecovery", readFailure, nil},
		{"FlappingThenRecovery", flapping, nil},
		{"PresenceCombination", presence, nil},
		{"BlocksRatherThanDrops", blocks, nil},
		{"OutputsOnOffActiveLow", outputsSteady, nil},
		{"OutputBlink", outputBlink, nil},
		{"OutputPulsesThenHold", outputPulses, nil},
		{"SafeAndClose", safeAndClose, nil},
		{"PanicPointsReadAlone", panicPoints, nil},
		{"AlarmPatterns", alarmPatterns, nil},
		{"FeedbackFollows", feedbackFollows, FeedbackSpec},
		{"FeedbackStuckRelay", feedbackStuck, FeedbackSpec},
		{"FeedbackDropsWhileSteady", feedbackDrops, FeedbackSpec},
		{"FeedbackReadFailure", feedbackReadFailure, FeedbackSpec},
		{"LinesReadAlone", linesAlone, nil},
		{"LinesExcludeRun", linesExcludeRun, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := Spec()
				if c.spec != nil {
					spec = c.spec()
				}
				h := newHarness(t, spec)
				r := &rig{t: t, h: h, b: h.Backend()}
				t.Cleanup(func() { _ = r.b.Close() })
				c.f(t, r)
				r.stop()
			})
		})
	}
}

type rig struct {
	t      *testing.T
	h      Harness
	b      device.Backend
	out    chan device.Reading
	cancel context.CancelFunc
	done   chan error
}

// idle puts every input in its inactive raw level: door closed (low), lock
// unlocked (high, active-low), nobody (low), panic points released (high).
func (r *rig) idle() {
	r.h.SetRaw(controller.InputDoor, 0, false, false)
	r.h.SetRaw(controller.InputLock, 0, true, false)
	r.h.SetRaw(controller.InputPresence, 0, false, false)
	r.h.SetRaw(controller.InputPresence, 1, false, false)
	r.h.SetRaw(controller.InputPanic, 0, true, false)
	r.h.SetRaw(controller.InputPanic, 1, true, false)
}

// initialReadings is how many readings Run sends at start with Spec: door,
// lock, presence (combined), and one per panic point.
const initialReadings = 5

// start runs the backend's inputs with an out channel of capacity buf.
func (r *rig) start(buf int) {
	r.out = make(chan device.Reading, buf)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- r.b.Run(ctx, r.out) }()
}

// startIdle sets idle levels, starts Run and consumes the initial readings.
func (r *rig) startIdle() {
	r.idle()
	r.start(16)
	for range initialReadings {
		rd := r.next(time.Second)
		require.Equal(r.t, controller.LevelInactive, rd.Level, "initial %s", rd.Input)
	}
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		require.ErrorIs(r.t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		r.t.Fatal("Run did not return after its context ended")
	}
	r.cancel = nil
}

func (r *rig) next(within time.Duration) device.Reading {
	r.t.Helper()
	select {
	case rd := <-r.out:
		return rd
	case err := <-r.done:
		r.t.Fatalf("Run returned early: %v", err)
	case <-time.After(within):
		r.t.Fatalf("no reading within %s", within)
	}
	return device.Reading{}
}

func (r *rig) none(during time.Duration) {
	r.t.Helper()
	select {
	case rd := <-r.out:
		r.t.Fatalf("unexpected reading %s %s (%s)", rd.Input, rd.Level, rd.Detail)
	case <-time.After(during):
	}
}

func (r *rig) expect(in controller.Input, l controller.Level, within time.Duration) device.Reading {
	r.t.Helper()
	rd := r.next(within)
	require.Equal(r.t, in, rd.Input, "reading %+v", rd)
	require.Equal(r.t, l, rd.Level, "reading %+v", rd)
	return rd
}

func initialLevels(t *testing.T, r *rig) {
	r.h.SetRaw(controller.InputDoor, 0, true, false)      // open
	r.h.SetRaw(controller.InputLock, 0, false, false)     // active-low: locked
	r.h.SetRaw(controller.InputPresence, 0, false, false) // nobody
	r.h.SetRaw(controller.InputPresence, 1, true, false)  // somebody
	r.h.SetRaw(controller.InputPanic, 0, true, false)     // active-low: released
	r.h.SetRaw(controller.InputPanic, 1, false, false)    // active-low: pressed
	start := wallclock.Now()
	r.start(16)
	want := []struct {
		in    controller.Input
		point string
		l     controller.Level
	}{
		{controller.InputDoor, "", controller.LevelActive},
		{controller.InputLock, "", controller.LevelActive},
		{controller.InputPresence, "", controller.LevelActive},
		{controller.InputPanic, PointBed, controller.LevelInactive},
		{controller.InputPanic, PointToilet, controller.LevelActive},
	}
	for _, w := range want {
		rd := r.expect(w.in, w.l, time.Millisecond)
		assert.Equal(t, w.point, rd.Point, "reading %+v", rd)
		assert.Equal(t, start, rd.At, "initial reading is read at start, without debounce")
	}
	r.none(time.Minute)
}

func debounceSettles(t *testing.T, r *rig) {
	r.startIdle()
	// Five raw changes 10 ms apart, ending open (high).
	var last time.Time
	for i := range 5 {
		r.h.SetRaw(controller.InputDoor, 0, i%2 == 0, true)
		last = wallclock.Now()
		if i < 4 {
			r.none(10 * time.Millisecond)
		}
	}
	rd := r.expect(controller.InputDoor, controller.LevelActive, time.Second)
	assert.Equal(t, last.Add(DoorDebounce), rd.At, "settled once stable for the debounce")
	assert.Empty(t, rd.Detail)
	r.none(time.Minute)
	// And back, with a single clean edge.
	r.h.SetRaw(controller.InputDoor, 0, false, true)
	r.none(DoorDebounce - time.Millisecond)
	r.expect(controller.InputDoor, controller.LevelInactive, 10*time.Millisecond)
}

func shortBurst(t *testing.T, r *rig) {
	r.startIdle()
	// A 20 ms glitch (shorter than the 50 ms debounce) and back closed.
	r.h.SetRaw(controller.InputDoor, 0, true, true)
	r.none(20 * time.Millisecond)
	r.h.SetRaw(controller.InputDoor, 0, false, true)
	r.none(time.Minute)
}

func lostEdge(t *testing.T, r *rig) {
	r.startIdle()
	start := wallclock.Now()
	r.h.SetRaw(controller.InputDoor, 0, true, false) // no edge
	rd := r.expect(controller.InputDoor, controller.LevelActive, RereadEvery+DoorDebounce+time.Second)
	assert.LessOrEqual(t, rd.At.Sub(start), RereadEvery+DoorDebounce, "corrected within the re-read interval")
}

func activeLow(t *testing.T, r *rig) {
	r.startIdle()
	r.h.SetRaw(controller.InputLock, 0, false, true)
	r.expect(controller.InputLock, controller.LevelActive, time.Second)
	r.h.SetRaw(controller.InputPanic, 0, false, true)
	r.expect(controller.InputPanic, controller.LevelActive, time.Second)
	r.h.SetRaw(controller.InputLock, 0, true, true)
	r.expect(controller.InputLock, controller.LevelInactive, time.Second)
}

func readFailure(t *testing.T, r *rig) {
	r.startIdle()
	r.h.FailReads(controller.InputDoor, 0, true)
	r.h.SetRaw(controller.InputDoor, 0, true, true) // the edge makes it read now
	rd := r.expect(controller.InputDoor, controller.LevelUnknown, time.Second)
	assert.True(t, strings.HasPrefix(rd.Detail, device.DetailReadFailed), "detail %q", rd.Detail)
	r.none(30 * time.Second) // still failing: no repeats
	r.h.FailReads(controller.InputDoor, 0, false)
	rd = r.expect(controller.InputDoor, controller.LevelActive, 2*time.Second)
	assert.Empty(t, rd.Detail)

	// A line that fails from the start is sent as unknown first.
	r.stop()
	r.h.FailReads(controller.InputPanic, 0, true)
	r.start(16)
	for range initialReadings {
		rd := r.next(time.Millisecond)
		if rd.Input == controller.InputPanic {
			want := map[string]controller.Level{PointBed: controller.LevelUnknown, PointToilet: controller.LevelInactive}[rd.Point]
			assert.Equal(t, want, rd.Level, "point %s", rd.Point)
		}
	}
	r.h.FailReads(controller.InputPanic, 0, false)
	rd = r.expect(controller.InputPanic, controller.LevelInactive, 2*time.Second)
	assert.Equal(t, PointBed, rd.Point)
}

func flapping(t *testing.T, r *rig) {
	r.startIdle()
	// A change every 100 ms: each outlasts the 50 ms debounce, so each
	// settles, until more than FlapMax changes fall inside the window.
	level := false
	var sawFlapping bool
	for range 4 * FlapMax {
		level = !level
		r.h.SetRaw(controller.InputDoor, 0, level, true)
		select {
		case rd := <-r.out:
			require.Equal(t, controller.InputDoor, rd.Input)
			if rd.Level == controller.LevelUnknown {
				require.Equal(t, device.DetailFlapping, rd.Detail)
				sawFlapping = true
			} else {
				require.False(t, sawFlapping, "a level after flapping began, before quiet: %+v", rd)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	require.True(t, sawFlapping, "never flagged flapping")
	quietFrom := wallclock.Now()
	r.h.SetRaw(controller.InputDoor, 0, true, true)
	r.expect(controller.InputDoor, controller.LevelActive, FlapWindow+time.Second)
	assert.GreaterOrEqual(t, wallclock.Since(quietFrom), FlapWindow, "back only after a quiet window")
	r.none(time.Minute)
}

func presence(t *testing.T, r *rig) {
	r.startIdle()
	r.h.SetRaw(controller.InputPresence, 0, true, true)
	r.expect(controller.InputPresence, controller.LevelActive, time.Second)
	r.h.SetRaw(controller.InputPresence, 1, true, true) // still active: nothing
	r.none(time.Second)
	r.h.SetRaw(controller.InputPresence, 0, false, true)
	r.none(time.Second)
	r.h.SetRaw(controller.InputPresence, 1, false, true)
	r.expect(controller.InputPresence, controller.LevelInactive, time.Second)

	r.h.FailReads(controller.InputPresence, 1, true) // found by the next re-read
	rd := r.expect(controller.InputPresence, controller.LevelUnknown, RereadEvery+time.Second)
	assert.Contains(t, rd.Detail, "sensor 2")
	assert.Contains(t, rd.Detail, device.DetailReadFailed)
	r.h.SetRaw(controller.InputPresence, 0, true, true) // active wins over unknown
	r.expect(controller.InputPresence, controller.LevelActive, time.Second)
	r.h.SetRaw(controller.InputPresence, 0, false, true)
	r.expect(controller.InputPresence, controller.LevelUnknown, time.Second)
	r.h.FailReads(controller.InputPresence, 1, false)
	r.expect(controller.InputPresence, controller.LevelInactive, 2*time.Second)
}

func blocks(t *testing.T, r *rig) {
	r.idle()
	r.start(0) // unbuffered, and nobody reads for a while
	synctest.Wait()
	r.h.SetRaw(controller.InputDoor, 0, true, true)
	<-time.After(time.Minute) // the reader is busy
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputPanic} {
		rd := r.next(time.Second)
		require.Equal(t, in, rd.Input)
		require.Equal(t, controller.LevelInactive, rd.Level, "read at start")
	}
	r.expect(controller.InputDoor, controller.LevelActive, time.Second)
	// Closed and open again while nobody reads: both changes arrive, in order.
	r.h.SetRaw(controller.InputDoor, 0, false, true)
	<-time.After(time.Minute)
	r.h.SetRaw(controller.InputDoor, 0, true, true)
	<-time.After(time.Minute)
	r.expect(controller.InputDoor, controller.LevelInactive, time.Millisecond)
	r.expect(controller.InputDoor, controller.LevelActive, time.Second)
}

func outputsSteady(t *testing.T, r *rig) {
	b := r.b
	assert.False(t, r.h.OutputHigh(controller.OutputInUse), "safe at start")
	assert.True(t, r.h.OutputHigh(controller.OutputWarning), "safe at start (active-low)")
	assert.False(t, r.h.OutputHigh(controller.OutputAlarmLight), "safe at start")
	require.NoError(t, b.Set(controller.OutputInUse, controller.ModeOn, 0))
	require.NoError(t, b.Set(controller.OutputWarning, controller.ModeOn, 0))
	assert.True(t, r.h.OutputHigh(controller.OutputInUse))
	assert.False(t, r.h.OutputHigh(controller.OutputWarning), "active-low on drives low")
	<-time.After(time.Hour)
	assert.True(t, r.h.OutputHigh(controller.OutputInUse), "steady stays on")
	require.NoError(t, b.Set(controller.OutputWarning, controller.ModeOff, 0))
	assert.True(t, r.h.OutputHigh(controller.OutputWarning))
	require.Error(t, b.Set(controller.OutputAlarmLight, controller.Mode(9), 0), "invalid mode")
}

// sample returns the raw level of o at the middle of each half period for n halves.
func sample(r *rig, o controller.Output, n int) []bool {
	half := BlinkPeriod / 2
	<-time.After(half / 2)
	var got []bool
	for range n {
		got = append(got, r.h.OutputHigh(o))
		<-time.After(half)
	}
	return got
}

func outputBlink(t *testing.T, r *rig) {
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeBlink, 0))
	assert.Equal(t, []bool{true, false, true, false, true, false}, sample(r, controller.OutputAlarmLight, 6))
	require.NoError(t, r.b.Set(controller.OutputWarning, controller.ModeBlink, 0)) // active-low
	assert.Equal(t, []bool{false, true, false, true}, sample(r, controller.OutputWarning, 4))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOff, 0))
	require.NoError(t, r.b.Set(controller.OutputWarning, controller.ModeOff, 0))
	assert.Equal(t, []bool{false, false, false}, sample(r, controller.OutputAlarmLight, 3))
	assert.True(t, r.h.OutputHigh(controller.OutputWarning))
}

func outputPulses(t *testing.T, r *rig) {
	require.NoError(t, r.b.Set(controller.OutputInUse, controller.ModeOn, 2))
	assert.Equal(t, []bool{true, false, true, false, true, true, true}, sample(r, controller.OutputInUse, 7))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOff, 3))
	assert.Equal(t, []bool{true, false, true, false, true, false, false, false}, sample(r, controller.OutputAlarmLight, 8))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeBlink, 1))
	assert.Equal(t, []bool{true, false, true, false, true, false}, sample(r, controller.OutputAlarmLight, 6))
}

func safeAndClose(t *testing.T, r *rig) {
	b := r.b
	require.NoError(t, b.Set(controller.OutputInUse, controller.ModeOn, 0))
	require.NoError(t, b.Set(controller.OutputWarning, controller.ModeBlink, 0))
	require.NoError(t, b.Set(controller.OutputAlarmLight, controller.ModeOn, 5))
	require.NoError(t, b.Safe())
	check := func(when string) {
		assert.False(t, r.h.OutputHigh(controller.OutputInUse), when)
		assert.True(t, r.h.OutputHigh(controller.OutputWarning), when)
		assert.False(t, r.h.OutputHigh(controller.OutputAlarmLight), when)
	}
	check("after Safe")
	<-time.After(10 * time.Second)
	check("patterns stopped by Safe")

	r.startIdle()
	require.NoError(t, b.Set(controller.OutputAlarmLight, controller.ModeBlink, 0))
	require.NoError(t, b.Set(controller.OutputWarning, controller.ModeOn, 0))
	require.NoError(t, b.Close())
	check("after Close")
	select {
	case err := <-r.done:
		require.Error(t, err, "Close ends a running Run")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Run")
	}
	r.cancel()
	r.cancel = nil
	require.Error(t, b.Set(controller.OutputInUse, controller.ModeOn, 0), "Set after Close")
	check("Set after Close drives nothing")
	err := b.Run(context.Background(), make(chan device.Reading, 8))
	require.True(t, errors.Is(err, device.ErrClosed), "Run after Close: %v", err)
	require.NoError(t, b.Close(), "Close is idempotent")
}

// panicPoints: each panic point is read on its own and named; a fault of
// one leaves the other as it is.
func panicPoints(t *testing.T, r *rig) {
	r.startIdle()
	r.h.SetRaw(controller.InputPanic, 1, false, true) // toilet pressed
	rd := r.expect(controller.InputPanic, controller.LevelActive, time.Second)
	assert.Equal(t, PointToilet, rd.Point)
	r.h.SetRaw(controller.InputPanic, 0, false, true) // bed pressed too: its own reading
	rd = r.expect(controller.InputPanic, controller.LevelActive, time.Second)
	assert.Equal(t, PointBed, rd.Point)
	r.h.SetRaw(controller.InputPanic, 1, true, true) // toilet released, bed still pressed
	rd = r.expect(controller.InputPanic, controller.LevelInactive, time.Second)
	assert.Equal(t, PointToilet, rd.Point)
	r.h.FailReads(controller.InputPanic, 1, true) // toilet fails; found by the next re-read
	rd = r.expect(controller.InputPanic, controller.LevelUnknown, RereadEvery+time.Second)
	assert.Equal(t, PointToilet, rd.Point)
	assert.True(t, strings.HasPrefix(rd.Detail, device.DetailReadFailed), "detail %q names the failure alone", rd.Detail)
	r.none(time.Minute)
}

// trace samples the raw level of o every step, from step/2 on, for d.
func trace(r *rig, o controller.Output, d, step time.Duration) []bool {
	<-time.After(step / 2)
	var got []bool
	for range int(d / step) {
		got = append(got, r.h.OutputHigh(o))
		<-time.After(step)
	}
	return got
}

// expected samples a pattern cycle (starting on) like trace.
func expected(cycle []time.Duration, d, step time.Duration) []bool {
	var total time.Duration
	for _, c := range cycle {
		total += c
	}
	var want []bool
	for at := step / 2; at < d; at += step {
		pos := at % total
		i := 0
		for pos >= cycle[i] {
			pos -= cycle[i]
			i++
		}
		want = append(want, i%2 == 0)
	}
	return want
}

// alarmPatterns: every alarm mode shows its documented pattern, within the
// limits of UL 1069 (each repeats within 10 s; a continuous burst lasts 3 s).
func alarmPatterns(t *testing.T, r *rig) {
	const step = 50 * time.Millisecond
	for _, m := range []controller.Mode{controller.ModePanic, controller.ModeDoorLocked, controller.ModeTimeUp, controller.ModeFault, controller.ModeBlink} {
		cycle := device.Pattern(m, BlinkPeriod)
		require.NotEmpty(t, cycle, "mode %s has a pattern", m)
		require.Zero(t, len(cycle)%2, "mode %s: on and off alternate", m)
		var total time.Duration
		for _, c := range cycle {
			total += c
		}
		assert.LessOrEqual(t, total, 10*time.Second, "mode %s repeats at least every 10 s", m)
		require.NoError(t, r.b.Set(controller.OutputAlarmSounder, m, 0))
		d := 2*total + step
		assert.Equal(t, expected(cycle, d, step), trace(r, controller.OutputAlarmSounder, d, step), "mode %s", m)
	}
	assert.Nil(t, device.Pattern(controller.ModeOn, BlinkPeriod))
	assert.Nil(t, device.Pattern(controller.ModeOff, BlinkPeriod))
	assert.Equal(t, []time.Duration{3 * time.Second, 7 * time.Second}, device.Pattern(controller.ModeFault, BlinkPeriod),
		"the fault pattern is a 3 s continuous burst every 10 s")
	// Every alarm pattern is distinct.
	seen := map[string]controller.Mode{}
	for _, m := range []controller.Mode{controller.ModePanic, controller.ModeDoorLocked, controller.ModeTimeUp, controller.ModeFault} {
		k := fmt.Sprint(device.Pattern(m, BlinkPeriod))
		require.NotContains(t, seen, k, "mode %s has the pattern of %s", m, seen[k])
		seen[k] = m
	}
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModeOff, 0))
	assert.Equal(t, []bool{false, false, false}, trace(r, controller.OutputAlarmSounder, 3*time.Second, time.Second))
}

// expectVerdict reads the next reading and checks it is a supervision
// verdict on o.
func (r *rig) expectVerdict(o controller.Output, follows bool, within time.Duration) device.Reading {
	r.t.Helper()
	rd := r.next(within)
	require.Equal(r.t, o, rd.Output, "reading %+v", rd)
	require.Equal(r.t, follows, rd.Follows, "reading %+v", rd)
	require.Zero(r.t, rd.Input, "a verdict is no input reading")
	return rd
}

// startSupervised starts an idle FeedbackSpec room and consumes the first
// verdicts (both supervised outputs follow), one grace after the start.
func (r *rig) startSupervised() {
	start := wallclock.Now()
	r.startIdle()
	got := map[controller.Output]bool{}
	for range 2 {
		rd := r.next(FeedbackGrace + time.Millisecond)
		require.True(r.t, rd.Follows, "first verdict %+v", rd)
		assert.Equal(r.t, start.Add(FeedbackGrace), rd.At, "first verdict one grace after the start")
		got[rd.Output] = true
	}
	require.Equal(r.t, map[controller.Output]bool{controller.OutputAlarmSounder: true, controller.OutputAlarmLight: true}, got)
}

// feedbackFollows: a read-back that follows every pattern and steady mode
// raises nothing.
func feedbackFollows(t *testing.T, r *rig) {
	r.startSupervised()
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModePanic, 0))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeDoorLocked, 0))
	r.none(30 * time.Second)
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModeFault, 0))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOn, 0))
	r.none(30 * time.Second)
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModeOff, 0))
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOff, 0))
	r.none(time.Minute)
}

// feedbackStuck: a relay that does not follow a pattern is found within the
// grace of the first phase it misses; it counts as working again only after
// following for FeedbackRecovery.
func feedbackStuck(t *testing.T, r *rig) {
	r.startSupervised()
	r.h.StickFeedback(controller.OutputAlarmSounder, true) // stuck off
	set := wallclock.Now()
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModePanic, 0))
	rd := r.expectVerdict(controller.OutputAlarmSounder, false, time.Second)
	assert.Equal(t, set.Add(FeedbackGrace), rd.At, "found one grace into the first on phase")
	assert.Contains(t, rd.Detail, "read back off while driven on")
	r.none(5 * time.Second) // still failing: told once
	freed := wallclock.Now()
	r.h.StickFeedback(controller.OutputAlarmSounder, false)
	rd = r.expectVerdict(controller.OutputAlarmSounder, true, device.FeedbackRecovery+time.Second)
	cycle := device.Pattern(controller.ModePanic, BlinkPeriod)
	assert.GreaterOrEqual(t, rd.At.Sub(freed), device.FeedbackRecovery-cycle[0]-cycle[1],
		"working again only a whole recovery time after the last miss, within the last cycle before it was freed")
	r.none(30 * time.Second)
}

// feedbackDrops: a read-back that stays on after a steady output is turned
// off (a welded contact) is a miss too.
func feedbackDrops(t *testing.T, r *rig) {
	r.startSupervised()
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOn, 0))
	r.none(time.Second)
	r.h.StickFeedback(controller.OutputAlarmLight, true) // welded on
	off := wallclock.Now()
	require.NoError(t, r.b.Set(controller.OutputAlarmLight, controller.ModeOff, 0))
	rd := r.expectVerdict(controller.OutputAlarmLight, false, time.Second)
	assert.Equal(t, off.Add(FeedbackGrace), rd.At)
	assert.Contains(t, rd.Detail, "read back on while driven off")
	r.h.StickFeedback(controller.OutputAlarmLight, false)
	rd = r.expectVerdict(controller.OutputAlarmLight, true, device.FeedbackRecovery+2*time.Second)
	r.none(time.Minute)
}

// feedbackReadFailure: a feedback line that cannot be read is a miss.
func feedbackReadFailure(t *testing.T, r *rig) {
	r.startSupervised()
	r.h.FailFeedbackReads(controller.OutputAlarmSounder, true)
	require.NoError(t, r.b.Set(controller.OutputAlarmSounder, controller.ModeOn, 0))
	rd := r.expectVerdict(controller.OutputAlarmSounder, false, time.Second)
	assert.True(t, strings.HasPrefix(rd.Detail, device.DetailReadFailed), "detail %q", rd.Detail)
	r.none(5 * time.Second)
	r.h.FailFeedbackReads(controller.OutputAlarmSounder, false)
	r.expectVerdict(controller.OutputAlarmSounder, true, device.FeedbackRecovery+2*time.Second)
	r.none(time.Minute)
}

// lineRunner is what the function test uses of a backend: every input line
// on its own.
type lineRunner interface {
	RunLines(ctx context.Context, out chan<- device.LineReading) error
}

// runLines starts RunLines and returns its channel and a stop function.
func (r *rig) runLines() (chan device.LineReading, func()) {
	lr, ok := r.b.(lineRunner)
	require.True(r.t, ok, "%T has no RunLines", r.b)
	out := make(chan device.LineReading, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lr.RunLines(ctx, out) }()
	return out, func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(r.t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			r.t.Fatal("RunLines did not return after its context ended")
		}
	}
}

func nextLine(t *testing.T, out chan device.LineReading, within time.Duration) device.LineReading {
	t.Helper()
	select {
	case lr := <-out:
		return lr
	case <-time.After(within):
		t.Fatalf("no line reading within %s", within)
	}
	return device.LineReading{}
}

// linesAlone: RunLines reports every line, the two presence sensors each
// alone, debounced and flap-supervised as Run does.
func linesAlone(t *testing.T, r *rig) {
	r.idle()
	r.h.SetRaw(controller.InputPresence, 1, true, false) // sensor 2 sees somebody
	out, stop := r.runLines()
	defer stop()
	type key struct {
		in    controller.Input
		idx   int
		point string
	}
	want := []struct {
		k key
		l controller.Level
	}{
		{key{controller.InputDoor, 0, ""}, controller.LevelInactive},
		{key{controller.InputLock, 0, ""}, controller.LevelInactive},
		{key{controller.InputPresence, 0, ""}, controller.LevelInactive},
		{key{controller.InputPresence, 1, ""}, controller.LevelActive},
		{key{controller.InputPanic, 0, PointBed}, controller.LevelInactive},
		{key{controller.InputPanic, 1, PointToilet}, controller.LevelInactive},
	}
	for _, w := range want {
		lr := nextLine(t, out, time.Millisecond)
		assert.Equal(t, w.k, key{lr.Input, lr.Index, lr.Point}, "initial reading %+v", lr)
		assert.Equal(t, w.l, lr.Level, "initial reading %+v", lr)
	}
	// Sensor 1 alone: its own reading, though the role stays active.
	r.h.SetRaw(controller.InputPresence, 0, true, true)
	lr := nextLine(t, out, time.Second)
	assert.Equal(t, key{controller.InputPresence, 0, ""}, key{lr.Input, lr.Index, lr.Point})
	assert.Equal(t, controller.LevelActive, lr.Level)
	r.h.SetRaw(controller.InputPresence, 1, false, true)
	lr = nextLine(t, out, time.Second)
	assert.Equal(t, key{controller.InputPresence, 1, ""}, key{lr.Input, lr.Index, lr.Point})
	assert.Equal(t, controller.LevelInactive, lr.Level)
	// A burst shorter than the debounce is one change.
	start := wallclock.Now()
	for i := range 5 {
		r.h.SetRaw(controller.InputDoor, 0, i%2 == 0, true)
		<-time.After(10 * time.Millisecond)
	}
	lr = nextLine(t, out, time.Second)
	assert.Equal(t, controller.InputDoor, lr.Input)
	assert.Equal(t, controller.LevelActive, lr.Level)
	assert.Equal(t, start.Add(40*time.Millisecond+DoorDebounce), lr.At)
	// More changes than the flap bound: unknown, flapping.
	for i := range FlapMax + 2 {
		r.h.SetRaw(controller.InputPanic, 1, i%2 == 0, true)
		<-time.After(10 * time.Millisecond)
	}
	lr = nextLine(t, out, time.Second)
	assert.Equal(t, PointToilet, lr.Point)
	assert.Equal(t, controller.LevelUnknown, lr.Level)
	assert.Equal(t, device.DetailFlapping, lr.Detail)
	// A line that cannot be read: unknown, read failed.
	r.h.FailReads(controller.InputLock, 0, true)
	r.h.SetRaw(controller.InputLock, 0, false, true)
	for {
		lr = nextLine(t, out, RereadEvery+time.Second)
		if lr.Input == controller.InputLock {
			break
		}
	}
	assert.Equal(t, controller.LevelUnknown, lr.Level)
	assert.True(t, strings.HasPrefix(lr.Detail, device.DetailReadFailed), "detail %q", lr.Detail)
}

// linesExcludeRun: RunLines and Run share the lines; one at a time.
func linesExcludeRun(t *testing.T, r *rig) {
	r.startIdle()
	lr, ok := r.b.(lineRunner)
	require.True(t, ok)
	err := lr.RunLines(context.Background(), make(chan device.LineReading, 16))
	require.ErrorContains(t, err, "already running")
}

// LoopHarness is a Harness whose backend reads supervised loops
// (LoopSpec): it sets the resistance the ADC sees on a loop.
type LoopHarness interface {
	Harness
	// SetOhms makes line i of input in read as a loop of ohms (+Inf: open).
	SetOhms(in controller.Input, i int, ohms float64)
	// FailLoop makes the reads of line i of input in fail (a bus or
	// conversion error), or work again.
	FailLoop(in controller.Input, i int, fail bool)
}

// Loop timing of LoopSpec.
const (
	LoopHold  = 300 * time.Millisecond
	LoopEvery = 10 * time.Millisecond
)

// LoopSpec is Spec with both panic points read as end-of-line loops on an
// ADS1115 at 0x48: bed a Galaxy double loop (1k + 1k) on channel 0 through
// a 2k2 pull-up, toilet a Texecom double loop (2k2 + 4k7) on channel 1
// through a 4k7 pull-up, both from 3.3 V, hold 300 ms, read every 10 ms.
// Idle, both loops read at rest (LoopHarness.SetOhms to 1,000 and 2,200 Ω).
func LoopSpec() device.Spec {
	s := Spec()
	galaxy, err := eol.PresetTable(eol.PresetGalaxy, eol.SchemeDouble)
	if err != nil {
		panic(err)
	}
	texecom, err := eol.PresetTable(eol.PresetTexecom, eol.SchemeDouble)
	if err != nil {
		panic(err)
	}
	s.Inputs[controller.InputPanic] = []device.LineSpec{
		{Name: PointBed, Loop: &device.Loop{ADC: device.ADCChannel{Address: 0x48, Channel: 0}, Table: galaxy,
			Divider: eol.Divider{PullUp: 2200, Supply: 3.3}, Hold: LoopHold, Every: LoopEvery}},
		{Name: PointToilet, Loop: &device.Loop{ADC: device.ADCChannel{Address: 0x48, Channel: 1}, Table: texecom,
			Divider: eol.Divider{PullUp: 4700, Supply: 3.3}, Hold: LoopHold, Every: LoopEvery}},
	}
	return s
}

// RunLoops runs the cases of supervised loops against backends made by
// newHarness (with LoopSpec), inside each case's synctest bubble.
func RunLoops(t *testing.T, newHarness func(t *testing.T, spec device.Spec) LoopHarness) {
	cases := []struct {
		name string
		f    func(t *testing.T, r *loopRig)
	}{
		{"LoopInitialLevels", loopInitial},
		{"LoopPressHoldsToCount", loopPress},
		{"LoopBridgedCutMasked", loopTamper},
		{"LoopDrift", loopDrift},
		{"LoopBaseline", loopBaseline},
		{"LoopReadFailureIsNeverSilence", loopReadFailure},
		{"LoopFlapping", loopFlapping},
		{"LoopLinesCarryOhms", loopLines},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, LoopSpec())
				r := &loopRig{rig: rig{t: t, h: h, b: h.Backend()}, lh: h,
					remake: func(spec device.Spec) LoopHarness { return newHarness(t, spec) }}
				t.Cleanup(func() { _ = r.b.Close() })
				c.f(t, r)
				r.stop()
			})
		})
	}
}

type loopRig struct {
	rig
	lh     LoopHarness
	remake func(device.Spec) LoopHarness
}

// startIdle sets idle levels (both loops at rest), starts Run and consumes
// the initial readings.
func (r *loopRig) startIdle() {
	r.idle()
	r.lh.SetOhms(controller.InputPanic, 0, 1000)
	r.lh.SetOhms(controller.InputPanic, 1, 2200)
	r.start(16)
	for range initialReadings {
		rd := r.next(time.Second)
		require.Equal(r.t, controller.LevelInactive, rd.Level, "initial %s %s", rd.Input, rd.Point)
		require.False(r.t, rd.Tamper)
		require.Equal(r.t, controller.DriftNone, rd.Drift)
	}
}

// point expects the next reading to be of panic point p.
func (r *loopRig) point(p string, l controller.Level, within time.Duration) device.Reading {
	r.t.Helper()
	rd := r.expect(controller.InputPanic, l, within)
	require.Equal(r.t, p, rd.Point, "reading %+v", rd)
	return rd
}

// within is how soon after a change its reading must come: the hold, a
// read interval, and 100 ms.
const within = LoopHold + LoopEvery + 100*time.Millisecond

func loopInitial(t *testing.T, r *loopRig) {
	r.idle()
	r.lh.SetOhms(controller.InputPanic, 0, 2000)  // bed pressed
	r.lh.SetOhms(controller.InputPanic, 1, 10000) // toilet pressed: Texecom's alarm band
	r.start(16)
	for range initialReadings {
		rd := r.next(LoopEvery) // a conversion takes a little time
		if rd.Input == controller.InputPanic {
			assert.Equal(t, controller.LevelActive, rd.Level, "point %s read at start, without hold", rd.Point)
		}
	}
	r.none(time.Minute)
}

func loopPress(t *testing.T, r *loopRig) {
	r.startIdle()
	// A press shorter than the hold is nothing.
	r.lh.SetOhms(controller.InputPanic, 0, 2000)
	r.none(LoopHold - 3*LoopEvery)
	r.lh.SetOhms(controller.InputPanic, 0, 1000)
	r.none(time.Minute)
	// One that holds counts, dated from its first read.
	r.lh.SetOhms(controller.InputPanic, 1, 6900)
	set := wallclock.Now()
	rd := r.point(PointToilet, controller.LevelActive, within)
	assert.LessOrEqual(t, rd.At.Sub(set), LoopEvery, "dated from the first read of the press")
	assert.LessOrEqual(t, wallclock.Since(set), LoopHold+2*LoopEvery, "sent once it held")
	r.lh.SetOhms(controller.InputPanic, 1, 2200)
	r.point(PointToilet, controller.LevelInactive, within)
	r.none(time.Minute)
}

func loopTamper(t *testing.T, r *loopRig) {
	r.startIdle()
	for _, c := range []struct {
		point string
		i     int
		ohms  float64
		words string
		rest  float64
	}{
		{PointBed, 0, 0, "wire bridged", 1000},
		{PointBed, 0, math.Inf(1), "wire cut", 1000},
		{PointBed, 0, 15000, "masked", 1000},
		{PointToilet, 1, 300, "wire bridged", 2200},
		{PointToilet, 1, 50000, "wire cut", 2200},
	} {
		r.lh.SetOhms(controller.InputPanic, c.i, c.ohms)
		set := wallclock.Now()
		rd := r.point(c.point, controller.LevelUnknown, within)
		assert.True(t, rd.Tamper, "%s %v Ω: tamper", c.point, c.ohms)
		assert.Equal(t, c.words, rd.Detail, "%s %v Ω", c.point, c.ohms)
		assert.LessOrEqual(t, wallclock.Since(set), LoopHold+100*time.Millisecond, "%s %v Ω: within the hold and 100 ms", c.point, c.ohms)
		assert.NotContains(t, rd.Detail, "Ω", "no ohms leave the device")
		r.lh.SetOhms(controller.InputPanic, c.i, c.rest)
		rd = r.point(c.point, controller.LevelInactive, within)
		assert.False(t, rd.Tamper)
	}
	r.none(time.Minute)
}

func loopDrift(t *testing.T, r *loopRig) {
	r.startIdle()
	r.lh.SetOhms(controller.InputPanic, 0, 850) // Galaxy low band
	rd := r.point(PointBed, controller.LevelInactive, within)
	assert.Equal(t, controller.DriftLow, rd.Drift)
	r.lh.SetOhms(controller.InputPanic, 0, 1250) // high band
	rd = r.point(PointBed, controller.LevelInactive, within)
	assert.Equal(t, controller.DriftHigh, rd.Drift)
	r.lh.SetOhms(controller.InputPanic, 0, 2000) // pressed: no drift band around alarm
	rd = r.point(PointBed, controller.LevelActive, within)
	assert.Equal(t, controller.DriftNone, rd.Drift)
	r.lh.SetOhms(controller.InputPanic, 0, 1000)
	rd = r.point(PointBed, controller.LevelInactive, within)
	assert.Equal(t, controller.DriftNone, rd.Drift)
	r.none(time.Minute)
}

// loopBaseline: with a commissioned baseline, drift is judged against it.
func loopBaseline(t *testing.T, r *loopRig) {
	r.stop()
	require.NoError(t, r.b.Close())
	spec := LoopSpec()
	spec.Inputs[controller.InputPanic][0].Loop.Baseline = eol.Baseline{Rest: 950, Acted: 1900}
	h := r.remake(spec)
	r.lh, r.h, r.b = h, h, h.Backend()
	t.Cleanup(func() { _ = r.b.Close() })
	r.idle()
	r.lh.SetOhms(controller.InputPanic, 0, 950)
	r.lh.SetOhms(controller.InputPanic, 1, 2200)
	r.start(16)
	for range initialReadings {
		r.next(time.Second)
	}
	r.lh.SetOhms(controller.InputPanic, 0, 1100) // normal band, but 16% above the baseline
	rd := r.point(PointBed, controller.LevelInactive, within)
	assert.Equal(t, controller.DriftHigh, rd.Drift)
	r.lh.SetOhms(controller.InputPanic, 0, 2300) // pressed, 21% above the baseline
	rd = r.point(PointBed, controller.LevelActive, within)
	assert.Equal(t, controller.DriftHigh, rd.Drift)
}

func loopReadFailure(t *testing.T, r *loopRig) {
	r.startIdle()
	r.lh.FailLoop(controller.InputPanic, 1, true)
	set := wallclock.Now()
	rd := r.point(PointToilet, controller.LevelUnknown, within)
	assert.True(t, strings.HasPrefix(rd.Detail, device.DetailReadFailed), "detail %q", rd.Detail)
	assert.False(t, rd.Tamper, "a bus error is no tamper")
	assert.LessOrEqual(t, wallclock.Since(set), LoopHold+100*time.Millisecond)
	r.none(30 * time.Second) // still failing: told once
	r.lh.FailLoop(controller.InputPanic, 1, false)
	r.point(PointToilet, controller.LevelInactive, within)
	// A glitch shorter than the hold is nothing.
	r.lh.FailLoop(controller.InputPanic, 0, true)
	<-time.After(100 * time.Millisecond)
	r.lh.FailLoop(controller.InputPanic, 0, false)
	r.none(time.Minute)
}

func loopFlapping(t *testing.T, r *loopRig) {
	r.startIdle()
	// A loose terminal: rest and open every 50 ms, never holding 300 ms.
	for i := range 4 * FlapMax {
		r.lh.SetOhms(controller.InputPanic, 0, map[bool]float64{true: 1000, false: math.Inf(1)}[i%2 == 0])
		select {
		case rd := <-r.out:
			require.Equal(t, controller.LevelUnknown, rd.Level, "reading %+v", rd)
			require.Equal(t, device.DetailFlapping, rd.Detail)
			require.Equal(t, PointBed, rd.Point)
			r.lh.SetOhms(controller.InputPanic, 0, 1000)
			r.point(PointBed, controller.LevelInactive, FlapWindow+within)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("a loop that never holds a band was never reported")
}

func loopLines(t *testing.T, r *loopRig) {
	r.idle()
	r.lh.SetOhms(controller.InputPanic, 0, 1010)
	r.lh.SetOhms(controller.InputPanic, 1, 2200)
	out, stop := r.runLines()
	defer stop()
	for range 6 {
		lr := nextLine(t, out, LoopEvery)
		if lr.Point == PointBed {
			assert.InDelta(t, 1010, lr.Ohms, 2, "the ohms of the reading")
		}
	}
	r.lh.SetOhms(controller.InputPanic, 0, 2020)
	lr := nextLine(t, out, within)
	assert.Equal(t, PointBed, lr.Point)
	assert.Equal(t, controller.LevelActive, lr.Level)
	assert.InDelta(t, 2020, lr.Ohms, 3)
}
