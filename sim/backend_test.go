package sim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/devicetest"
	"github.com/roomd/roomd/wallclock"
)

type harness struct{ r *Room }

func (h harness) Backend() device.Backend { return h.r }
func (h harness) SetRaw(in controller.Input, i int, high, edge bool) {
	if p := h.r.inputs[in][i]; p != nil { // a supervised loop has no raw level (SetOhms)
		p.Drive(gpio.Level(high), edge)
	}
}
func (h harness) FailReads(in controller.Input, i int, fail bool) { h.r.setFailLine(in, i, fail) }
func (h harness) SetOhms(in controller.Input, i int, ohms float64) {
	h.r.loops[in][i].SetOhms(ohms)
}
func (h harness) FailLoop(in controller.Input, i int, fail bool) { h.r.loops[in][i].SetFail(fail) }
func (h harness) OutputHigh(o controller.Output) bool            { return h.r.OutputLevel(o) }
func (h harness) StickFeedback(o controller.Output, stuck bool) {
	if err := h.r.StickFeedback(o, stuck); err != nil {
		panic(err)
	}
}
func (h harness) FailFeedbackReads(o controller.Output, fail bool) {
	if err := h.r.FailFeedback(o, fail); err != nil {
		panic(err)
	}
}

func TestBehaviour(t *testing.T) {
	devicetest.Run(t, func(t *testing.T, spec device.Spec) devicetest.Harness {
		r, err := New(spec, nil)
		require.NoError(t, err)
		return harness{r}
	})
}

func TestLoopBehaviour(t *testing.T) {
	devicetest.RunLoops(t, func(t *testing.T, spec device.Spec) devicetest.LoopHarness {
		r, err := New(spec, nil)
		require.NoError(t, err)
		return harness{r}
	})
}

// roomRun starts a DefaultSpec room and consumes the initial readings.
func roomRun(t *testing.T, spec device.Spec) (*Room, chan device.Reading) {
	r, err := New(spec, nil)
	require.NoError(t, err)
	out := make(chan device.Reading, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		<-done
		require.NoError(t, r.Close())
	})
	readings := len(spec.Inputs) // one per role, and one per panic point
	if n := len(spec.Inputs[controller.InputPanic]); n > 1 {
		readings += n - 1
	}
	for range readings {
		rd := next(t, out)
		require.Equal(t, controller.LevelInactive, rd.Level, "%s starts inactive", rd.Input)
	}
	return r, out
}

func next(t *testing.T, out chan device.Reading) device.Reading {
	t.Helper()
	select {
	case rd := <-out:
		return rd
	case <-time.After(10 * time.Second):
		t.Fatal("no reading")
	}
	return device.Reading{}
}

func TestSetInputAppliesWiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, out := roomRun(t, DefaultSpec())
		for _, in := range controller.Inputs {
			require.NoError(t, r.SetInput(in, controller.LevelActive))
			rd := next(t, out)
			assert.Equal(t, in, rd.Input)
			assert.Equal(t, controller.LevelActive, rd.Level)
		}
		// Staff is active-low (normally open): the raw pin is low when active.
		assert.Equal(t, gpio.Low, r.inputs[controller.InputStaff][0].Read())
		assert.Equal(t, gpio.High, r.inputs[controller.InputDoor][0].Read())

		require.NoError(t, r.SetInput(controller.InputDoor, controller.LevelUnknown))
		rd := next(t, out)
		assert.Equal(t, controller.LevelUnknown, rd.Level)
		require.NoError(t, r.Heal(controller.InputDoor))
		assert.Equal(t, controller.LevelActive, next(t, out).Level)
	})
}

func TestBounceAndLostEdge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, out := roomRun(t, DefaultSpec())
		start := wallclock.Now()
		require.NoError(t, r.Bounce(controller.InputDoor, controller.LevelActive, 6, 5*time.Millisecond))
		rd := next(t, out)
		assert.Equal(t, controller.LevelActive, rd.Level)
		assert.Equal(t, start.Add(25*time.Millisecond+30*time.Millisecond), rd.At, "settled 30 ms after the last of 6 changes")
		select {
		case rd := <-out:
			t.Fatalf("extra reading %+v", rd)
		case <-time.After(time.Minute):
		}

		require.NoError(t, r.LoseEdge(controller.InputDoor, controller.LevelInactive))
		rd = next(t, out)
		assert.Equal(t, controller.LevelInactive, rd.Level)
		assert.LessOrEqual(t, rd.At.Sub(start), time.Minute+device.DefaultRereadEvery+time.Second)

		require.Error(t, r.Bounce(controller.InputDoor, controller.LevelActive, 0, time.Millisecond))
		require.Error(t, r.Bounce(controller.InputDoor, controller.LevelUnknown, 3, time.Millisecond))
		require.Error(t, r.Bounce(controller.InputDoor, controller.LevelActive, 3, 0))
	})
}

func TestPresenceSensors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := DefaultSpec()
		spec.Inputs[controller.InputPresence] = []device.LineSpec{{}, {}, {}}
		r, out := roomRun(t, spec)
		require.NoError(t, r.SetPresence(2, true))
		assert.Equal(t, controller.LevelActive, next(t, out).Level)
		require.NoError(t, r.SetPresence(2, false))
		assert.Equal(t, controller.LevelInactive, next(t, out).Level)
		require.ErrorContains(t, r.SetPresence(3, true), "no presence sensor 3")
	})
}

