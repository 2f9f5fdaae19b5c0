//go:build !linux

package timebase

import (
	"errors"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// processStart gives a monotonic base where CLOCK_BOOTTIME is unavailable.
var processStart = wallclock.Now()

// System is the clock source on non-Linux development machines: the boot
// clock counts from process start and the boot id is unavailable, so every
// start is treated as a reboot.
type System struct{}

// Wall returns wallclock.Now() without its monotonic reading.
func (System) Wall() time.Time { return wallclock.Now().Round(0) }

// Boot returns the monotonic time since process start.
func (System) Boot() time.Duration { return wallclock.Since(processStart) }

// BootID always fails on this platform.
func (System) BootID() (string, error) {
	return "", errors.New("read boot id: not supported on this platform")
}

// Synced cannot be told on this platform.
func (System) Synced() bool { return false }
