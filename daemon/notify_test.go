package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/journal"
)

// notifySocket listens like systemd's notify socket and returns the lines received.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: unix socket paths are limited to 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	lines := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(lines)
				return
			}
			lines <- string(buf[:n])
		}
	}()
	return lines
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "notify socket closed before %q", want)
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket", want)
		}
	}
}

func TestSystemdReadyWatchdogStopping(t *testing.T) {
	lines := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	interval, err := daemon.WatchdogInterval()
	require.NoError(t, err)
	assert.Equal(t, 10*time.Millisecond, interval)

	j, err := journal.Open(t.TempDir(), journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Room: "room-1", Policy: testPolicy(), Watchdog: interval},
			daemon.Deps{Inputs: newInputs(), Outputs: newOutputs(), Journal: j, Notifier: daemon.Systemd{}})
	}()
	waitLine(t, lines, "READY=1")
	waitLine(t, lines, "WATCHDOG=1")
	waitLine(t, lines, "WATCHDOG=1")
	cancel()
	waitLine(t, lines, "STOPPING=1")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestWatchdogIntervalUnsetOrBad(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	d, err := daemon.WatchdogInterval()
	require.NoError(t, err)
	assert.Zero(t, d)

	t.Setenv("WATCHDOG_USEC", "abc")
	_, err = daemon.WatchdogInterval()
	assert.ErrorContains(t, err, "watchdog")
}

func TestSystemdWithoutSocketIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	assert.NoError(t, daemon.Systemd{}.Notify("READY=1"))
}
