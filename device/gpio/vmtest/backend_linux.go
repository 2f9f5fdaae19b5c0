package main

import (
	"log/slog"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/gpio"
)

// roomSpec wires the simulated room. Lines are named both ways the backend
// resolves them: by pin (line name) and by chip label plus offset. The
// biases are chosen so that their effect is visible in the initial
// readings (see presetPulls).
func roomSpec() device.Spec {
	byPin := func(name string) device.LineSpec {
		return device.LineSpec{Pin: name, Debounce: debounce}
	}
	byOffset := func(off int) device.LineSpec {
		return device.LineSpec{Chip: simLabel, Line: off, Debounce: debounce}
	}
	lock := byPin("LOCK")
	lock.Pull = device.PullDown
	panicBed := byPin("PANIC")
	panicBed.Pull = device.PullUp
	panicBed.ActiveLow = true
	panicBed.Name = pointBed
	panicToilet := byOffset(offPanic2)
	panicToilet.Name = pointToilet
	warn := device.LineSpec{Chip: simLabel, Line: offWarn, ActiveLow: true}
	return device.Spec{
		Inputs: map[controller.Input][]device.LineSpec{
			controller.InputDoor:     {byOffset(offDoor)},
			controller.InputLock:     {lock},
			controller.InputPresence: {byPin("PIR0"), byOffset(offPIR1)},
			controller.InputPanic:    {panicBed, panicToilet},
			controller.InputStaff:    {byOffset(offStaff)},
		},
		Outputs: map[controller.Output]device.LineSpec{
			controller.OutputInUse:        {Pin: "INUSE"},
			controller.OutputWarning:      warn,
			controller.OutputAlarmLight:   {Pin: "LIGHT"},
			controller.OutputAlarmSounder: {Chip: simLabel, Line: offSounder},
			controller.OutputReassurance:  {Pin: "REASSURE"},
		},
		// FB has no bias: the harness moves it with the sim's pull, as the
		// relay contact would.
		Feedback:      map[controller.Output]device.LineSpec{controller.OutputAlarmSounder: {Pin: "FB"}},
		FeedbackGrace: feedbackGrace,
		// Shorter than a quiet check, so re-reads run during the checks
		// and are seen to send nothing when nothing changed.
		RereadEvery: 250 * time.Millisecond,
		Flap:        device.Flap{MaxChanges: flapMax, Window: flapWindow},
		BlinkPeriod: blinkPeriod,
	}
}

// presetPulls puts the sim lines where only the backend's bias requests
// can move them: LOCK pulled up (locked) and PANIC pulled down (pressed).
// With the spec's PullDown on LOCK and PullUp on PANIC, both must read
// inactive once the room is open. WARN, active-low, is pulled up as an
// external resistor would, so a released line is off.
func presetPulls(sim *simChip) error {
	for _, p := range []struct {
		off  int
		high bool
	}{{offLock, true}, {offPanic, false}, {offWarn, true}} {
		if err := sim.pull(p.off, p.high); err != nil {
			return err
		}
	}
	return nil
}

// openRoom opens the simulated room through roomd's GPIO backend.
func openRoom(logger *slog.Logger) (device.Backend, error) {
	return gpio.Open(roomSpec(), logger)
}
