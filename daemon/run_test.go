package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
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

// room is one Run of the loop inside a synctest bubble, on a real journal.
type room struct {
	t       *testing.T
	dir     string
	src     *fakeSources
	fs      *flakyFS
	j       *journal.Journal
	in      *fakeInputs
	out     *fakeOutputs
	cmds    chan controller.Command
	faults  chan controller.Fault
	notify  *fakeNotifier
	logs    *bytes.Buffer
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func startRoom(t *testing.T, dir string, src *fakeSources, tweak func(*daemon.Options, *daemon.Deps)) *room {
	t.Helper()
	return startRoomWith(t, dir, src, nil, tweak)
}

// startRoomWith is startRoom with the journal's options changed by jopt.
func startRoomWith(t *testing.T, dir string, src *fakeSources, jopt func(*journal.Options), tweak func(*daemon.Options, *daemon.Deps)) *room {
	t.Helper()
	r := &room{t: t, dir: dir, src: src, fs: &flakyFS{}, in: newInputs(), out: newOutputs(),
		cmds: make(chan controller.Command), faults: make(chan controller.Fault, 4),
		notify: &fakeNotifier{}, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	o := journal.Options{FS: r.fs}
	if jopt != nil {
		jopt(&o)
	}
	j, err := journal.Open(dir, o)
	require.NoError(t, err)
	r.j = j
	opts := daemon.Options{
		Room:   "room-1",
		Policy: testPolicy(),
		// A year before synctest's bubbles start (2000-01-01 UTC, moved
		// by the run's shift like every wall reading in the bubble).
		MinPlausible: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).Add(wallclock.Shift()),
	}
	deps := daemon.Deps{Inputs: r.in, Outputs: r.out, Journal: j, Commands: r.cmds, Faults: r.faults,
		Clock: src, Notifier: r.notify,
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
			_ = j.Close()
		}
	})
	synctest.Wait()
	return r
}

// stop cancels the run, waits for it to return and closes the journal.
func (r *room) stop() {
	r.t.Helper()
	r.cancel()
	r.stopped = true
	require.NoError(r.t, <-r.done)
	require.NoError(r.t, r.j.Close())
}

// advance lets fake time pass (the bubble's clock) and the loop settle.
func advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func (r *room) input(in controller.Input, l controller.Level) {
	r.in.ch <- device.Reading{Input: in, Level: l, At: wallclock.Now()}
	synctest.Wait()
}

// command sends c as operator op and returns the reply the journal holds.
func (r *room) commandAs(op string, c controller.Command) journal.Reply {
	r.t.Helper()
	c.By = op
	r.cmds <- c
	synctest.Wait()
	reps := r.replies()
	require.NotEmpty(r.t, reps)
	rep := reps[len(reps)-1]
	require.Equal(r.t, c.RequestID, rep.Reply.RequestID)
	require.Equal(r.t, c.Action, rep.Reply.Action)
	return rep
}

func (r *room) command(c controller.Command) controller.Reply { return r.commandAs("", c).Reply }

// entries returns every entry the journal holds, in order.
func (r *room) entries() []*journal.Entry {
	var out []*journal.Entry
	for lsn := r.j.First(); lsn <= r.j.Last(); lsn++ {
		e, err := r.j.Get(lsn)
		if errors.Is(err, journal.ErrLost) {
			continue // damage the test made
		}
		require.NoError(r.t, err)
		out = append(out, e)
	}
	return out
}

func (r *room) recs() []controller.Record {
	var out []controller.Record
	for _, e := range r.entries() {
		out = append(out, e.Records...)
	}
	return out
}

func (r *room) replies() []journal.Reply {
	var out []journal.Reply
	for _, e := range r.entries() {
		out = append(out, e.Replies...)
	}
	return out
}

