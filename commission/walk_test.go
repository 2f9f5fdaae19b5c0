package commission_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/commission"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/sim"
)

// roomSpec is the simulator's room with two presence sensors and two
// named panic points, as wired by docs/wiring.md.
func roomSpec() device.Spec {
	spec := sim.DefaultSpec()
	l := spec.Inputs[controller.InputPresence][0]
	spec.Inputs[controller.InputPresence] = []device.LineSpec{l, l}
	p := spec.Inputs[controller.InputPanic][0]
	bed, toilet := p, p
	bed.Name, toilet.Name = "bed", "toilet"
	spec.Inputs[controller.InputPanic] = []device.LineSpec{bed, toilet}
	return spec
}

// newRoom opens a simulated room read with spec and wired as docs/wiring.md
// recommends; it is closed at the end of the test.
func newRoom(t *testing.T, spec device.Spec) *sim.Room {
	r, err := sim.NewWired(spec, sim.RecommendedWiring(spec), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// key names the line of a step as a function_test record does.
func key(s commission.Step) string {
	return controller.LineResult{Input: s.Input, Point: s.Point, Sensor: s.Sensor, Output: s.Output}.Name()
}

// installer plays the person at the room on a simulated room: asked to
// act, it moves the simulated sensor (unless acts says otherwise for the
// line); asked about an output, it answers yes exactly when the simulated
// output shows the mode the step names (unless answers says otherwise).
type installer struct {
	t    *testing.T
	room *sim.Room

	mu sync.Mutex
	// acts replaces what the installer does for a line ("door",
	// "panic:toilet", "presence:2"), for StepAct and StepRest.
	acts map[string]func(s commission.Step)
	// answers replaces the answer about an output.
	answers map[controller.Output]bool
	// onConfirm, if set, runs when a question is asked (before answering).
	onConfirm func(s commission.Step)
	shown     []string
	asked     []commission.Step
	driven    map[controller.Output]controller.Mode // what each output showed when asked
	steps     []commission.Step
}

func newInstaller(t *testing.T, r *sim.Room) *installer {
	return &installer{t: t, room: r, acts: map[string]func(commission.Step){}, answers: map[controller.Output]bool{},
		driven: map[controller.Output]controller.Mode{}}
}

func (i *installer) Show(text string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.shown = append(i.shown, text)
}

func (i *installer) Act(s commission.Step) {
	i.mu.Lock()
	i.steps = append(i.steps, s)
	f := i.acts[key(s)]
	i.mu.Unlock()
	if f != nil {
		f(s)
		return
	}
	i.move(s, s.Kind == commission.StepAct)
}

// move sets the simulated sensor of s active (acted on) or back to rest.
func (i *installer) move(s commission.Step, active bool) {
	l := controller.LevelInactive
	if active {
		l = controller.LevelActive
	}
	var err error
	switch s.Input {
	case controller.InputPresence:
		err = i.room.SetPresence(s.Index, active)
	case controller.InputPanic:
		err = i.room.SetPoint(s.Point, l)
	default:
		err = i.room.SetInput(s.Input, l)
	}
	if err != nil {
		i.t.Errorf("move %s: %v", key(s), err)
	}
}

func (i *installer) Confirm(ctx context.Context, s commission.Step) (bool, error) {
	i.mu.Lock()
	i.asked = append(i.asked, s)
	i.driven[s.Output] = i.room.Outputs()[s.Output]
	ans, set := i.answers[s.Output]
	hook := i.onConfirm
	i.mu.Unlock()
	if hook != nil {
		hook(s)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !set {
		ans = i.room.Outputs()[s.Output] == s.Mode && s.Mode != controller.ModeOff
	}
	return ans, nil
}

// results maps each line's name to its result.
func results(lines []commission.LineReport) map[string]commission.LineReport {
	m := map[string]commission.LineReport{}
	for _, l := range lines {
		m[l.Name()] = l
	}
	return m
}

func allOff(t *testing.T, r *sim.Room) {
	t.Helper()
	for _, o := range controller.Outputs {
		assert.Equal(t, controller.ModeOff, r.Outputs()[o], "output %s", o)
		assert.False(t, r.OutputLevel(o), "output %s line", o)
	}
}

func TestWalkFullPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestFull})
		require.NoError(t, err)
		var names []string
		for _, l := range lines {
			names = append(names, l.Name())
			assert.True(t, l.Passed, "%s: %s %s", l.Name(), l.Fault, l.Seen)
			assert.NotEmpty(t, l.Seen)
		}
		assert.Equal(t, []string{"door", "lock", "presence:1", "presence:2", "panic:bed", "panic:toilet", "staff",
			"in_use", "warning", "alarm_light", "alarm_sounder", "reassurance"}, names)
		assert.Equal(t, map[controller.Output]controller.Mode{
			controller.OutputInUse: controller.ModeOn, controller.OutputWarning: controller.ModeBlink,
			controller.OutputAlarmLight: controller.ModePanic, controller.OutputAlarmSounder: controller.ModePanic,
			controller.OutputReassurance: controller.ModeBlink,
		}, inst.driven, "each output showed its pattern while asked about")
		allOff(t, r)
		// Each input was acted on and put back to rest, in order.
		require.Len(t, inst.steps, 14)
		assert.Equal(t, "open the door now", inst.steps[0].Text)
		assert.Equal(t, commission.StepRest, inst.steps[1].Kind)
		assert.Equal(t, "close the door again", inst.steps[1].Text)
		assert.Equal(t, "walk in front of presence sensor 2 (the PIR) now", inst.steps[6].Text)
		assert.Equal(t, "press the panic point 'toilet' now", inst.steps[10].Text)
		assert.Contains(t, inst.shown, "panic point 'toilet': passed")
	})
}

func TestWalkFindsWiringFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := roomSpec()
		spec.Inputs[controller.InputDoor][0].ActiveLow = true // wired NC, active high: the config is wrong
		r := newRoom(t, spec)
		inst := newInstaller(t, r)
		// The bolt sensor is on another pin than the config says: nothing moves.
		inst.acts["lock"] = func(commission.Step) {}
		// Presence sensor 2 chatters: five changes 100 ms apart, beyond the 30 ms debounce.
		inst.acts["presence:2"] = func(s commission.Step) {
			if s.Kind == commission.StepAct {
				require.NoError(t, r.Apply(contract.SimControl{Bounce: &contract.SimBounce{Input: controller.InputPresence, To: controller.LevelActive, Count: 5, Every: 100 * time.Millisecond}}))
			} else {
				inst.move(s, false)
			}
		}
		// The toilet's point reads unknown when pressed (a broken wire to a
		// line that cannot be read).
		inst.acts["panic:toilet"] = func(s commission.Step) {
			if s.Kind == commission.StepAct {
				require.NoError(t, r.SetPoint("toilet", controller.LevelUnknown))
			}
		}
		inst.answers[controller.OutputAlarmSounder] = false // nobody hears the sounder
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestFull})
		require.NoError(t, err)
		res := results(lines)
		want := map[string]controller.LineFault{
			"door": controller.FaultInverted, "lock": controller.FaultNeverChanged, "presence:1": "",
			"presence:2": controller.FaultBouncing, "panic:bed": "", "panic:toilet": controller.FaultUnknown, "staff": "",
			"in_use": "", "warning": "", "alarm_light": "", "alarm_sounder": controller.FaultNotConfirmed, "reassurance": "",
		}
		for name, f := range want {
			l, ok := res[name]
			require.True(t, ok, "no result for %s", name)
			assert.Equal(t, f, l.Fault, "%s: %s", name, l.Seen)
			assert.Equal(t, f == "", l.Passed, name)
		}
		assert.Contains(t, res["door"].Seen, "reads open at rest and closed when acted on")
		assert.Contains(t, res["lock"].Seen, "still reads unlocked")
		assert.Contains(t, res["panic:toilet"].Seen, "simulated read fault")
		allOff(t, r)
	})
}

// TestWalkQuickPressIsClean: a press shorter than the settle time is one
// clean action (two changes), not a bounce; a PIR that drops and picks up
// again slowly is not bouncing either.
func TestWalkQuickPressIsClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		inst.acts["panic:bed"] = func(s commission.Step) {
			if s.Kind == commission.StepAct {
				inst.move(s, true)
				time.AfterFunc(200*time.Millisecond, func() { inst.move(s, false) })
			}
		}
		inst.acts["presence:1"] = func(s commission.Step) {
			if s.Kind == commission.StepAct {
				inst.move(s, true)
				time.AfterFunc(1500*time.Millisecond, func() { inst.move(s, false) })
				time.AfterFunc(3000*time.Millisecond, func() { inst.move(s, true) })
				return
			}
			time.AfterFunc(5*time.Second, func() { inst.move(s, false) })
		}
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestFull})
		require.NoError(t, err)
		res := results(lines)
		assert.True(t, res["panic:bed"].Passed, res["panic:bed"].Seen)
		assert.True(t, res["presence:1"].Passed, res["presence:1"].Seen)
	})
}

