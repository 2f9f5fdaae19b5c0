package room_test

import (
	"context"
	"fmt"
	"io/fs"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/room"
)

// countingFS is the real file system, counting what the journal writes and
// how often it syncs.
type countingFS struct {
	journal.OS
	bytes, syncs atomic.Int64
}

func (c *countingFS) OpenFile(name string, flag int, perm fs.FileMode) (journal.File, error) {
	f, err := c.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{File: f, c: c}, nil
}

func (c *countingFS) SyncDir(dir string) error {
	c.syncs.Add(1)
	return c.OS.SyncDir(dir)
}

type countingFile struct {
	journal.File
	c *countingFS
}

func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	f.c.bytes.Add(int64(len(p)))
	return f.File.WriteAt(p, off)
}

func (f countingFile) Sync() error {
	f.c.syncs.Add(1)
	return f.File.Sync()
}

// wearRoom runs a room without a broker on a fast clock, with a counting
// journal file system.
type wearRoom struct {
	*room.Room
	fs     *countingFS
	clock  *daemon.FastClock
	cancel context.CancelFunc
	done   chan error
}

func startWearRoom(tb testing.TB, speed float64) *wearRoom {
	tb.Helper()
	return startWearRoomPolicy(tb, speed, "italy")
}

func startWearRoomPolicy(tb testing.TB, speed float64, preset string) *wearRoom {
	tb.Helper()
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: room-1\nstate_dir: %s\npolicy: {preset: %s}\ndevice: {backend: sim}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n",
		tb.TempDir(), preset), "wear config")
	require.NoError(tb, err)
	w := &wearRoom{fs: &countingFS{}, clock: daemon.NewFastClock(speed), done: make(chan error, 1)}
	w.Room, err = room.Open(room.Options{Config: cfg, Clock: w.clock, NoBroker: true, JournalFS: w.fs,
		MinPlausible: w.clock.Now().Add(-time.Hour)})
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.done <- w.Run(ctx) }()
	return w
}

func (w *wearRoom) stop(tb testing.TB) {
	w.cancel()
	require.NoError(tb, <-w.done)
}

// settle waits until the journal has taken n more entries than before.
func (w *wearRoom) settle(tb testing.TB, last uint64) uint64 {
	tb.Helper()
	j := w.Journal()
	deadline := time.After(30 * time.Second)
	for j.Last() <= last {
		select {
		case <-j.Changed():
		case <-deadline:
			tb.Fatalf("no journal entry after %d", last)
		}
	}
	return j.Last()
}

// BenchmarkVisitWear measures what a two-hour visit costs the SD card: the
// bytes the journal writes and its syncs, for a visit with its warnings,
// time_up, an acknowledgement, door and bolt changes and the end, on the
// Italian policy (the clock runs 3600 times faster, so the visit takes two
// seconds). It also reports the syncs of one alert step: one.
func BenchmarkVisitWear(b *testing.B) {
	var visitBytes, visitSyncs, alertSyncs int64
	for b.Loop() {
		w := startWearRoom(b, 3600)
		s := w.Sim()
		last := w.settle(b, 0)
		require.NoError(b, s.SetInput(controller.InputPresence, controller.LevelInactive))
		last = w.settle(b, last)
		b0, s0 := w.fs.bytes.Load(), w.fs.syncs.Load()
		require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: "v", Action: controller.ActionStartVisit,
			VisitID: "v-1", Duration: 2 * time.Hour}, "guard-1"))
		last = w.settle(b, last)
		require.NoError(b, s.SetInput(controller.InputPresence, controller.LevelActive))
		for range 3 {
			require.NoError(b, s.SetInput(controller.InputDoor, controller.LevelActive))
			last = w.settle(b, last)
			require.NoError(b, s.SetInput(controller.InputDoor, controller.LevelInactive))
			last = w.settle(b, last)
		}
		a0 := w.fs.syncs.Load()
		require.NoError(b, s.SetInput(controller.InputLock, controller.LevelActive))
		last = w.settle(b, last) // lock_engaged
		last = w.settle(b, last) // door_locked, after the grace
		alertSyncs += w.fs.syncs.Load() - a0
		require.NoError(b, s.SetInput(controller.InputLock, controller.LevelInactive))
		last = w.settle(b, last)
		// The rest of the visit: warnings, time_up, its escalation.
		for {
			snap, _ := w.Journal().Latest()
			if snap.Phase == controller.PhaseOvertime && len(snap.Alerts) > 0 && snap.Alerts[0].Severity == controller.SeverityCritical {
				break
			}
			last = w.settle(b, last)
		}
		snap, _ := w.Journal().Latest()
		require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: "a", Action: controller.ActionAckAlert,
			AlertID: snap.Alerts[0].ID}, "guard-1"))
		last = w.settle(b, last)
		require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: "e", Action: controller.ActionEndVisit}, "guard-1"))
		w.settle(b, last)
		visitBytes += w.fs.bytes.Load() - b0
		visitSyncs += w.fs.syncs.Load() - s0
		w.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(float64(visitBytes)/n, "bytes/visit")
	b.ReportMetric(float64(visitSyncs)/n, "syncs/visit")
	b.ReportMetric(float64(alertSyncs)/n/2, "syncs/alert-step")
}