// snap is the state the journal holds now.
func (r *room) snap() controller.Snapshot {
	s, _ := r.j.Latest()
	require.NotNil(r.t, s)
	return *s
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

func alertOf(t *testing.T, alerts []controller.Alert, k controller.AlertKind, src string) controller.Alert {
	t.Helper()
	for _, a := range alerts {
		if a.Kind == k && (src == "" || a.Source == src) {
			return a
		}
	}
	t.Fatalf("no %s %s alert in %+v", k, src, alerts)
	return controller.Alert{}
}

func TestTwoHourVisit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		r := startRoom(t, dir, newSources(), nil)
		assert.Equal(t, 1, r.notify.count("READY=1"))
		assert.Equal(t, []controller.EventType{controller.EventControllerStarted}, types(r.recs()))
		r.quietRoom()

		rep := r.commandAs("guard-7", controller.Command{RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: 2 * time.Hour})
		require.True(t, rep.Reply.OK(), "%+v", rep)
		assert.Equal(t, "guard-7", rep.Operator, "the reply is kept with who asked")
		start := r.snap()
		require.NotNil(t, start.Visit)
		assert.Equal(t, 2*time.Hour, start.Visit.EndsAt.Sub(start.Visit.StartedAt))
		assert.Equal(t, controller.ModeOn, r.out.mode(controller.OutputInUse).Mode)
		seq0 := lastSeq(r.recs())

		advance(110*time.Minute - time.Second)
		assert.Empty(t, since(r.recs(), seq0), "nothing before the first warning")
		advance(time.Second)
		got := since(r.recs(), seq0)
		require.Equal(t, []controller.EventType{controller.EventVisitWarning}, types(got))
		assert.Equal(t, 10*time.Minute, got[0].Remaining)
		assert.Equal(t, controller.SetOutput{Output: controller.OutputWarning, Mode: controller.ModeOn, Pulses: 1}, r.out.mode(controller.OutputWarning))

		advance(8 * time.Minute)
		got = since(r.recs(), seq0)
		require.Equal(t, []controller.EventType{controller.EventVisitWarning, controller.EventVisitWarning}, types(got))

		advance(2 * time.Minute) // deadline
		got = since(r.recs(), seq0)
		require.Len(t, got, 3)
		require.Equal(t, controller.EventAlertRaised, got[2].Type)
		assert.Equal(t, controller.AlertTimeUp, got[2].Alert.Kind)
		assert.Equal(t, controller.PhaseOvertime, r.snap().Phase)
		assert.Equal(t, controller.ModeBlink, r.out.mode(controller.OutputWarning).Mode)
		assert.Equal(t, controller.ModeOff, r.out.mode(controller.OutputAlarmLight).Mode, "time_up starts as a warning")

		advance(2 * time.Minute) // escalation
		got = since(r.recs(), seq0)
		require.Len(t, got, 4)
		require.NotNil(t, got[3].Alert, "%v", got[3].Type)
		assert.Equal(t, controller.SeverityCritical, got[3].Alert.Severity)

		assert.Equal(t, controller.ModeTimeUp, r.out.mode(controller.OutputAlarmLight).Mode)
		assert.Equal(t, controller.ModeTimeUp, r.out.mode(controller.OutputAlarmSounder).Mode)

		alert := alertOf(t, r.snap().Alerts, controller.AlertTimeUp, "")
		require.True(t, r.command(controller.Command{RequestID: "r2", Action: controller.ActionAckAlert, AlertID: alert.ID}).OK())
		assert.Equal(t, controller.ModeOn, r.out.mode(controller.OutputAlarmLight).Mode, "acknowledged: steady")
		assert.Equal(t, controller.ModeOff, r.out.mode(controller.OutputAlarmSounder).Mode, "acknowledged: silenced")
		require.True(t, r.command(controller.Command{RequestID: "r3", Action: controller.ActionEndVisit}).OK())
		got = since(r.recs(), seq0)
		assert.Equal(t, []controller.EventType{controller.EventVisitWarning, controller.EventVisitWarning,
			controller.EventAlertRaised, controller.EventAlertEscalated, controller.EventAlertAcked,
			controller.EventVisitEnded, controller.EventAlertCleared}, types(got))
		for _, o := range controller.Outputs {
			assert.Equal(t, controller.ModeOff, r.out.mode(o).Mode, "output %s", o)
		}

		// Seq is strictly increasing with no gaps, and every record is in
		// the journal before the loop moves on.
		for i, rec := range r.recs() {
			assert.Equal(t, uint64(i+1), rec.Seq)
		}
		// No visit id above debug level in the logs.
		assert.NotContains(t, r.logs.String(), "v-1")

		safes := r.out.safeCount()
		r.stop()
		assert.Greater(t, r.out.safeCount(), safes, "outputs safe at shutdown")
		assert.Equal(t, 1, r.notify.count("STOPPING=1"))
	})
}

func TestIdleRoomWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.quietRoom()
		advance(10 * time.Second)
		last := r.j.Last()
		size := r.j.Size()
		advance(10 * time.Hour)
		assert.Equal(t, last, r.j.Last(), "no entry while nothing happens")
		assert.Equal(t, size, r.j.Size())
		r.stop()
	})
}

func TestStepsThatArriveTogetherShareOneAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.quietRoom()
		// Many commands queued at once: far fewer appends than commands. The
		// commands go in from a goroutine, as the edge sends them.
		before := len(r.entries())
		go func() {
			for i := range 50 {
				r.cmds <- controller.Command{RequestID: string(rune('a' + i%26)), Action: controller.ActionGetState}
			}
		}()
		synctest.Wait()
		es := r.entries()[before:]
		replies := 0
		for _, e := range es {
			replies += len(e.Replies)
		}
		assert.Equal(t, 50, replies, "every command has its reply in the journal")
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
		endsAt := r.snap().Visit.EndsAt
		ep := r.j.Epoch()
		advance(20 * time.Minute)
		r.input(controller.InputPresence, controller.LevelActive) // somebody inside: no vacancy end
		r.input(controller.InputDoor, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelInactive)
		seq1 := lastSeq(r.recs())
		n := len(r.recs())
		r.stop()

		advance(5 * time.Minute) // down for five minutes, same boot
		r2 := startRoom(t, dir, src, nil)
		recs := r2.recs()[n:]
		require.NotEmpty(t, recs)
		assert.Equal(t, controller.EventControllerStarted, recs[0].Type)
		assert.True(t, recs[0].Resumed)
		assert.Equal(t, seq1+1, recs[0].Seq, "seq continues")
		assert.Equal(t, ep, r2.j.Epoch(), "the epoch continues")
		assert.Zero(t, count(recs, controller.EventVisitStarted), "no duplicate visit_started")
		st := r2.snap()
		require.NotNil(t, st.Visit)
		assert.WithinDuration(t, endsAt, st.Visit.EndsAt, 0, "deadline unchanged")
		assert.Equal(t, controller.ModeOn, r2.out.mode(controller.OutputInUse).Mode)
		for _, a := range st.Alerts {
			assert.NotEqual(t, controller.AlertSystemFault, a.Kind, "clean resume raises no fault: %+v", a)
		}

		advance(25 * time.Minute) // the first warning, on the original schedule
		got := since(r2.recs(), seq1+1)
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
		st := r2.snap()
		require.NotNil(t, st.Visit)
		a := alertOf(t, st.Alerts, controller.AlertSystemFault, contract.SourceClock)
		assert.Contains(t, a.Detail, "wall-clock-implausible")
		// The downtime is missing from the axis: the visit keeps 50 minutes.
		assert.Equal(t, 50*time.Minute, st.Visit.EndsAt.Sub(st.Now))
		r2.stop()
	})
}