func TestWalkLight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestLight})
		require.NoError(t, err)
		var names []string
		for _, l := range lines {
			names = append(names, l.Name())
			assert.True(t, l.Passed, l.Name())
		}
		assert.Equal(t, []string{"panic:bed", "panic:toilet", "alarm_sounder"}, names)

		// Without a sounder, the light test asks for the alarm light.
		spec := roomSpec()
		delete(spec.Outputs, controller.OutputAlarmSounder)
		r2 := newRoom(t, spec)
		lines, err = commission.Walk(context.Background(), r2, newInstaller(t, r2), commission.WalkOptions{Mode: controller.TestLight})
		require.NoError(t, err)
		assert.Equal(t, "alarm_light", lines[len(lines)-1].Name())
	})
}

// TestWalkInterrupted: Ctrl-C while the alarm light flashes its panic
// pattern: every output is off when Walk returns, with ctx's error.
func TestWalkInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		ctx, cancel := context.WithCancel(context.Background())
		inst.onConfirm = func(s commission.Step) {
			if s.Output == controller.OutputAlarmLight {
				require.NotEqual(t, controller.ModeOff, r.Outputs()[controller.OutputAlarmLight], "on while asked about")
				cancel()
			}
		}
		_, err := commission.Walk(ctx, r, inst, commission.WalkOptions{Mode: controller.TestFull})
		require.ErrorIs(t, err, context.Canceled)
		allOff(t, r)

		// Interrupted while a line is watched: the same.
		r2 := newRoom(t, roomSpec())
		inst2 := newInstaller(t, r2)
		ctx2, cancel2 := context.WithCancel(context.Background())
		inst2.acts["lock"] = func(commission.Step) { time.AfterFunc(time.Second, cancel2) }
		_, err = commission.Walk(ctx2, r2, inst2, commission.WalkOptions{Mode: controller.TestFull})
		require.ErrorIs(t, err, context.Canceled)
		allOff(t, r2)
	})
}

// TestWalkNoAnswer: an output nobody answers about within the wait is not
// confirmed, and is off again.
func TestWalkNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := &silent{installer: newInstaller(t, r)}
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestLight, Wait: 30 * time.Second})
		require.NoError(t, err)
		res := results(lines)
		assert.Equal(t, controller.FaultNotConfirmed, res["alarm_sounder"].Fault)
		assert.Equal(t, "no answer within 30s", res["alarm_sounder"].Seen)
		allOff(t, r)
	})
}

// silent never answers a question.
type silent struct{ *installer }

func (s *silent) Confirm(ctx context.Context, _ commission.Step) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// TestWalkSwappedLines: pressing 'bed' moves the line configured as
// 'toilet': bed never changed, and the report says which line did.
func TestWalkSwappedLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		swap := func(s commission.Step) {
			other := s
			other.Point = map[string]string{"bed": "toilet", "toilet": "bed"}[s.Point]
			inst.move(other, s.Kind == commission.StepAct)
		}
		inst.acts["panic:bed"], inst.acts["panic:toilet"] = swap, swap
		lines, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestLight, Wait: 10 * time.Second})
		require.NoError(t, err)
		res := results(lines)
		assert.Equal(t, controller.FaultNeverChanged, res["panic:bed"].Fault)
		assert.Contains(t, res["panic:bed"].Seen, "meanwhile panic point 'toilet' changed: are lines swapped?")
	})
}

// TestWalkLinesUnreadable: when the lines cannot be read (here: another
// reader holds them), the walk-through stops with that error, asks nothing
// and leaves every output off.
func TestWalkLinesUnreadable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, make(chan device.Reading, 64)) }()
		synctest.Wait()
		inst := newInstaller(t, r)
		_, err := commission.Walk(context.Background(), r, inst, commission.WalkOptions{Mode: controller.TestFull})
		require.ErrorContains(t, err, "read the input lines: run inputs: already running")
		assert.Empty(t, inst.steps)
		allOff(t, r)
		cancel()
		<-done
	})
}

func TestReportCarriesTheCardsSyncLatency(t *testing.T) {
	r := commission.Report{Room: "room-1", Passed: true, Sync: &commission.SyncReport{Disk: "/dev/mmcblk0p2 on /var/lib/roomd", N: 200,
		P50: 2 * time.Millisecond, P99: 31 * time.Millisecond, Max: 40 * time.Millisecond, Limit: 250 * time.Millisecond}}
	assert.Contains(t, string(r.Text()), "card:     /dev/mmcblk0p2 on /var/lib/roomd: sync p50 2ms, p99 31ms, longest 40ms over 200 syncs (warning above p99 250ms): fine")
	assert.Contains(t, string(r.JSON()), `"p99_ms": 31`)
	r.Sync.P99 = 400 * time.Millisecond
	assert.Contains(t, string(r.Text()), "TOO SLOW")
}
