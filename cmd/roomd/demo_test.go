package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/sim/scenario"
	"github.com/roomd/roomd/wallclock"
)

// requireInOrder fails unless every line of want appears in out, in order.
func requireInOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		require.GreaterOrEqual(t, i, 0, "%q missing (or out of order) in:\n%s", w, out)
		rest = rest[i+len(w):]
	}
}

// The demo's timeline comes from the messages the guard console received;
// the test checks their order and content, never their timing.
func TestDemo(t *testing.T) {
	t.Parallel() // a compressed visit: the test mostly waits
	stdout, stderr, err := runArgs(t, "-demo", "--speed", "1000")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	requireInOrder(t, stdout,
		"embedded MQTT broker on tcp://127.0.0.1:",
		"00:00  room-1  visit started (2h0m, ends ",
		"room-1  door bolted",
		"ALERT   door_locked (critical) raised",
		"room-1  bolt released",
		"ALERT   door_locked cleared",
		"01:50  room-1  warning to occupants: 10m left",
		"01:58  room-1  warning to occupants: 2m left",
		"02:00  ALERT   time_up (warning) raised",
		"02:02  ALERT   time_up escalated → critical",
		"ALERT   time_up ack by guard",
		"room-1  door opened",
		"room-1  visit ended (vacated)",
		"demo done",
	)
	assert.NotContains(t, stdout, "FAILED")
}

func TestDemoScriptIsValid(t *testing.T) {
	sc, err := scenario.Parse([]byte(demoScript), "demo script")
	require.NoError(t, err)
	assert.Equal(t, "italy", sc.Policy.Name)
	assert.Equal(t, 2*time.Hour, sc.Policy.MaxDuration)
}

// signalWriter collects output and closes seen once it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestDemoKeepRunsUntilCancelled(t *testing.T) {
	t.Parallel() // a compressed visit: the test mostly waits
	out := &signalWriter{want: "watch:    visitctl --broker tcp://127.0.0.1:", seen: make(chan struct{})}
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"roomd", "demo", "--keep", "--speed", "1500"}, func(string) string { return "" }, out, &errOut)
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("demo returned before keeping the room: %v\n%s\n%s", err, out, errOut.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("no keep instructions in time:\n%s", out)
	}
	select {
	case err := <-done:
		t.Fatalf("demo --keep returned without Ctrl-C: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("demo --keep did not stop after cancel")
	}
	assert.Contains(t, out.String(), "sim/set")
	assert.Contains(t, out.String(), "board:    go run ./cmd/guardboard -demo --broker tcp://127.0.0.1:")
	assert.Contains(t, out.String(), "then open http://127.0.0.1:8080/")
}

func TestDemoFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-demo", "--speed", "0"}, "--speed"},
		{[]string{"demo", "--speed", "fast"}, "--speed"},
		{[]string{"demo", "extra"}, "no arguments"},
		{[]string{"demo", "--log-level", "loud"}, "--log-level"},
		{[]string{"scenario"}, "one FILE"},
		{[]string{"scenario", "a.yaml", "b.yaml"}, "one FILE"},
	} {
		_, _, err := runArgs(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.True(t, isUsage(err), "%v: %v", tc.args, err)
		assert.ErrorContains(t, err, tc.want)
	}
}

const shortScenario = `
name: short bolt
policy: italy
steps:
  - at: 0s
    command: {action: start_visit, visit_id: v1, duration: 15m}
  - at: 1m
    set: {lock: locked}
  - after: {alert_raised: door_locked}
    wait: 1m
    set: {lock: unlocked}
  - after: {event: visit_warning, warning: 1}
    command: {action: end_visit}
expect:
  - {event: lock_engaged}
  - {alert_raised: door_locked, severity: critical}
  - {alert_cleared: door_locked}
  - {at: 5m, event: visit_warning, warning: 1}
  - {event: visit_ended, reason: ended}
%s
`

