// Package timebase provides the controller's time axis: a sequence of
// time.Time values that never jumps, even when the wall clock does.
//
// A Raspberry Pi has no real-time clock. It boots with a wall clock in the
// past (or restored from a file) until NTP steps it, possibly by years. The
// controller measures visit durations by subtracting times, so it must never
// be fed wall clock readings directly. Instead, axis time is
//
//	anchor.At + (CLOCK_BOOTTIME now - anchor.Boot)
//
// where the anchor is fixed when the daemon starts. CLOCK_BOOTTIME is
// monotonic, keeps counting during suspend and is unaffected by clock steps,
// so durations on the axis are true elapsed durations within one boot.
//
// Across a daemon restart within the same boot (same kernel boot id) the axis
// continues exactly. Across a reboot the axis resumes from the wall clock if it
// looks plausible, otherwise from the last persisted axis time; in that case
// the time the device was down is lost from the axis (a visit's elapsed time is
// kept as of the last persist) and [Resume] returns a [Notice] so the daemon
// can raise an alert.
//
// The axis therefore tracks the wall clock only approximately: it is set from
// the wall clock at most once per boot and then advances at the rate of the
// boot clock, so it drifts from the (NTP-disciplined) wall clock by clock rate
// error, and it does not follow later wall clock steps at all. Use axis times
// for durations and ordering; use the wall clock for display and reports.
package timebase

import (
	"strings"
	"time"
)

// Sources are the clocks the axis is built from. The daemon passes [System];
// tests pass a fake.
type Sources interface {
	// Wall returns the wall clock, which may be wrong and may jump.
	Wall() time.Time
	// Boot returns the time since boot, including suspend (CLOCK_BOOTTIME).
	// It never decreases within one boot.
	Boot() time.Duration
	// BootID returns an identifier that is unique to the current boot.
	BootID() (string, error)
	// Synced reports whether the wall clock is known to be synchronised to
	// a time server (NTP). False when it is not, or cannot be told.
	Synced() bool
}

// Anchor ties the axis to the boot clock. The daemon persists it (as JSON,
// inside its state file) together with the latest axis time; see [Checkpoint].
type Anchor struct {
	// BootID is the kernel boot id at anchoring; empty if it was unreadable.
	BootID string `json:"boot_id"`
	// Boot is the boot clock reading that corresponds to At.
	Boot time.Duration `json:"boot_ns"`
	// At is the axis time at boot clock reading Boot.
	At time.Time `json:"at"`
}

// Checkpoint is what the daemon persists periodically: the anchor, the axis
// time when the checkpoint was taken and, for diagnostics only, the wall clock
// at that moment. Resume with Resume(&cp.Anchor, cp.Axis, ...).
type Checkpoint struct {
	Anchor Anchor    `json:"anchor"`
	Axis   time.Time `json:"axis"`
	Wall   time.Time `json:"wall"`
}

// Notice reports why the axis could not simply continue. It is a set of
// flags; [NoticeNone] means all is well. The daemon raises an alert for any
// other value, quoting String().
type Notice uint8

const (
	// NoticeNone: the axis continued within the same boot, or resumed from a
	// plausible wall clock after a reboot or on first start.
	NoticeNone Notice = 0
	// NoticeWallImplausible: after a reboot (or on first start) the wall clock
	// was before the plausibility floor or before the last persisted axis
	// time; the axis resumed from the last persisted axis time (or from the
	// floor on first start), so the downtime is missing from the axis.
	NoticeWallImplausible Notice = 1 << 0
	// NoticeBootIDUnreadable: the boot id could not be read, so a daemon
	// restart could not be told from a reboot; it was treated as a reboot.
	NoticeBootIDUnreadable Notice = 1 << 1
	// NoticeBootClockInconsistent: the boot id matched but the boot clock or
	// the persisted axis time disagreed with the anchor (boot clock earlier
	// than the anchor, or last axis time later than the anchor implies). The
	// axis resumed from the latest known axis time.
	NoticeBootClockInconsistent Notice = 1 << 2
)

