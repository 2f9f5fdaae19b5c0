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
// error, and it does not follow wall clock steps. Use axis times for
// durations and ordering; use the wall clock for display and reports.
//
// Which clock wins when:
//
//   - Within one boot the boot clock: a daemon restart continues the axis
//     exactly, whatever the wall clock says.
//   - At a reboot, a wall clock that is plausible (not before the build's
//     floor) and not behind the last recorded axis time; otherwise the last
//     recorded axis time (a notice; the downtime is then missing).
//   - Whenever the wall clock is synchronised to a time server (Synced) and
//     the axis is more than a minute from it, the wall clock: the daemon
//     corrects the axis (Correct) and shifts every time the controller
//     holds by the same amount, so remaining durations are kept. This is how
//     an axis that a wrong clock put years ahead is not kept for ever: it is
//     kept only until the clock is synchronised. Differences of up to a
//     minute (drift) are left alone, so that durations stay exact.
package timebase

import (
	"strings"
	"sync"
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

// HeadBlob is what the daemon's loop keeps in the journal's head: the room
// it belongs to and the time axis checkpoint. The migration of an earlier
// state directory writes one too.
type HeadBlob struct {
	Room  string     `json:"room"`
	Clock Checkpoint `json:"clock"`
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
	mu     sync.RWMutex
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
	c.mu.RLock()
	a := c.anchor
	c.mu.RUnlock()
	d := c.src.Boot() - a.Boot
	if d < 0 {
		d = 0 // the boot clock does not run backwards; guard anyway
	}
	return a.At.Add(d)
}

// Anchor returns the anchor to persist. It changes only with Correct.
func (c *Clock) Anchor() Anchor {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.anchor
}

// Correct moves the axis by d (positive: forward) from now on: the one
// step the axis ever takes, for when it was found wrong against a
// synchronised wall clock (see the package documentation). Durations
// measured across the step are off by d; the daemon shifts the
// controller's stored times by the same d so that none of them is.
func (c *Clock) Correct(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.anchor.At = c.anchor.At.Add(d)
}

// Sources returns the clock's sources.
func (c *Clock) Sources() Sources { return c.src }

// Checkpoint returns the anchor, the current axis time and the current wall
// clock, ready to persist.
func (c *Clock) Checkpoint() Checkpoint {
	return Checkpoint{Anchor: c.Anchor(), Axis: c.Now(), Wall: c.src.Wall().Round(0)}
}
