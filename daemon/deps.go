// Package daemon is roomd's run loop: one goroutine owns the room's
// controller and feeds it device readings, commands and timer ticks; it
// carries out the controller's actions (outputs, records, state, replies),
// persists the controller's state atomically after every change, and talks
// to systemd (READY, watchdog, STOPPING).
//
// The loop never waits on the network: records go to the link's durable
// outbox, state and replies to the link's own sender. The slowest things it
// does are an fsync of the state file per state change and the outbox's own
// append.
//
// Delivery of records is at least once. A step's records are written into the
// state file together with the snapshot that produced them, and only then
// handed to the outbox; after a crash between the two the records of that
// step are handed over again. Consumers deduplicate by (room, seq); seq never
// repeats for a room because the snapshot and its records are stored in one
// atomic write.
package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

// InputSource delivers debounced input levels; device.Inputs satisfies it.
type InputSource interface {
	// Run sends readings to out until ctx ends, then returns ctx.Err(). An
	// early return with another error is a start-up failure: the loop raises
	// a critical system_fault (source "inputs") and keeps running.
	Run(ctx context.Context, out chan<- device.Reading) error
}

// OutputDriver drives the room's indicators; device.Outputs satisfies it.
type OutputDriver interface {
	// Set drives one output. An error raises a system_fault (source "outputs").
	Set(o controller.Output, mode controller.Mode, pulses uint8) error
	// Safe turns every output off. The loop calls it at start and on every
	// exit path, including a panic in the loop.
	Safe() error
}

// Link is the MQTT side as the loop uses it. Every method must return
// promptly: the loop calls them from its own goroutine.
type Link interface {
	// Commands delivers commands already decoded, checked and deduplicated
	// at the edge. The loop stamps each with its own clock (At is ignored).
	// A closed channel is read as "no more commands".
	Commands() <-chan controller.Command
	// Publish stores rec durably for delivery. It returns an error wrapping
	// ErrOutboxFull when the outbox is at its limit; the loop keeps the
	// record (in memory and in the state file) and tries again later.
	Publish(rec controller.Record) error
	// PublishState publishes the room's state (retained). Best effort: a
	// newer state or the next heartbeat replaces a lost one.
	PublishState(st controller.State) error
	// Reply answers a command, with the state after it; the link also
	// remembers the answer for duplicates of the same request.
	Reply(rep controller.Reply, st controller.State) error
	// Close publishes the offline status and flushes the outbox until ctx
	// ends; what is not delivered stays on disk for the next run.
	Close(ctx context.Context) error
}

// ErrOutboxFull is what Link.Publish wraps when the outbox is at its limit.
var ErrOutboxFull = errors.New("outbox full")

// Notifier passes status lines to the service manager ("READY=1",
// "WATCHDOG=1", "STOPPING=1"). A Notifier without a service manager does
// nothing and returns nil.
type Notifier interface {
	Notify(state string) error
}

// The fault sources the loop raises (controller.Fault.Source).
const (
	SourceState      = "state"       // the state file was corrupt or unreadable at start (cleared by ack)
	SourceStateWrite = "state_write" // the state file cannot be written (clears on the next good write)
	SourceClock      = "clock"       // the time axis could not simply continue (cleared by ack)
	SourceOutbox     = "outbox"      // records cannot be stored for delivery (clears when they are)
	SourceInputs     = "inputs"      // the input backend failed to start
	SourceOutputs    = "outputs"     // an output could not be driven (cleared by ack)
)

// DefaultMinPlausible is the earliest wall clock time that roomd believes
// after a reboot when Options.MinPlausible is zero.
var DefaultMinPlausible = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type nopNotifier struct{}

func (nopNotifier) Notify(string) error { return nil }
