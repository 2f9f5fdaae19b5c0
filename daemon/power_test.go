package daemon_test

import (
	"sync"
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

func (r *room) power(p device.Power, l controller.Level) {
	r.in.ch <- device.Reading{Power: p, Level: l, At: wallclock.Now()}
	synctest.Wait()
}

// TestMainsLostIsAWarningUntilItReturns: mains lost raises system_fault
// mains (warning); mains back clears it.
func TestMainsLostIsAWarningUntilItReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.power(device.PowerMains, controller.LevelActive)
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceMains)
		assert.Equal(t, controller.SeverityWarning, a.Severity)
		assert.Equal(t, "mains power lost; the room runs on its battery", a.Detail)
		r.power(device.PowerMains, controller.LevelInactive)
		assert.Empty(t, r.snap().Alerts, "mains returned: cleared")
		r.stop()
	})
}

// TestBatteryLowStopsCleanly: the battery low raises a critical
// system_fault, which is in the journal, and then the loop stops on its
// own (outputs safe, STOPPING=1) with ErrBatteryLow; a journal opened
// afterwards finds no torn tail. When roomd starts again with the battery
// good, the fault clears.
func TestBatteryLowStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		src := newSources()
		r := startRoom(t, dir, src, nil)
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour}).OK())
		safeBefore := r.out.safeCount()
		r.in.ch <- device.Reading{Power: device.PowerBattery, Level: controller.LevelActive, At: wallclock.Now()}
		var err error
		select {
		case err = <-r.done:
		case <-time.After(time.Minute):
			t.Fatal("the loop did not stop on the battery low")
		}
		r.stopped = true
		require.ErrorIs(t, err, daemon.ErrBatteryLow)
		assert.Greater(t, r.out.safeCount(), safeBefore, "outputs safe")
		assert.Equal(t, 1, r.notify.count("STOPPING=1"))
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceBattery)
		assert.Equal(t, controller.SeverityCritical, a.Severity)
		require.NoError(t, r.j.Close())

		j, err := journal.Open(dir, journal.Options{})
		require.NoError(t, err)
		rec := j.Recovered()
		assert.Zero(t, rec.TornBytes, "no torn tail")
		assert.False(t, rec.Damaged())
		require.NoError(t, j.Close())

		r2 := startRoom(t, dir, src, nil)
		alertOf(t, r2.snap().Alerts, controller.AlertSystemFault, contract.SourceBattery)
		r2.power(device.PowerBattery, controller.LevelInactive)
		for _, a := range r2.snap().Alerts {
			assert.NotEqual(t, contract.SourceBattery, a.Source, "the battery is good: cleared")
		}
		r2.stop()
	})
}

// TestUnreadablePowerStatusIsAFault: a status line that cannot be read is
// a fault, never silence, but does not stop the room.
func TestUnreadablePowerStatusIsAFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startRoom(t, t.TempDir(), newSources(), nil)
		r.in.ch <- device.Reading{Power: device.PowerBattery, Level: controller.LevelUnknown, Detail: "read failed: EIO", At: wallclock.Now()}
		synctest.Wait()
		a := alertOf(t, r.snap().Alerts, controller.AlertSystemFault, contract.SourceBattery)
		assert.Contains(t, a.Detail, "battery_low status cannot be read: read failed: EIO")
		advance(time.Minute)
		r.stop() // still running
	})
}

type pulses struct {
	mu sync.Mutex
	at []time.Time
}

func (p *pulses) Pulse() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, wallclock.Now())
	return nil
}

func (p *pulses) since(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.at {
		if at.After(t) {
			n++
		}
	}
	return n
}

// TestHealthyPulsesOnlyWhileTheLoopRuns: the healthy output is toggled
// every 250 ms from the loop; a stalled loop (an output that never
// returns) stops the pulses at once, and they resume with the loop.
func TestHealthyPulsesOnlyWhileTheLoopRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pulses{}
		r := startRoom(t, t.TempDir(), newSources(), func(_ *daemon.Options, d *daemon.Deps) { d.Healthy = p })
		from := wallclock.Now()
		advance(10 * time.Second)
		assert.Equal(t, 40, p.since(from), "every 250 ms")

		block := make(chan struct{})
		r.out.mu.Lock()
		r.out.block = block
		r.out.mu.Unlock()
		go r.input(controller.InputPanic, controller.LevelActive)
		advance(100 * time.Millisecond)
		stalled := wallclock.Now()
		advance(time.Minute)
		assert.Zero(t, p.since(stalled), "a stalled loop pulses nothing")
		r.out.mu.Lock()
		r.out.block = nil
		r.out.mu.Unlock()
		close(block)
		resumed := wallclock.Now()
		advance(time.Second)
		assert.GreaterOrEqual(t, p.since(resumed), 3, "pulses resume with the loop")
		r.stop()
	})
}
