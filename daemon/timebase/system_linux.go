//go:build linux

package timebase

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/roomd/roomd/wallclock"
	"golang.org/x/sys/unix"
)

const bootIDPath = "/proc/sys/kernel/random/boot_id"

// System is the real clock source: time.Now, CLOCK_BOOTTIME and the kernel
// boot id.
type System struct{}

// Wall returns wallclock.Now() without its monotonic reading.
func (System) Wall() time.Time { return wallclock.Now().Round(0) }

// Boot returns CLOCK_BOOTTIME. Should the call ever fail it falls back to
// CLOCK_MONOTONIC, which differs only by time spent in suspend.
func (System) Boot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return 0
		}
	}
	return time.Duration(ts.Nano())
}

// BootID returns the kernel's random boot id.
func (System) BootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("read boot id: %s is empty", bootIDPath)
	}
	return id, nil
}

// syncedFlag is the file systemd-timesyncd creates once the clock is
// synchronised; it is the way to tell under systemd's ProtectClock=, which
// forbids adjtimex(2) even for reading.
const syncedFlag = "/run/systemd/timesync/synchronized"

// Synced asks the kernel whether NTP has synchronised the clock (adjtimex,
// STA_UNSYNC clear); where that call is refused, it looks for
// systemd-timesyncd's flag file.
func (System) Synced() bool {
	var tx unix.Timex
	if state, err := unix.Adjtimex(&tx); err == nil {
		return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	}
	_, err := os.Stat(syncedFlag)
	return err == nil
}