func TestUnwiredInput(t *testing.T) {
	spec := DefaultSpec()
	delete(spec.Inputs, controller.InputStaff)
	r, err := New(spec, nil)
	require.NoError(t, err)
	defer r.Close()
	require.ErrorContains(t, r.SetInput(controller.InputStaff, controller.LevelActive), "input staff is not wired")
	require.Error(t, r.Fault(controller.InputStaff))
	require.Error(t, r.LoseEdge(controller.InputStaff, controller.LevelActive))
	require.Error(t, r.Bounce(controller.InputStaff, controller.LevelActive, 2, time.Millisecond))
}

func TestWatchOutputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := New(DefaultSpec(), nil)
		require.NoError(t, err)
		w := r.Watch()
		require.NoError(t, r.Set(controller.OutputInUse, controller.ModeOn, 0))
		ev := <-w
		assert.Equal(t, controller.OutputInUse, ev.Output)
		assert.Equal(t, map[controller.Output]controller.Mode{
			controller.OutputInUse: controller.ModeOn, controller.OutputWarning: controller.ModeOff, controller.OutputAlarmLight: controller.ModeOff,
			controller.OutputAlarmSounder: controller.ModeOff, controller.OutputReassurance: controller.ModeOff,
		}, ev.Outputs)

		// Two changes unread: the latest snapshot wins.
		require.NoError(t, r.Set(controller.OutputAlarmLight, controller.ModeBlink, 2))
		require.NoError(t, r.Set(controller.OutputWarning, controller.ModeBlink, 0))
		ev = <-w
		assert.Equal(t, controller.OutputWarning, ev.Output)
		assert.Equal(t, controller.ModeBlink, ev.Outputs[controller.OutputAlarmLight])
		assert.Equal(t, controller.ModeBlink, ev.Outputs[controller.OutputWarning])
		assert.Equal(t, device.OutputState{Mode: controller.ModeBlink, Pulses: 2, On: true}, r.Output(controller.OutputAlarmLight))
		assert.Equal(t, ev.Outputs, r.Outputs())

		// A blink pattern does not notify every phase.
		select {
		case ev := <-w:
			t.Fatalf("unexpected %+v", ev)
		case <-time.After(10 * time.Second):
		}
		require.NoError(t, r.Safe())
		ev = <-w
		assert.Equal(t, controller.ModeOff, ev.Outputs[controller.OutputAlarmLight])
		require.NoError(t, r.Close())
		for range w {
		}
	})
}

// TestWiredAgainstItsConfig: a room wired as docs/wiring.md recommends,
// read with a config whose active_low is wrong for the door and the staff
// key: both read inverted, at rest and when acted on.
func TestWiredAgainstItsConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := DefaultSpec()
		spec.Inputs[controller.InputDoor][0].ActiveLow = true   // wrong: the contact is NC, active high
		spec.Inputs[controller.InputStaff][0].ActiveLow = false // wrong: the key is NO, active low
		wiring := RecommendedWiring(spec)
		assert.False(t, wiring.Inputs[controller.InputDoor][0].ActiveLow)
		assert.True(t, wiring.Inputs[controller.InputStaff][0].ActiveLow)
		assert.True(t, spec.Inputs[controller.InputDoor][0].ActiveLow, "RecommendedWiring leaves its argument alone")
		r, err := NewWired(spec, wiring, nil)
		require.NoError(t, err)
		out := make(chan device.Reading, 16)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, out) }()
		defer func() {
			cancel()
			<-done
			require.NoError(t, r.Close())
		}()
		at := map[controller.Input]controller.Level{}
		for range 5 {
			rd := next(t, out)
			at[rd.Input] = rd.Level
		}
		assert.Equal(t, controller.LevelActive, at[controller.InputDoor], "a closed door reads open")
		assert.Equal(t, controller.LevelActive, at[controller.InputStaff], "a released key reads pressed")
		assert.Equal(t, controller.LevelInactive, at[controller.InputLock], "the lock, configured as wired, reads right")

		require.NoError(t, r.SetInput(controller.InputDoor, controller.LevelActive)) // the door opens
		rd := next(t, out)
		assert.Equal(t, controller.InputDoor, rd.Input)
		assert.Equal(t, controller.LevelInactive, rd.Level, "an open door reads closed")
	})
	_, err := NewWired(DefaultSpec(), device.Spec{}, nil)
	require.ErrorContains(t, err, "lines wired")
}

// TestPowerAndHealthy: the simulated UPS's status lines are read as power
// readings, and Pulse toggles the healthy line.
func TestPowerAndHealthy(t *testing.T) {
	spec := DefaultSpec()
	spec.Power = map[device.Power]device.LineSpec{device.PowerMains: {ActiveLow: true}, device.PowerBattery: {ActiveLow: true}}
	spec.Healthy = &device.LineSpec{}
	r, out := roomRun(t, spec)
	got := map[device.Power]controller.Level{}
	for range 2 {
		select {
		case rd := <-out:
			require.NotZero(t, rd.Power, "reading %+v", rd)
			got[rd.Power] = rd.Level
		case <-time.After(5 * time.Second):
			t.Fatal("no power reading at start")
		}
	}
	assert.Equal(t, map[device.Power]controller.Level{device.PowerMains: controller.LevelInactive, device.PowerBattery: controller.LevelInactive}, got)
	require.NoError(t, r.SetPower(device.PowerBattery, true))
	select {
	case rd := <-out:
		assert.Equal(t, device.PowerBattery, rd.Power)
		assert.Equal(t, controller.LevelActive, rd.Level)
	case <-time.After(5 * time.Second):
		t.Fatal("the battery low was not read")
	}
	before := r.HealthyLevel()
	require.NoError(t, r.Pulse())
	assert.NotEqual(t, before, r.HealthyLevel(), "a pulse toggles the line")
	require.NoError(t, r.Pulse())
	assert.Equal(t, before, r.HealthyLevel())
}