func TestDamagedJournalRaisesFaultAndNewEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, nil)
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		r.input(controller.InputDoor, controller.LevelActive)
		ep := r.j.Epoch()
		seq := lastSeq(r.recs())
		r.stop()
		segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
		require.NoError(t, err)
		b, err := os.ReadFile(segs[0])
		require.NoError(t, err)
		b[len(b)-5] ^= 0x40 // inside the last entry: what it announced cannot be proved
		require.NoError(t, os.WriteFile(segs[0], b, 0o600))

		r2 := startRoom(t, dir, src, nil)
		assert.NotEqual(t, ep, r2.j.Epoch(), "records continue in a new epoch")
		st := r2.snap()
		a := alertOf(t, st.Alerts, controller.AlertSystemFault, contract.SourceJournal)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		assert.Contains(t, a.Detail, "new epoch")
		assert.Contains(t, a.Detail, "damaged files kept as")
		assert.Equal(t, controller.ModeFault, r2.out.mode(controller.OutputAlarmLight).Mode, "louder, locally too")
		// The room resumed from the last intact snapshot: the visit runs.
		require.NotNil(t, st.Visit)
		// The panic right after reaches consumers under a key they never saw.
		r2.input(controller.InputPanic, controller.LevelActive)
		recs := r2.recs()
		panicRec := recs[len(recs)-1]
		require.Equal(t, controller.EventAlertRaised, panicRec.Type)
		require.Equal(t, controller.AlertPanic, panicRec.Alert.Kind)
		e := r2.entries()[len(r2.entries())-1]
		assert.NotEqual(t, ep, e.Epoch)
		assert.LessOrEqual(t, panicRec.Seq, seq+5, "seq may repeat a number, never an (epoch, seq) key")
		r2.stop()
	})
}

func TestDiskRefusesJournalRaisesAndClearsFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, func(o *daemon.Options, _ *daemon.Deps) { o.RetryEvery = time.Second })
		r.quietRoom()
		ep := r.j.Epoch()
		r.fs.full.Store(true)
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK(),
			"commands still work; the reply is visible from memory")
		r.input(controller.InputPanic, controller.LevelActive)
		st := r.snap()
		a := alertOf(t, st.Alerts, controller.AlertSystemFault, contract.SourceJournalWrite)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		assert.Contains(t, a.Detail, "no space left on device")
		assert.Equal(t, controller.ModePanic, r.out.mode(controller.OutputAlarmLight).Mode, "the panic pattern, the most urgent")
		assert.NotEqual(t, ep, r.j.Epoch(), "what lives only in memory has its own epoch")
		require.Error(t, r.j.Degraded())

		r.fs.full.Store(false)
		advance(time.Second) // the retry writes the backlog
		require.NoError(t, r.j.Degraded())
		st = r.snap()
		for _, a := range st.Alerts {
			assert.NotEqual(t, contract.SourceJournalWrite, a.Source, "the fault clears once the disk takes the journal")
		}
		// Every record is there, in order, and survives a restart.
		recs := r.recs()
		for i := range recs {
			assert.Equal(t, uint64(i+1), recs[i].Seq)
		}
		r.stop()
		r2 := startRoom(t, dir, src, nil)
		assert.Len(t, r2.recs(), len(recs)+1) // + controller_started
		assert.Equal(t, 1, count(r2.recs(), controller.EventVisitStarted))
		r2.stop()
	})
}

func TestInputBackendFailureRaisesFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), func(_ *daemon.Options, d *daemon.Deps) {
			d.Inputs = &fakeInputs{err: os.ErrPermission}
		})
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceInputs)
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
		alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceOutputs)
		r.stop()
	})
}

func TestFaultsFromCollaborators(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.faults <- controller.Fault{Source: "link", Active: true, Severity: controller.SeverityCritical, Detail: "no PUBACK"}
		synctest.Wait()
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, "link")
		assert.Equal(t, "no PUBACK", a.Detail)
		r.faults <- controller.Fault{Source: "link", Active: false}
		synctest.Wait()
		assert.Empty(t, r.snap().Alerts)
		r.stop()
	})
}

func TestWatchdogPings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), func(o *daemon.Options, _ *daemon.Deps) {
			o.Watchdog = 5 * time.Second
		})
		advance(time.Minute)
		assert.Equal(t, 12, r.notify.count("WATCHDOG=1"))

		// A hung loop (an output that never returns) sends no pings.
		block := make(chan struct{})
		r.out.mu.Lock()
		r.out.block = block
		r.out.mu.Unlock()
		go r.input(controller.InputPanic, controller.LevelActive)
		advance(time.Second)
		n := r.notify.count("WATCHDOG=1")
		advance(5 * time.Minute)
		assert.Equal(t, n, r.notify.count("WATCHDOG=1"), "a hung loop sends no pings")
		r.out.mu.Lock()
		r.out.block = nil
		r.out.mu.Unlock()
		close(block)
		advance(time.Minute)
		assert.Greater(t, r.notify.count("WATCHDOG=1"), n, "pings resume")
		r.stop()
	})
}

