package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start runs a shell script and returns it with the channel its Wait
// closes; ready is a file the script creates once its trap is set.
func start(t *testing.T, script string) (*exec.Cmd, <-chan struct{}, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	ready := filepath.Join(dir, "ready")
	require.Eventually(t, func() bool { _, err := os.Stat(ready); return err == nil }, 10*time.Second, 5*time.Millisecond)
	return cmd, done, dir
}

// A process that forgets the first SIGTERM (as mosquitto does in the
// moment before its loop) is stopped by the second.
func TestStopSendsTheSignalAgain(t *testing.T) {
	cmd, done, dir := start(t, `trap 'if [ -e seen ]; then exit 0; fi; touch seen' TERM; touch ready; while :; do sleep 0.05; done`)
	require.NoError(t, Stop(cmd.Process, done, syscall.SIGTERM, 10*time.Second))
	assert.FileExists(t, filepath.Join(dir, "seen"), "the first signal was received, and forgotten")
}

// One that never stops is killed, and the error says so.
func TestStopKillsWhatNeverStops(t *testing.T) {
	cmd, done, _ := start(t, `trap '' TERM; touch ready; while :; do sleep 0.05; done`)
	err := Stop(cmd.Process, done, syscall.SIGTERM, 1500*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not exit within 1.5s")
	select {
	case <-done:
	default:
		t.Fatal("the process still runs")
	}
}

// An exited process is stopped already.
func TestStopAfterExit(t *testing.T) {
	cmd, done, _ := start(t, `touch ready`)
	<-done
	assert.NoError(t, Stop(cmd.Process, done, syscall.SIGTERM, time.Second))
}