func TestScenarioCommand(t *testing.T) {
	t.Parallel() // a compressed visit: the test mostly waits
	path := filepath.Join(t.TempDir(), "short.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(shortScenario, "%s", "", 1)), 0o600))
	stdout, stderr, err := runArgs(t, "scenario", path, "--speed", "300")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	requireInOrder(t, stdout,
		`roomd scenario "short bolt"`,
		"step   start_visit v1 15m0s",
		"event  visit_started",
		"event  lock_engaged",
		"event  alert_raised door_locked-",
		"event  alert_cleared door_locked-",
		"event  visit_warning",
		"step   end_visit",
		"event  visit_ended visit=v1 reason=ended",
		`scenario "short bolt": ok`,
	)
}

func TestScenarioCommandFails(t *testing.T) {
	t.Parallel() // a compressed visit: the test mostly waits
	path := filepath.Join(t.TempDir(), "short.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(shortScenario, "%s", "forbid: [{event: lock_engaged}]", 1)), 0o600))
	stdout, _, err := runArgs(t, "scenario", "--speed", "300", path)
	require.Error(t, err)
	assert.ErrorContains(t, err, `scenario "short bolt" failed: 1 problems`)
	assert.Contains(t, stdout, "forbidden {event: lock_engaged} came at")
	assert.Contains(t, stdout, "transcript:")
}

func TestScenarioCommandBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("name: x\npolicy: italy\nsteps:\n  - at: 5 minutes\n    note: hi\n"), 0o600))
	_, _, err := runArgs(t, "scenario", path)
	require.Error(t, err)
	assert.ErrorContains(t, err, "bad.yaml:4: steps[0].at: \"5 minutes\" is not a duration")
}

// The tester's path: roomd demo --keep, then visitctl. When the script
// ends the room's clock joins the wall clock without a jump and runs in
// real time: visitctl's commands (which expire on the wall clock) are
// accepted, and a one-hour visit lasts an hour.
func TestDemoKeepThenVisitctlInRealTime(t *testing.T) {
	testtier.Slow(t, "runs the compressed demo, then the visitctl binary against it in real time")
	bin := filepath.Join(t.TempDir(), "visitctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/roomd/roomd/cmd/visitctl").CombinedOutput()
	require.NoError(t, err, "go build visitctl: %s", out)

	demo := &signalWriter{want: "watch:    visitctl --broker tcp://127.0.0.1:", seen: make(chan struct{})}
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"roomd", "demo", "--keep"}, func(string) string { return "" }, demo, &errOut)
	}()
	select {
	case <-demo.seen:
	case err := <-done:
		t.Fatalf("demo returned before keeping the room: %v\n%s\n%s", err, demo, errOut.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("no keep instructions in time:\n%s", demo)
	}
	defer func() {
		cancel()
		<-done
	}()
	require.Contains(t, demo.String(), "the room's clock now runs in real time, on yours")
	url := regexp.MustCompile(`broker:   (tcp://127\.0\.0\.1:\d+)`).FindStringSubmatch(demo.String())
	require.NotNil(t, url, demo.String())

	visitctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--broker", url[1], "--json"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		require.NoError(t, err, "visitctl %v: %s", args, out)
		return string(out)
	}
	var started struct {
		OK bool `json:"ok"`
	}
	require.NoError(t, json.Unmarshal([]byte(visitctl("start", "room-1", "--visit", "v", "--duration", "1h")), &started))
	require.True(t, started.OK, "the visit was accepted")
	at := wallclock.Now()
	// Ask again until 6 seconds have passed on the wall clock (each
	// visitctl run takes a moment; no sleep).
	var st struct {
		OK    bool `json:"ok"`
		State struct {
			Phase string `json:"phase"`
			Visit struct {
				RemainingS int64 `json:"remaining_s"`
			} `json:"visit"`
		} `json:"state"`
	}
	for {
		require.NoError(t, json.Unmarshal([]byte(visitctl("state", "room-1")), &st))
		require.True(t, st.OK)
		if wallclock.Since(at) >= 6*time.Second {
			break
		}
		require.Less(t, wallclock.Since(at), time.Minute, "visitctl state kept answering for a minute")
	}
	assert.Equal(t, "in_visit", st.State.Phase)
	assert.GreaterOrEqual(t, st.State.Visit.RemainingS, int64(3580), "a one-hour visit lasts an hour")
	assert.LessOrEqual(t, st.State.Visit.RemainingS, int64(3600))
}
