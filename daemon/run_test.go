package daemon_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
)

func testPolicy() controller.Policy {
	return controller.Policy{
		Name:            "test",
		MaxDuration:     3 * time.Hour,
		Warnings:        []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter:   2 * time.Minute,
		RepeatEvery:     time.Minute,
		ReannounceAfter: 5 * time.Minute,
		LockGrace:       10 * time.Second,
		EndOnVacancy:    true,
		VacancyHold:     2 * time.Minute,
		VacateTimeout:   10 * time.Minute,
	}
}

// room is one Run of the loop inside a synctest bubble.
type room struct {
	t       *testing.T
	dir     string
	src     *fakeSources
	in      *fakeInputs
	out     *fakeOutputs
	link    *fakeLink
	notify  *fakeNotifier
	logs    *bytes.Buffer
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func startRoom(t *testing.T, dir string, src *fakeSources, tweak func(*daemon.Options, *daemon.Deps)) *room {
	t.Helper()
	r := &room{t: t, dir: dir, src: src, in: newInputs(), out: newOutputs(), link: newLink(),
		notify: &fakeNotifier{}, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	opts := daemon.Options{
		Room:         "room-1",
		Policy:       testPolicy(),
		StateDir:     dir,
		Heartbeat:    30 * time.Second,
		MinPlausible: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	deps := daemon.Deps{Inputs: r.in, Outputs: r.out, Link: r.link, Clock: src, Notifier: r.notify,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if tweak != nil {
		tweak(&opts, &deps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- daemon.Run(ctx, opts, deps) }()
	t.Cleanup(func() {
		if !r.stopped {
			cancel()
			<-r.done
		}
	})
	synctest.Wait()
	return r
}

// stop cancels the run and waits for it to return.
func (r *room) stop() {
	r.t.Helper()
	r.cancel()
	r.stopped = true
	require.NoError(r.t, <-r.done)
}

// advance lets fake time pass (the bubble's clock) and the loop settle.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func (r *room) input(in controller.Input, l controller.Level) {
	r.in.ch <- device.Reading{Input: in, Level: l, At: time.Now()}
	synctest.Wait()
}

func (r *room) command(c controller.Command) controller.Reply {
	r.t.Helper()
	r.link.cmds <- c
	synctest.Wait()
	rep := r.link.lastReply()
	require.Equal(r.t, c.Action, rep.Action)
	return rep
}

func (r *room) quietRoom() {
	r.input(controller.InputDoor, controller.LevelInactive)
	r.input(controller.InputLock, controller.LevelInactive)
	r.input(controller.InputPresence, controller.LevelInactive)
	r.input(controller.InputPanic, controller.LevelInactive)
	r.input(controller.InputStaff, controller.LevelInactive)
}

func types(recs []controller.Record) []controller.EventType {
	out := make([]controller.EventType, len(recs))
	for i, r := range recs {
		out[i] = r.Type
	}
	return out
}

func since(recs []controller.Record, seq uint64) []controller.Record {
	var out []controller.Record
	for _, r := range recs {
		if r.Seq > seq {
			out = append(out, r)
		}
	}
	return out
}

func lastSeq(recs []controller.Record) uint64 {
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].Seq
}

func count(recs []controller.Record, typ controller.EventType) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func alertOf(t *testing.T, st controller.State, k controller.AlertKind) controller.Alert {
	t.Helper()
	for _, a := range st.Alerts {
		if a.Kind == k {
			return a
		}
	}
	t.Fatalf("no %s alert in state %+v", k, st.Alerts)
	return controller.Alert{}
}

func TestTwoHourVisit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		r := startRoom(t, dir, newSources(), nil)
		assert.Equal(t, 1, r.notify.count("READY=1"))
		assert.Equal(t, []controller.EventType{controller.EventControllerStarted}, types(r.link.recs()))
		r.quietRoom()

		rep := r.command(controller.Command{RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: 2 * time.Hour})
		require.True(t, rep.OK(), "%+v", rep)
		start := r.link.lastState()
		require.NotNil(t, start.Visit)
		assert.Equal(t, 2*time.Hour, start.Visit.EndsAt.Sub(start.Visit.StartedAt))
		assert.Nil(t, start.Presence, "no presence during a visit")
		assert.Equal(t, controller.ModeOn, r.out.mode(controller.OutputInUse).Mode)
		seq0 := lastSeq(r.link.recs())

		advance(110*time.Minute - time.Second)
		assert.Empty(t, since(r.link.recs(), seq0), "nothing before the first warning")
		advance(time.Second)
		got := since(r.link.recs(), seq0)
		require.Equal(t, []controller.EventType{controller.EventVisitWarning}, types(got))
		assert.Equal(t, 10*time.Minute, got[0].Remaining)
		assert.Equal(t, controller.SetOutput{Output: controller.OutputWarning, Mode: controller.ModeOn, Pulses: 1}, r.out.mode(controller.OutputWarning))

		advance(8 * time.Minute)
		got = since(r.link.recs(), seq0)
		require.Equal(t, []controller.EventType{controller.EventVisitWarning, controller.EventVisitWarning}, types(got))
		assert.Equal(t, uint8(2), r.out.mode(controller.OutputWarning).Pulses)

		advance(2 * time.Minute) // deadline
		got = since(r.link.recs(), seq0)
		require.Len(t, got, 3)
		assert.Equal(t, controller.EventAlertRaised, got[2].Type)
		assert.Equal(t, controller.AlertTimeUp, got[2].Alert.Kind)
		assert.Equal(t, controller.PhaseOvertime, r.link.lastState().Phase)
		assert.Equal(t, controller.ModeBlink, r.out.mode(controller.OutputWarning).Mode)
		assert.Equal(t, controller.ModeOff, r.out.mode(controller.OutputAlarmLight).Mode, "time_up starts as a warning")

		advance(2 * time.Minute) // escalation
		got = since(r.link.recs(), seq0)
		require.Len(t, got, 4)
		assert.Equal(t, controller.EventAlertEscalated, got[3].Type)
		assert.Equal(t, controller.SeverityCritical, got[3].Alert.Severity)
		assert.Equal(t, controller.ModeTimeUp, r.out.mode(controller.OutputAlarmLight).Mode)
		assert.Equal(t, controller.ModeTimeUp, r.out.mode(controller.OutputAlarmSounder).Mode)

		alert := alertOf(t, r.link.lastState(), controller.AlertTimeUp)
		rep = r.command(controller.Command{RequestID: "r2", Action: controller.ActionAckAlert, AlertID: alert.ID})
		require.True(t, rep.OK(), "%+v", rep)
		assert.Equal(t, controller.ModeOn, r.out.mode(controller.OutputAlarmLight).Mode, "acknowledged: steady")
		assert.Equal(t, controller.ModeOff, r.out.mode(controller.OutputAlarmSounder).Mode, "acknowledged: silenced")

		rep = r.command(controller.Command{RequestID: "r3", Action: controller.ActionEndVisit})
		require.True(t, rep.OK(), "%+v", rep)
		got = since(r.link.recs(), seq0)
		assert.Equal(t, []controller.EventType{controller.EventVisitWarning, controller.EventVisitWarning,
			controller.EventAlertRaised, controller.EventAlertEscalated, controller.EventAlertAcked,
			controller.EventVisitEnded, controller.EventAlertCleared}, types(got))
		for _, o := range controller.Outputs {
			assert.Equal(t, controller.ModeOff, r.out.mode(o).Mode, "output %s", o)
		}
		// Heartbeat: the state went out at least once per 30 s of the visit.
		assert.GreaterOrEqual(t, r.link.stateCount(), int((124*time.Minute)/(30*time.Second)))

		// Seq is strictly increasing with no gaps.
		for i, rec := range r.link.recs() {
			assert.Equal(t, uint64(i+1), rec.Seq)
		}
		// No visit id above debug level in the logs.
		assert.NotContains(t, r.logs.String(), "v-1")

		safes := r.out.safeCount()
		r.stop()
		assert.Greater(t, r.out.safeCount(), safes, "outputs safe at shutdown")
		assert.True(t, r.link.isClosed())
		assert.Equal(t, 1, r.notify.count("STOPPING=1"))
		st, err := daemon.LoadState(daemon.StatePath(dir))
		require.NoError(t, err)
		assert.Equal(t, controller.PhaseIdle, st.Controller.Phase)
		assert.Empty(t, st.Unsent)
	})
}

func TestHeartbeatFixedInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		n0 := r.link.stateCount()
		advance(10 * time.Minute)
		assert.Equal(t, n0+20, r.link.stateCount(), "one state per heartbeat when idle")
		// Activity does not shift the heartbeat.
		n1 := r.link.stateCount()
		advance(15 * time.Second)
		r.input(controller.InputDoor, controller.LevelInactive) // first reading: a state change
		advance(15 * time.Second)
		assert.Equal(t, n1+2, r.link.stateCount(), "the heartbeat fired on schedule after the change")
		r.stop()
	})
}

func TestRestartResumesVisit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, nil)
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v-9", Duration: time.Hour}).OK())
		endsAt := r.link.lastState().Visit.EndsAt
		advance(20 * time.Minute)
		r.input(controller.InputPresence, controller.LevelActive) // somebody inside: no vacancy end
		r.input(controller.InputDoor, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelInactive)
		// What a crash right now would leave on disk.
		crashed, err := os.ReadFile(daemon.StatePath(dir))
		require.NoError(t, err)
		seq1 := lastSeq(r.link.recs())
		r.stop()
		require.NoError(t, os.WriteFile(daemon.StatePath(dir), crashed, 0o600))

		advance(5 * time.Minute) // down for five minutes, same boot
		r2 := startRoom(t, dir, src, nil)
		recs := r2.link.recs()
		require.NotEmpty(t, recs)
		// The last step's record is offered again (same seq), then the resume.
		assert.Equal(t, controller.EventDoorClosed, recs[0].Type)
		assert.Equal(t, seq1, recs[0].Seq)
		assert.Equal(t, controller.EventControllerStarted, recs[1].Type)
		assert.True(t, recs[1].Resumed)
		assert.Equal(t, seq1+1, recs[1].Seq, "seq continues")
		assert.Zero(t, count(recs, controller.EventVisitStarted), "no duplicate visit_started")
		st := r2.link.lastState()
		require.NotNil(t, st.Visit)
		assert.WithinDuration(t, endsAt, st.Visit.EndsAt, 0, "deadline unchanged")
		assert.Equal(t, 35*time.Minute, st.Visit.Remaining)
		assert.Equal(t, controller.ModeOn, r2.out.mode(controller.OutputInUse).Mode)
		for _, a := range st.Alerts {
			assert.NotEqual(t, controller.AlertSystemFault, a.Kind, "clean resume raises no fault: %+v", a)
		}

		advance(25 * time.Minute) // the first warning, on the original schedule
		got := since(r2.link.recs(), seq1+1)
		require.Equal(t, []controller.EventType{controller.EventVisitWarning}, types(got))
		assert.WithinDuration(t, endsAt.Add(-10*time.Minute), got[0].At, 0)
		r2.stop()
	})
}

func TestRestartAfterRebootWithImplausibleClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, nil)
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v-9", Duration: time.Hour}).OK())
		advance(10 * time.Minute)
		r.stop()

		advance(3 * time.Minute)
		src.reboot("boot-2")
		src.wall = -24 * 365 * time.Hour // the wall clock is a year behind
		r2 := startRoom(t, dir, src, nil)
		st := r2.link.lastState()
		require.NotNil(t, st.Visit)
		a := alertOf(t, st, controller.AlertSystemFault)
		assert.Equal(t, daemon.SourceClock, a.Source)
		assert.Contains(t, a.Detail, "wall-clock-implausible")
		// The downtime is missing from the axis: the visit keeps 50 minutes.
		assert.Equal(t, 50*time.Minute, st.Visit.Remaining)
		r2.stop()
	})
}

func TestCorruptStateFileStartsFreshWithAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := daemon.StatePath(dir)
		require.NoError(t, os.WriteFile(path, []byte("roomd-state v1 crc32c=00000000 len=3\n{x}"), 0o600))
		r := startRoom(t, dir, newSources(), nil)

		recs := r.link.recs()
		require.Equal(t, []controller.EventType{controller.EventControllerStarted, controller.EventAlertRaised}, types(recs))
		a := recs[1].Alert
		assert.Equal(t, controller.AlertSystemFault, a.Kind)
		assert.Equal(t, daemon.SourceState, a.Source)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		assert.True(t, a.ClearOnAck)
		assert.Equal(t, controller.ModeFault, r.out.mode(controller.OutputAlarmLight).Mode)

		aside, err := filepath.Glob(path + ".corrupt-*")
		require.NoError(t, err)
		require.Len(t, aside, 1, "the corrupt file is kept aside")
		_, err = daemon.LoadState(path)
		require.NoError(t, err, "a fresh state file was written")

		rep := r.command(controller.Command{RequestID: "k", Action: controller.ActionAckAlert, AlertID: a.ID})
		require.True(t, rep.OK())
		assert.Empty(t, r.link.lastState().Alerts, "acknowledgement clears the notice")
		r.stop()
	})
}

func TestStateOfAnotherRoomIsNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, func(o *daemon.Options, _ *daemon.Deps) { o.Room = "room-2" })
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		r.stop()
		r2 := startRoom(t, dir, src, nil)
		st := r2.link.lastState()
		assert.Nil(t, st.Visit)
		assert.Equal(t, daemon.SourceState, alertOf(t, st, controller.AlertSystemFault).Source)
		r2.stop()
	})
}

