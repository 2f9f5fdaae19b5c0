package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
)

// BenchmarkSaveState measures the atomic state file write (two fsyncs) that
// the loop does once per state change, with a running visit and alerts.
func BenchmarkSaveState(b *testing.B) {
	now := time.Now()
	ctl, _, err := controller.New(testPolicy(), now)
	require.NoError(b, err)
	ctl.Step(controller.Command{At: now, RequestID: "r", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour})
	ctl.Step(controller.Fault{At: now, Source: "x", Active: true, Severity: controller.SeverityCritical})
	st := &daemon.PersistedState{Version: daemon.StateVersion, Room: "room-1", Controller: ctl.Snapshot()}
	path := daemon.StatePath(b.TempDir())
	b.ReportAllocs()
	for b.Loop() {
		if err := daemon.SaveState(path, st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopStep measures one input change through the running loop:
// controller step, state file write, records to the (fake) outbox, state
// published.
func BenchmarkLoopStep(b *testing.B) {
	in, link := newInputs(), newLink()
	link.onState = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Room: "room-1", Policy: testPolicy(), StateDir: b.TempDir(), Heartbeat: time.Hour},
			daemon.Deps{Inputs: in, Outputs: newOutputs(), Link: link})
	}()
	<-link.onState // the first state: running
	level := controller.LevelActive
	b.ReportAllocs()
	for b.Loop() {
		in.ch <- device.Reading{Input: controller.InputDoor, Level: level, At: time.Now()}
		<-link.onState
		level = 3 - level // active <-> inactive
	}
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
}
