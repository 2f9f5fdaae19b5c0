//go:build linux || darwin

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// screen collects what a program writes to its terminal.
type screen struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
	done    chan struct{} // closed when the terminal is closed
}

func readScreen(r io.Reader) *screen {
	s := &screen{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// waitFor waits until the output after offset from matches re and returns
// the offset just past the match.
func (s *screen) waitFor(t *testing.T, from int, re *regexp.Regexp, what string) int {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		out := s.buf.Bytes()[from:]
		loc := re.FindIndex(out)
		ch := s.changed
		tail := string(out[max(0, len(out)-2000):])
		s.mu.Unlock()
		if loc != nil {
			return from + loc[1]
		}
		select {
		case <-ch:
		case <-s.done:
			t.Fatalf("terminal closed before %s; last output:\n%q", what, tail)
		case <-deadline.C:
			t.Fatalf("no %s on the terminal; last output:\n%q", what, tail)
		}
	}
}

// upTo returns the output before offset n.
func (s *screen) upTo(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf.Bytes()[:n])
}

func buildVisitctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "visitctl")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func TestWatchInATerminal(t *testing.T) {
	testtier.Slow(t, "builds visitctl and runs it in a terminal")
	url := mqtttest.Embedded(t)
	states := watchTopic(t, url, "visitrooms/room-w/state")
	startRoom(t, url, "visitrooms", "room-w")
	waitState(t, states, "the inputs read", func(s contract.StateMessage) bool { return s.Door == "closed" })
	_, _, err := cli(t, url, "start", "room-w", "--visit", "v-7", "--duration", "45m")
	require.NoError(t, err)

	bin := buildVisitctl(t)
	cmd := exec.Command(bin, "--broker", url, "watch", "--heartbeat", "5s")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 160, Rows: 40})
	require.NoError(t, err)
	defer tty.Close()
	scr := readScreen(tty)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	at := scr.waitFor(t, 0, regexp.MustCompile(`\x1b\[H\x1b\[2J[^\x1b]*room-w +online +in_visit +0:4[45]:\d\d left +closed +unlocked`), "room line in a visit")
	// The countdown is redrawn every second without any message.
	at = scr.waitFor(t, at, regexp.MustCompile(`\x1b\[H\x1b\[2J[^\x1b]*room-w +online +in_visit +0:4[45]:\d\d left`), "redraw")
	assert.NotContains(t, scr.upTo(at), "\a", "no bell without a critical alert")

	// A panic press is a new critical alert: the board rings.
	_, _, err = cli(t, url, "sim", "room-w", "panic=true")
	require.NoError(t, err)
	at = scr.waitFor(t, at, regexp.MustCompile(`room-w [^\n]*panic-\d+ critical [^\x1b]*\a`), "bell with the panic alert")

	// The room goes offline: marked at once.
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("test-offline"))
	require.True(t, c.Connect().WaitTimeout(10*time.Second))
	defer c.Disconnect(100)
	tok := c.Publish("visitrooms/room-w/availability", 1, true, contract.Offline)
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	scr.waitFor(t, at, regexp.MustCompile(`room-w +OFFLINE +in_visit`), "OFFLINE")

	// SIGINT ends the board cleanly.
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("watch exited with %v", ee)
		}
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not exit on SIGINT")
	}
}

// TestDecommissionAsksInATerminal: the question and the answer typed at a
// terminal, as an administrator meets them.
func TestDecommissionAsksInATerminal(t *testing.T) {
	testtier.Slow(t, "builds visitctl and runs it in a terminal")
	url := mqtttest.Embedded(t)
	states := watchTopic(t, url, "visitrooms/room-t/state")
	r := startRoom(t, url, "visitrooms", "room-t")
	waitState(t, states, "the first state", func(contract.StateMessage) bool { return true })
	r.Stop()

	bin := buildVisitctl(t)
	cmd := exec.Command(bin, "--broker", url, "decommission", "room-t")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
	require.NoError(t, err)
	defer tty.Close()
	scr := readScreen(tty)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	at := scr.waitFor(t, 0, regexp.MustCompile(`room room-t \(offline\): clear \d retained topics\?`), "the question")
	at = scr.waitFor(t, at, regexp.MustCompile(`visitrooms/room-t/state`), "the list")
	at = scr.waitFor(t, at, regexp.MustCompile(`type yes to clear them: `), "the prompt")
	_, err = tty.Write([]byte("yes\n"))
	require.NoError(t, err)
	scr.waitFor(t, at, regexp.MustCompile(`room room-t: cleared \d retained topics`), "the result")
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("decommission did not exit")
	}
}