func TestRunRejectsBadOptions(t *testing.T) {
	err := daemon.Run(context.Background(), daemon.Options{}, daemon.Deps{})
	require.Error(t, err)
	for _, want := range []string{"room is empty", "max_duration", "no inputs", "no outputs", "no journal"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestFastClockCompressesDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := daemon.NewFastClock(60)
		var r *room
		r = startRoom(t, t.TempDir(), newSources(), func(_ *daemon.Options, d *daemon.Deps) { d.Clock = clock })
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v1", Duration: 2 * time.Hour}).OK())
		advance(119 * time.Second)
		assert.Equal(t, controller.PhaseInVisit, r.snap().Phase)
		advance(2 * time.Second)
		st := r.snap()
		assert.Equal(t, controller.PhaseOvertime, st.Phase)
		alertOf(t, st.Alerts, controller.AlertTimeUp, "")
		r.stop()
	})
}

// TestSavedAxisYearsAheadIsCorrectedOnceTheClockIsSynchronised: a wrong wall
// clock put the axis three years ahead before a reboot. After the reboot the
// axis is kept (nothing better is known) until the wall clock is
// synchronised; then the wall clock wins within a minute, and the visit
// keeps its remaining time.
func TestSavedAxisYearsAheadIsCorrectedOnceTheClockIsSynchronised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		src.wall = 3 * 365 * 24 * time.Hour // the clock is three years ahead
		r := startRoom(t, dir, src, nil)
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		wrongEnds := r.snap().Visit.EndsAt
		advance(10 * time.Minute)
		r.stop()

		advance(time.Minute)
		src.reboot("boot-2")
		src.wall = 0 // a correct, not yet synchronised clock
		r2 := startRoom(t, dir, src, nil)
		st := r2.snap()
		require.NotNil(t, st.Visit)
		assert.True(t, wrongEnds.Equal(st.Visit.EndsAt), "kept while nothing better is known")
		alertOf(t, st.Alerts, controller.AlertSystemFault, contract.SourceClock)
		before := lastSeq(r2.recs())

		src.mu.Lock()
		src.synced = true
		src.mu.Unlock()
		advance(daemon.ClockCheckEvery)
		st = r2.snap()
		require.NotNil(t, st.Visit)
		assert.WithinDuration(t, wallclock.Now(), st.Now, time.Second, "the axis is the synchronised wall clock")
		// 50 minutes were left at the restart (the minute of downtime is
		// lost to an axis that could not trust the wall clock); one more
		// minute has passed since.
		assert.Equal(t, 49*time.Minute, st.Visit.EndsAt.Sub(st.Now), "the visit keeps its remaining time")
		r2.quietRoom()
		r2.input(controller.InputDoor, controller.LevelActive)
		after := since(r2.recs(), before)
		require.NotEmpty(t, after)
		for _, rec := range after {
			assert.WithinDuration(t, wallclock.Now(), rec.At, time.Second, "dated by the synchronised clock: %v", rec)
		}
		r2.stop()
	})
}

// TestSavedAxisYearsAheadWithASynchronisedClockAtStart: corrected at once.
func TestSavedAxisYearsAheadWithASynchronisedClockAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		src.wall = 3 * 365 * 24 * time.Hour
		r := startRoom(t, dir, src, nil)
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		r.stop()
		src.reboot("boot-2")
		src.wall = 0
		src.synced = true
		r2 := startRoom(t, dir, src, nil)
		st := r2.snap()
		assert.WithinDuration(t, wallclock.Now(), st.Now, time.Second)
		require.NotNil(t, st.Visit)
		assert.Equal(t, time.Hour, st.Visit.EndsAt.Sub(st.Now))
		a := alertOf(t, st.Alerts, controller.AlertSystemFault, contract.SourceClock)
		assert.Equal(t, controller.SeverityWarning, a.Severity)
		r2.stop()
	})
}