// BenchmarkIdleHourWear measures what an idle hour costs the SD card: no
// journal entry (heartbeats and the periodic re-reads write nothing), only
// the head's time axis checkpoint, in place, once per hour. The clock runs
// 3600 times faster: an hour takes a second.
func BenchmarkIdleHourWear(b *testing.B) {
	var bytes, syncs, entries int64
	for b.Loop() {
		w := startWearRoom(b, 3600)
		last := w.settle(b, 0)
		s := w.Sim()
		for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputStaff} {
			require.NoError(b, s.SetInput(in, controller.LevelInactive))
		}
		last = w.settle(b, last)
		require.NoError(b, w.Journal().Sync())
		b0, s0, l0 := w.fs.bytes.Load(), w.fs.syncs.Load(), w.Journal().Last()
		start := w.clock.Now()
		for w.clock.Now().Sub(start) < time.Hour {
			time.Sleep(50 * time.Millisecond) // the idle hour, a second of real time
		}
		require.NoError(b, w.Journal().Sync())
		bytes += w.fs.bytes.Load() - b0
		syncs += w.fs.syncs.Load() - s0
		entries += int64(w.Journal().Last() - l0)
		w.stop(b)
		_ = last
	}
	n := float64(b.N)
	b.ReportMetric(float64(bytes)/n, "bytes/idle-hour")
	b.ReportMetric(float64(syncs)/n, "syncs/idle-hour")
	b.ReportMetric(float64(entries)/n, "entries/idle-hour")
}

// BenchmarkLongVisitWear measures a 72 h visit (the Canadian policy) with
// its warnings, time_up and end, and a door opened and closed every two
// hours: what a long visit costs the card. The clock runs 36,000 times
// faster: 72 h take about 7 s.
func BenchmarkLongVisitWear(b *testing.B) {
	var bytes, syncs int64
	for b.Loop() {
		w := startWearRoomPolicy(b, 36000, "canada")
		s := w.Sim()
		last := w.settle(b, 0)
		for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPanic, controller.InputStaff} {
			require.NoError(b, s.SetInput(in, controller.LevelInactive))
		}
		require.NoError(b, s.SetInput(controller.InputPresence, controller.LevelActive))
		last = w.settle(b, last)
		require.NoError(b, w.Journal().Sync())
		b0, s0 := w.fs.bytes.Load(), w.fs.syncs.Load()
		require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: "v", Action: controller.ActionStartVisit,
			VisitID: "v-1", Duration: 72 * time.Hour}, "guard-1"))
		last = w.settle(b, last)
		start := w.clock.Now()
		for i := 0; w.clock.Now().Sub(start) < 72*time.Hour+time.Minute; i++ {
			lvl := controller.LevelActive
			if i%2 == 1 {
				lvl = controller.LevelInactive
			}
			require.NoError(b, s.SetInput(controller.InputDoor, lvl))
			for next := w.clock.Now().Add(time.Hour); w.clock.Now().Before(next); {
				time.Sleep(20 * time.Millisecond) // an hour of the visit, a tenth of a second
			}
		}
		require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: "e", Action: controller.ActionEndVisit}, "guard-1"))
		w.settle(b, w.Journal().Last())
		require.NoError(b, w.Journal().Sync())
		bytes += w.fs.bytes.Load() - b0
		syncs += w.fs.syncs.Load() - s0
		w.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(float64(bytes)/n, "bytes/72h-visit")
	b.ReportMetric(float64(syncs)/n, "syncs/72h-visit")
}

