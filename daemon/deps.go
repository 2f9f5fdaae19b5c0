// Package daemon is roomd's run loop: one goroutine owns the room's
// controller and feeds it device readings, commands and timer ticks; it
// carries out the controller's actions, appends every step to the room's
// journal, and talks to systemd (READY, watchdog, STOPPING).
//
// The loop does one disk write per step: the journal append, one write into
// the file system's cache (steps that arrive together share it); the
// journal syncs behind it, so the loop never waits for the card. Nothing
// leaves the room before its step is in the journal: the publisher that
// sends records, states and replies follows the journal, and it lives
// elsewhere (package link). The loop never waits on the network.
//
// The loop watches the card: a background sync that fails raises
// journal_write, and sync latency above SyncP99Limit (p99 of the recent
// syncs) or a single sync above journal.SyncStall raises a warning
// system_fault of source journal_sync naming the disk, so that a dying
// card is replaced before it hides an alert.
//
// When the disk refuses the journal (full, read-only, failing), the journal
// keeps the steps in memory under a new epoch, so that they are still
// published and no seq is ever reused; the loop raises a critical
// system_fault (source journal_write), which drives the local alarm.
package daemon

import (
	"context"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
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

// Pulser is the healthy output of an external watchdog relay; the
// device Core satisfies it. The loop calls Pulse every HealthyEvery from
// its own goroutine, so that a stalled loop stops the pulses.
type Pulser interface {
	Pulse() error
}

// Journal is where the loop puts every step; *journal.Journal satisfies it.
type Journal interface {
	// Append stores the entries durably with one sync, or, returning a
	// *journal.DiskError, keeps them in memory (visible to the publisher)
	// until a later Append writes them. It never blocks on the network.
	Append(es ...*journal.Entry) error
	// Latest is the snapshot to resume from (nil on a fresh journal) and the
	// time of its step.
	Latest() (*controller.Snapshot, time.Time)
	// Recovered says what opening the journal found.
	Recovered() journal.Recovery
	// Blob and SetBlob keep the loop's own small record (the time axis)
	// in the journal's head, written within a second, in place.
	Blob() []byte
	SetBlob(b []byte) error
	// Epoch is the epoch of the next entry.
	Epoch() journal.Epoch
	// OverLimit reports undelivered entries above the journal's size bound.
	OverLimit() bool
	// Health is closed when the disk's state changes (a background sync
	// failed or works again, a sync stalled, the directory was rewritten).
	Health() <-chan struct{}
	// Notices returns, once, what the journal noticed while running.
	Notices() []string
	// SyncStats measures the journal's syncs.
	SyncStats() *journal.SyncStats
}

// Notifier passes status lines to the service manager ("READY=1",
// "WATCHDOG=1", "STOPPING=1"). A Notifier without a service manager does
// nothing and returns nil.
type Notifier interface {
	Notify(state string) error
}

// Clock is the loop's time: the sources of its time axis, timers measured on
// that axis, and the age of a device reading. SystemClock is the real one; a
// compressed replay (the demo, roomd scenario) passes one that runs faster.
type Clock interface {
	timebase.Sources
	// NewTimer returns a timer that fires once d of axis time has passed.
	NewTimer(d time.Duration) Timer
	// Since returns how much axis time has passed since the device read t
	// (device readings are stamped with time.Now).
	Since(t time.Time) time.Duration
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Reset rearms the timer to fire after d (axis time).
	Reset(d time.Duration)
	Stop()
}

// DefaultMinPlausible is the earliest wall clock time that roomd believes
// after a reboot when Options.MinPlausible is zero.
var DefaultMinPlausible = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type nopNotifier struct{}

func (nopNotifier) Notify(string) error { return nil }