var noticeNames = []struct {
	n    Notice
	name string
}{
	{NoticeWallImplausible, "wall-clock-implausible"},
	{NoticeBootIDUnreadable, "boot-id-unreadable"},
	{NoticeBootClockInconsistent, "boot-clock-inconsistent"},
}

// Has reports whether all flags of f are set in n.
func (n Notice) Has(f Notice) bool { return n&f == f }

// String returns the flag names joined by "|", or "none".
func (n Notice) String() string {
	if n == NoticeNone {
		return "none"
	}
	var parts []string
	rest := n
	for _, e := range noticeNames {
		if n.Has(e.n) {
			parts = append(parts, e.name)
			rest &^= e.n
		}
	}
	if rest != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "|")
}

// Clock yields axis time. It is safe for concurrent use if its Sources are.
type Clock struct {
	src    Sources
	anchor Anchor
}

// Resume builds the axis for this daemon run.
//
// prev is the persisted anchor (nil on first start), lastAxis the last
// persisted axis time (zero if none) and minPlausible the earliest wall clock
// time that can be true (for example the build date).
//
//   - Same boot id as prev: the axis continues exactly where prev puts it.
//   - Otherwise (reboot, first start, or boot id unreadable): the axis starts
//     at the wall clock if it is neither before minPlausible nor before the
//     latest persisted axis time; else at that persisted time (minPlausible on
//     first start) with [NoticeWallImplausible].
//
// The returned axis never starts before lastAxis or prev.At.
func Resume(prev *Anchor, lastAxis time.Time, src Sources, minPlausible time.Time) (*Clock, Notice) {
	lastAxis = lastAxis.Round(0)
	minPlausible = minPlausible.Round(0)
	floor := lastAxis // latest axis time known to have been handed out
	if prev != nil && prev.At.After(floor) {
		floor = prev.At.Round(0)
	}
	bootNow := src.Boot()
	id, err := src.BootID()
	var notice Notice
	if err != nil || id == "" {
		id = ""
		notice |= NoticeBootIDUnreadable
	}

	if prev != nil && id != "" && prev.BootID == id {
		if bootNow >= prev.Boot {
			at := prev.At.Round(0).Add(bootNow - prev.Boot)
			if !at.Before(lastAxis) {
				// Continue exactly: keep the old anchor.
				return &Clock{src: src, anchor: Anchor{BootID: id, Boot: prev.Boot, At: prev.At.Round(0)}}, NoticeNone
			}
		}
		return &Clock{src: src, anchor: Anchor{BootID: id, Boot: bootNow, At: floor}}, NoticeBootClockInconsistent
	}

	wall := src.Wall().Round(0)
	at := wall
	if wall.Before(minPlausible) || (!floor.IsZero() && wall.Before(floor)) {
		notice |= NoticeWallImplausible
		at = floor
		if at.IsZero() {
			at = minPlausible
		}
	}
	return &Clock{src: src, anchor: Anchor{BootID: id, Boot: bootNow, At: at}}, notice
}

// Now returns the current axis time. It never decreases. The value carries no
// monotonic clock reading, so it compares and serialises like a wall time.
func (c *Clock) Now() time.Time {
	d := c.src.Boot() - c.anchor.Boot
	if d < 0 {
		d = 0 // the boot clock does not run backwards; guard anyway
	}
	return c.anchor.At.Add(d)
}

// Anchor returns the anchor to persist. It is fixed for the life of the Clock.
func (c *Clock) Anchor() Anchor { return c.anchor }

// Checkpoint returns the anchor, the current axis time and the current wall
// clock, ready to persist.
func (c *Clock) Checkpoint() Checkpoint {
	return Checkpoint{Anchor: c.anchor, Axis: c.Now(), Wall: c.src.Wall().Round(0)}
}
