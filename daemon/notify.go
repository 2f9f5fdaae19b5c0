package daemon

import (
	"fmt"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Systemd notifies systemd through $NOTIFY_SOCKET. Without that variable
// (not started by systemd, or not Type=notify) Notify does nothing.
type Systemd struct{}

// Notify sends one status line, e.g. "READY=1".
func (Systemd) Notify(state string) error {
	if _, err := sd.SdNotify(false, state); err != nil {
		return fmt.Errorf("notify systemd %q: %w", state, err)
	}
	return nil
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of the
// watchdog timeout systemd set for this process ($WATCHDOG_USEC, and
// $WATCHDOG_PID if set must be this process), or 0 when systemd expects no
// pings. A malformed variable is an error.
func WatchdogInterval() (time.Duration, error) {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("read systemd watchdog setting: %w", err)
	}
	return d / 2, nil
}