// TestSavedAxisYearsBehind: the last run's clock was three years behind;
// after the reboot the (plausible) wall clock wins, and what fell due in
// those three years is announced once, at the restart, with its true time.
func TestSavedAxisYearsBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		src.wall = -3 * 365 * 24 * time.Hour
		r := startRoom(t, dir, src, nil)
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		ends := r.snap().Visit.EndsAt
		n := len(r.recs())
		r.stop()
		src.reboot("boot-2")
		src.wall = 0
		r2 := startRoom(t, dir, src, nil)
		after := r2.recs()[n:]
		assert.Equal(t, 1, count(after, controller.EventAlertRaised), "time_up once: %v", types(after))
		for _, rec := range after {
			assert.WithinDuration(t, wallclock.Now(), rec.At, time.Second, "announced at the restart, never inside the downtime")
			if rec.Type == controller.EventAlertRaised {
				assert.Equal(t, controller.AlertTimeUp, rec.Alert.Kind)
				assert.Equal(t, ends, rec.DueAt, "with its true time")
				assert.Equal(t, controller.SeverityCritical, rec.Alert.Severity, "its escalation fell due too")
			}
		}
		r2.stop()
	})
}

// delayedSyncs makes every sync of the room's journal wait what delay
// holds first (a card as slow as the test wants, changed at any time).
func delayedSyncs(delay *atomic.Int64) func(*journal.Options) {
	return func(o *journal.Options) {
		o.FS = journal.DelayFS{FS: o.FS, Delay: func() time.Duration { return time.Duration(delay.Load()) }}
	}
}

// TestSlowCardRaisesASyncWarning: injected sync latency (a card whose
// syncs take 300 ms, then one that stalls for 1.2 s) raises a warning of
// source journal_sync naming the disk, while every step still reaches the
// journal at once; fast syncs clear it.
func TestSlowCardRaisesASyncWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		var delay atomic.Int64
		delay.Store(int64(300 * time.Millisecond))
		r := startRoomWith(t, dir, src, delayedSyncs(&delay), nil)
		r.quietRoom()
		for i := range daemon.SyncMinSamples + 5 {
			lvl := controller.LevelActive
			if i%2 == 1 {
				lvl = controller.LevelInactive
			}
			r.input(controller.InputDoor, lvl)
			advance(400 * time.Millisecond)
		}
		advance(daemon.SyncCheckEvery)
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceJournalSync)
		assert.Equal(t, controller.SeverityWarning, a.Severity)
		assert.Contains(t, a.Detail, "syncs slowly")
		assert.Contains(t, a.Detail, dir, "the fault names the disk")

		// Fast again: the warning clears.
		delay.Store(int64(time.Millisecond))
		for i := range 2 * daemon.SyncMinSamples {
			lvl := controller.LevelActive
			if i%2 == 1 {
				lvl = controller.LevelInactive
			}
			r.input(controller.InputDoor, lvl)
			advance(journal.SyncGap + 10*time.Millisecond) // one sync per step
		}
		advance(daemon.SyncCheckEvery)
		for _, a := range r.snap().Alerts {
			if a.Source == contract.SourceJournalSync {
				assert.False(t, a.Active(), "cleared once the syncs are fine: %+v %+v", r.j.SyncStats().Last(daemon.SyncJudged), a)
			}
		}

		// One stall is enough, at once.
		delay.Store(int64(1200 * time.Millisecond))
		r.input(controller.InputDoor, controller.LevelActive)
		advance(1300 * time.Millisecond)
		a = alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceJournalSync)
		assert.True(t, a.Active())
		assert.Contains(t, a.Detail, "stalled")
		delay.Store(0)
		r.stop()
	})
}

