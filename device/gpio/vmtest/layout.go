package main

import (
	"time"

	"github.com/roomd/roomd/controller"
)

// The simulated room: one gpio-sim bank of 16 lines.
const (
	simLabel = "roomd-sim"
	simLines = 16

	offDoor    = 0  // DOOR: high = open
	offLock    = 1  // LOCK: high = locked
	offPIR0    = 2  // PIR0: high = somebody detected
	offPanic   = 3  // PANIC: active-low, low = pressed
	offStaff   = 4  // STAFF: high = pressed
	offPIR1    = 5  // PIR1: high = somebody detected
	offInUse   = 8  // INUSE: active-high
	offWarn    = 9  // WARN: active-low (a relay board that switches on low)
	offAlarm   = 10 // ALARM: active-high
	offSelfIn  = 14 // used only by the harness self-check
	offSelfOut = 15 // used only by the harness self-check

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
	offStaff: "STAFF", offPIR1: "PIR1",
	offInUse: "INUSE", offWarn: "WARN", offAlarm: "ALARM",
	offSelfIn: "SELFIN", offSelfOut: "SELFOUT",
}

// inputLines maps each physical input line to its role and polarity.
var inputLines = []struct {
	off       int
	role      controller.Input
	activeLow bool
}{
	{offDoor, controller.InputDoor, false},
	{offLock, controller.InputLock, false},
	{offPIR0, controller.InputPresence, false},
	{offPIR1, controller.InputPresence, false},
	{offPanic, controller.InputPanic, true},
	{offStaff, controller.InputStaff, false},
}

var outputLines = []struct {
	off       int
	out       controller.Output
	activeLow bool
}{
	{offInUse, controller.OutputInUse, false},
	{offWarn, controller.OutputWarning, true},
	{offAlarm, controller.OutputAlarmLight, false},
}

// electrical returns the line value (0 or 1) of a line at logical level on.
func electrical(on, activeLow bool) int {
	if on != activeLow {
		return 1
	}
	return 0
}
