package main

import (
	"time"

	"github.com/roomd/roomd/controller"
)

// The simulated room: one gpio-sim bank of 16 lines.
const (
	simLabel = "roomd-sim"
	simLines = 19

	offDoor     = 0  // DOOR: high = open
	offLock     = 1  // LOCK: high = locked
	offPIR0     = 2  // PIR0: high = somebody detected
	offPanic    = 3  // PANIC: panic point "bed", active-low, low = pressed
	offStaff    = 4  // STAFF: high = pressed
	offPIR1     = 5  // PIR1: high = somebody detected
	offPanic2   = 6  // PANIC2: panic point "toilet", high = pressed
	offInUse    = 8  // INUSE: active-high
	offWarn     = 9  // WARN: active-low (a relay board that switches on low)
	offLight    = 10 // LIGHT: alarm light, active-high
	offSounder  = 11 // SOUNDER: alarm sounder, active-high
	offReassure = 12 // REASSURE: reassurance lamp, active-high
	offFeedback = 13 // FB: the sounder relay's auxiliary contact, high = energised
	offSelfIn   = 14 // used only by the harness self-check
	offSelfOut  = 15 // used only by the harness self-check

	pointBed    = "bed"
	pointToilet = "toilet"

	// blinkPeriod is the room's blink cycle.
	blinkPeriod = 400 * time.Millisecond
	// feedbackGrace is the supervision grace of the sounder: shorter than
	// the shortest pattern phase (half the blink period, 250ms of the panic
	// pattern), long enough for the harness to move FB under TCG.
	feedbackGrace = 150 * time.Millisecond

	// debounce is the debounce time the room is opened with. The bounce
	// bursts below write faster than this.
	debounce = 40 * time.Millisecond

	// flapMax raw changes within flapWindow make a line unknown ("flapping").
	// The bounce checks (20 changes of DOOR) stay below it; the flap check
	// goes over it on STAFF.
	flapMax    = 24
	flapWindow = time.Second
)

var lineNames = map[int]string{
	offDoor: "DOOR", offLock: "LOCK", offPIR0: "PIR0", offPanic: "PANIC",
	offStaff: "STAFF", offPIR1: "PIR1", offPanic2: "PANIC2",
	offInUse: "INUSE", offWarn: "WARN", offLight: "LIGHT", offSounder: "SOUNDER",
	offReassure: "REASSURE", offFeedback: "FB",
	offSelfIn: "SELFIN", offSelfOut: "SELFOUT",
	offMains: "MAINS", offBattery: "BATT", offHealthy: "HEALTHY",
}

// inputLines maps each physical input line to its role, its panic point
// and its polarity.
var inputLines = []struct {
	off       int
	role      controller.Input
	point     string
	activeLow bool
}{
	{offDoor, controller.InputDoor, "", false},
	{offLock, controller.InputLock, "", false},
	{offPIR0, controller.InputPresence, "", false},
	{offPIR1, controller.InputPresence, "", false},
	{offPanic, controller.InputPanic, pointBed, true},
	{offPanic2, controller.InputPanic, pointToilet, false},
	{offStaff, controller.InputStaff, "", false},
}

var outputLines = []struct {
	off       int
	out       controller.Output
	activeLow bool
}{
	{offInUse, controller.OutputInUse, false},
	{offWarn, controller.OutputWarning, true},
	{offLight, controller.OutputAlarmLight, false},
	{offSounder, controller.OutputAlarmSounder, false},
	{offReassure, controller.OutputReassurance, false},
}

// electrical returns the line value (0 or 1) of a line at logical level on.
func electrical(on, activeLow bool) int {
	if on != activeLow {
		return 1
	}
	return 0
}