func TestOutboxFullKeepsRecordsAndRaisesFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		r := startRoom(t, dir, newSources(), nil)
		r.link.setFull(true)
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		st := r.link.lastState()
		a := alertOf(t, st, controller.AlertSystemFault)
		assert.Equal(t, daemon.SourceOutbox, a.Source)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		n := len(r.link.recs())

		saved, err := daemon.LoadState(daemon.StatePath(dir))
		require.NoError(t, err)
		assert.NotEmpty(t, saved.Unsent, "refused records are kept in the state file")

		r.link.setFull(false)
		advance(daemon.DefaultRetryEvery)
		recs := r.link.recs()[n:]
		require.NotEmpty(t, recs)
		// Every record arrives, in order, ending with the fault's clearing.
		for i := range recs {
			assert.Equal(t, uint64(n+i+1), recs[i].Seq)
		}
		assert.Equal(t, 1, count(recs, controller.EventVisitStarted))
		last := recs[len(recs)-1]
		assert.Equal(t, controller.EventAlertCleared, last.Type)
		assert.Equal(t, daemon.SourceOutbox, last.Alert.Source)
		assert.Empty(t, r.link.lastState().Alerts)
		r.stop()
	})
}

func TestInputBackendFailureRaisesFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), func(_ *daemon.Options, d *daemon.Deps) {
			d.Inputs = &fakeInputs{err: os.ErrPermission}
		})
		a := alertOf(t, r.link.lastState(), controller.AlertSystemFault)
		assert.Equal(t, daemon.SourceInputs, a.Source)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		r.stop()
	})
}

func TestOutputFailureRaisesFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.out.mu.Lock()
		r.out.setErr = os.ErrClosed
		r.out.mu.Unlock()
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		assert.Equal(t, daemon.SourceOutputs, alertOf(t, r.link.lastState(), controller.AlertSystemFault).Source)
		r.stop()
	})
}

func TestWatchdogStopsWhenLoopHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), func(o *daemon.Options, _ *daemon.Deps) {
			o.Watchdog = 5 * time.Second
		})
		advance(time.Minute)
		assert.Equal(t, 12, r.notify.count("WATCHDOG=1"))

		block := make(chan struct{})
		r.link.mu.Lock()
		r.link.block = block
		r.link.mu.Unlock()
		advance(30 * time.Second) // the heartbeat hangs in PublishState
		n := r.notify.count("WATCHDOG=1")
		advance(5 * time.Minute)
		assert.Equal(t, n, r.notify.count("WATCHDOG=1"), "a hung loop sends no pings")

		r.link.mu.Lock()
		r.link.block = nil
		r.link.mu.Unlock()
		close(block)
		advance(time.Minute)
		assert.Greater(t, r.notify.count("WATCHDOG=1"), n, "pings resume")
		r.stop()
	})
}

func TestRunRejectsBadOptions(t *testing.T) {
	err := daemon.Run(context.Background(), daemon.Options{}, daemon.Deps{})
	require.Error(t, err)
	for _, want := range []string{"room is empty", "state dir is empty", "heartbeat", "max_duration", "no inputs", "no outputs", "no link"} {
		assert.Contains(t, err.Error(), want)
	}
	out := newOutputs()
	err = daemon.Run(context.Background(), daemon.Options{Room: "r", StateDir: filepath.Join(t.TempDir(), "missing"),
		Heartbeat: time.Second, Policy: testPolicy()}, daemon.Deps{Inputs: newInputs(), Outputs: out, Link: newLink()})
	require.ErrorContains(t, err, "state dir")
	assert.Positive(t, out.safeCount(), "outputs safe even when start fails")
}

func TestStateWriteFailureRaisesAndClearsFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		require.NoError(t, os.Mkdir(dir, 0o700))
		r := startRoom(t, dir, newSources(), nil)
		require.NoError(t, os.RemoveAll(dir)) // the state directory vanishes
		r.input(controller.InputDoor, controller.LevelInactive)
		a := alertOf(t, r.link.lastState(), controller.AlertSystemFault)
		assert.Equal(t, daemon.SourceStateWrite, a.Source)
		assert.Equal(t, controller.SeverityCritical, a.Severity)

		require.NoError(t, os.Mkdir(dir, 0o700))
		r.input(controller.InputDoor, controller.LevelActive)
		assert.Empty(t, r.link.lastState().Alerts, "the fault clears with the next good write")
		_, err := daemon.LoadState(daemon.StatePath(dir))
		require.NoError(t, err)
		r.stop()
	})
}
