// Package device is the hardware side of roomd: the sensors and indicators of
// one visit room, behind small interfaces that the daemon's loop consumes.
//
// Two backends implement them: the GPIO backend (device/gpio, Linux GPIO
// character device through periph.io) and the simulator (package sim). Both
// run the same pipeline from raw line levels to debounced readings, so that
// they behave the same.
package device

import (
	"context"
	"time"

	"github.com/roomd/roomd/controller"
)

// Reading is a debounced level of one input role, of one panic point, or
// the verdict of the supervision of one output. Several presence sensors
// are combined into one presence reading: active if any is active, else
// unknown if any is unknown, else inactive. Each panic point is read on its
// own.
type Reading struct {
	Input controller.Input
	// Point names the panic point of a panic reading; empty otherwise.
	Point string
	Level controller.Level
	// At is when the level was established (for a debounced change, the
	// instant it had been stable for the debounce time).
	At time.Time
	// Detail says why Level is LevelUnknown ("flapping", "read failed: "),
	// or why an output's read-back does not follow.
	Detail string
	// Output, when not zero, makes this a supervision reading (Input is
	// zero): the read-back of Output follows what is driven (Follows) or
	// did not within Spec.FeedbackGrace.
	Output  controller.Output
	Follows bool
	// Tamper and Drift are what an end-of-line supervised loop adds
	// (LineSpec.Loop): Tamper, with LevelUnknown, that it is bridged, cut
	// or masked (Detail says which, in words); Drift that its resistance
	// drifted while the level is known. Never ohms.
	Tamper bool
	Drift  controller.Drift
	// Power, when not zero, makes this a reading of a power status input
	// (Input is zero): Level active means the trouble (mains lost,
	// battery low). The daemon turns it into a system_fault.
	Power Power
}

// Event returns the controller event of r, stamped at. A power reading
// has none of its own: the daemon maps it (see Reading.Power).
func (r Reading) Event(at time.Time) controller.Event {
	if r.Output != 0 {
		return controller.FeedbackChanged{At: at, Output: r.Output, Follows: r.Follows, Detail: r.Detail}
	}
	return controller.InputChanged{At: at, Input: r.Input, Point: r.Point, Level: r.Level, Detail: r.Detail, Tamper: r.Tamper, Drift: r.Drift}
}

// Inputs delivers the room's input levels.
type Inputs interface {
	// Run reads every configured input and sends its level, then sends every
	// debounced change, until ctx ends; then it returns ctx.Err(). It never
	// drops a change: when out is full it blocks (the final level after a
	// burst always arrives). It re-reads every input periodically and after
	// any reconnect of a line, so a lost edge is corrected. A line that
	// cannot be read is sent as LevelUnknown, not returned as an error. It
	// also supervises the outputs that have a feedback line: a first verdict
	// for each after the grace, then every change of verdict. Run returns
	// early only with a start-up error that names the line.
	Run(ctx context.Context, out chan<- Reading) error
}

// Outputs drives the room's indicators. Implementations are safe for
// concurrent use.
type Outputs interface {
	// Set drives output o. pulses > 0 first pulses the output that many
	// times, then holds mode.
	Set(o controller.Output, mode controller.Mode, pulses uint8) error
	// Safe turns every output off. It is called at start and on every exit
	// path; it must work even after a failed Set.
	Safe() error
}

// Backend is a whole room: inputs, outputs, and Close, which puts every
// output in its safe state and releases the lines.
type Backend interface {
	Inputs
	Outputs
	Close() error
}