// BenchmarkAlertStormWear measures an hour of one input flapping (the door
// contact chattering twice a second): flap supervision turns it into one
// sensor_fault, so the storm costs the card a bounded number of steps, not
// one per edge. The clock runs 600 times faster: the hour takes 6 s.
func BenchmarkAlertStormWear(b *testing.B) {
	var bytes, syncs, entries int64
	for b.Loop() {
		w := startWearRoom(b, 600)
		s := w.Sim()
		last := w.settle(b, 0)
		for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputStaff} {
			require.NoError(b, s.SetInput(in, controller.LevelInactive))
		}
		w.settle(b, last)
		require.NoError(b, w.Journal().Sync())
		b0, s0, l0 := w.fs.bytes.Load(), w.fs.syncs.Load(), w.Journal().Last()
		start := w.clock.Now()
		for i := 0; w.clock.Now().Sub(start) < time.Hour; i++ {
			lvl := controller.LevelActive
			if i%2 == 1 {
				lvl = controller.LevelInactive
			}
			require.NoError(b, s.SetInput(controller.InputDoor, lvl))
			time.Sleep(time.Second / 1200) // half a second of the hour
		}
		require.NoError(b, w.Journal().Sync())
		bytes += w.fs.bytes.Load() - b0
		syncs += w.fs.syncs.Load() - s0
		entries += int64(w.Journal().Last() - l0)
		w.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(float64(bytes)/n, "bytes/storm-hour")
	b.ReportMetric(float64(syncs)/n, "syncs/storm-hour")
	b.ReportMetric(float64(entries)/n, "entries/storm-hour")
}

// BenchmarkCommandFloodWear measures commands at one identity's rate limit
// (20/s, what the edge lets through to the journal), paced, for 5 s, and
// reports it per minute: the worst a flooding identity can make the room
// write. Each step gets its own sync when the card keeps up.
func BenchmarkCommandFloodWear(b *testing.B) {
	var bytes, syncs int64
	for b.Loop() {
		w := startWearRoom(b, 1)
		s := w.Sim()
		last := w.settle(b, 0)
		for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputStaff} {
			require.NoError(b, s.SetInput(in, controller.LevelInactive))
		}
		w.settle(b, last)
		require.NoError(b, w.Journal().Sync())
		b0, s0 := w.fs.bytes.Load(), w.fs.syncs.Load()
		tick := time.NewTicker(50 * time.Millisecond)
		for i := range 20 * 5 { // 5 s at 20/s
			<-tick.C
			require.NoError(b, w.Send(context.Background(), controller.Command{RequestID: fmt.Sprintf("f-%d", i),
				Action: controller.ActionAckAlert, AlertID: "panic-0"}, "guard-9"))
		}
		tick.Stop()
		for w.Journal().Last() < last+20*5 {
			w.settle(b, w.Journal().Last())
		}
		require.NoError(b, w.Journal().Sync())
		bytes += w.fs.bytes.Load() - b0
		syncs += w.fs.syncs.Load() - s0
		w.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(float64(bytes)/n*12, "bytes/flood-minute")
	b.ReportMetric(float64(syncs)/n*12, "syncs/flood-minute")
}
