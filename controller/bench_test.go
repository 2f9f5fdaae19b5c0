package controller_test

import (
	"testing"
	"time"

	"github.com/roomd/roomd/controller"
)

func benchPolicy() controller.Policy {
	return controller.Policy{
		Name:            "bench",
		MaxDuration:     2 * time.Hour,
		Warnings:        []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter:   2 * time.Minute,
		RepeatEvery:     time.Minute,
		ReannounceAfter: 5 * time.Minute,
		LockGrace:       10 * time.Second,
		EndOnVacancy:    true,
		VacancyHold:     2 * time.Minute,
		VacateTimeout:   10 * time.Minute,
		PanicReset:      controller.PanicResetAck,
	}
}

// BenchmarkStep measures one controller step during a running visit: an
// input change (the door alternately opened and closed), which announces a
// record, changes the state and re-evaluates every rule.
func BenchmarkStep(b *testing.B) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ctl, _, err := controller.New(benchPolicy(), now)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range controller.Inputs {
		ctl.Step(controller.InputChanged{At: now, Input: in, Level: controller.LevelInactive})
	}
	ctl.Step(controller.Command{At: now, RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour})
	level := controller.LevelActive
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		acts := ctl.Step(controller.InputChanged{At: now, Input: controller.InputDoor, Level: level})
		if acts.Empty() {
			b.Fatal("a door change produced no action")
		}
		level = 3 - level // active <-> inactive
	}
}

// BenchmarkStepPanicCycle measures the steps of one panic alert's life:
// press (alert_raised), release, acknowledgement (alert_acked and
// alert_cleared), the path the alert latency benchmark drives.
func BenchmarkStepPanicCycle(b *testing.B) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ctl, _, err := controller.New(benchPolicy(), now)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range controller.Inputs {
		ctl.Step(controller.InputChanged{At: now, Input: in, Level: controller.LevelInactive})
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		var id string
		for _, r := range ctl.Step(controller.InputChanged{At: now, Input: controller.InputPanic, Level: controller.LevelActive}).Records {
			if r.Alert != nil {
				id = r.Alert.ID
			}
		}
		if id == "" {
			b.Fatal("a panic press raised no alert")
		}
		ctl.Step(controller.InputChanged{At: now, Input: controller.InputPanic, Level: controller.LevelInactive})
		ctl.Step(controller.Command{At: now, RequestID: id, Action: controller.ActionAckAlert, AlertID: id})
		if n := len(ctl.State().Alerts); n != 0 {
			b.Fatalf("%d alerts left after release and ack", n)
		}
	}
}

// BenchmarkNextDeadline measures the deadline query the loop makes after
// every step to arm its one timer.
func BenchmarkNextDeadline(b *testing.B) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ctl, _, err := controller.New(benchPolicy(), now)
	if err != nil {
		b.Fatal(err)
	}
	ctl.Step(controller.Command{At: now, RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ctl.NextDeadline(); !ok {
			b.Fatal("no deadline during a visit")
		}
	}
}