// TestHungSyncRaisesASyncWarning: a card that stops answering never
// returns from its sync, so no finished sync is ever slow; the sync still
// running past the stall limit raises the warning all the same, while a
// panic goes out at once.
func TestHungSyncRaisesASyncWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		var delay atomic.Int64
		r := startRoomWith(t, dir, src, delayedSyncs(&delay), nil)
		r.quietRoom()
		delay.Store(int64(time.Hour)) // the next sync hangs, as far as this test looks
		r.input(controller.InputDoor, controller.LevelActive)
		advance(journal.SyncGap + 10*time.Millisecond)
		require.Greater(t, r.j.SyncStats().Last(1).Pending, time.Duration(0), "a sync is running")
		for _, a := range r.snap().Alerts {
			assert.NotEqual(t, contract.SourceJournalSync, a.Source, "not before the check")
		}

		r.input(controller.InputPanic, controller.LevelActive)
		synctest.Wait()
		alertOf(t, r.snap().Alerts, controller.AlertPanic, "")
		advance(daemon.SyncCheckEvery)
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceJournalSync)
		assert.True(t, a.Active())
		assert.Equal(t, controller.SeverityWarning, a.Severity)
		assert.Contains(t, a.Detail, "a sync has not returned for")
		assert.Contains(t, a.Detail, dir, "the fault names the disk")
		delay.Store(0)
		r.stop()
	})
}

// TestPowerCutNeverReusesAnAlertID: a panic published from memory, then
// the system dies before the card synced it. The restart (another boot)
// raises a critical journal fault saying what the room may have forgotten,
// continues in a new epoch, and the next panic gets a new alert id and a
// seq above every one that may have gone out.
func TestPowerCutNeverReusesAnAlertID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		var delay atomic.Int64
		slow := func(boot string) func(*journal.Options) {
			return func(o *journal.Options) {
				o.BootID = boot
				delayedSyncs(&delay)(o)
			}
		}
		r := startRoomWith(t, dir, src, slow("boot-1"), nil)
		r.quietRoom()
		require.True(t, r.command(controller.Command{RequestID: "v", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour}).OK())
		require.NoError(t, r.j.Sync())
		advance(2 * journal.HeadEvery) // the reservation reaches the head
		ep := r.j.Epoch()
		segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
		require.NoError(t, err)
		fi, err := os.Stat(segs[len(segs)-1])
		require.NoError(t, err)
		synced := fi.Size()

		delay.Store(int64(time.Hour)) // the card hangs: nothing more is synced
		r.input(controller.InputPanic, controller.LevelActive)
		a := alertOf(t, r.snap().Alerts, controller.AlertPanic, "")
		published := r.snap().Seq
		// The power cut: the process and the kernel's cache are gone.
		r.cancel()
		require.NoError(t, <-r.done)
		r.stopped = true
		r.j.Abandon()
		require.NoError(t, os.Truncate(segs[len(segs)-1], synced))
		delay.Store(0)

		r2 := startRoomWith(t, dir, src, slow("boot-2"), nil)
		defer advance(2 * time.Hour) // the old syncer's hung sync ends
		assert.NotEqual(t, ep, r2.j.Epoch(), "a new epoch: consumers may hold records this journal lost")
		f := alertOf(t, r2.snap().Alerts, controller.AlertSystemFault, contract.SourceJournal)
		assert.Equal(t, controller.SeverityCritical, f.Severity)
		assert.Contains(t, f.Detail, "may have forgotten")
		assert.NotNil(t, r2.snap().Visit, "the visit synced before the cut is still running")
		r2.input(controller.InputPanic, controller.LevelInactive)
		r2.input(controller.InputPanic, controller.LevelActive)
		b := alertOf(t, r2.snap().Alerts, controller.AlertPanic, "")
		assert.NotEqual(t, a.ID, b.ID, "alert ids are unique for the life of the room")
		for _, rec := range r2.recs() {
			if rec.Type == controller.EventAlertRaised && rec.Alert.Kind == controller.AlertPanic {
				assert.Greater(t, rec.Seq, published, "seqs continue above every seq that may have gone out")
			}
		}
		r2.stop()
	})
}
