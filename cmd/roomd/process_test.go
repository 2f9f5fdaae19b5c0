package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// buildRoomd builds the roomd binary once per test.
func buildRoomd(t *testing.T, flags ...string) string {
	t.Helper()
	testtier.Slow(t, "builds and runs the roomd binary")
	bin := filepath.Join(t.TempDir(), "roomd")
	out, err := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, ".")...).CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func startProcess(t *testing.T, bin, cfg string, env ...string) (*exec.Cmd, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC="), env...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, logs
}

func event(t *testing.T, m paho.Message) contract.EventMessage {
	t.Helper()
	var e contract.EventMessage
	require.NoError(t, json.Unmarshal(m.Payload(), &e))
	return e
}

// TestProcessCrashRestartAndStop kills roomd mid-visit, restarts it, checks
// the visit resumed (same deadline, seq continues, no second visit_started),
// then stops it with SIGTERM: offline published, outputs safe.
func TestProcessCrashRestartAndStop(t *testing.T) {
	bin := buildRoomd(t)
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-p"
	obs := observe(t, url, base, room)
	stateDir := t.TempDir()
	cfg := writeSimConfig(t, url, room, stateDir)

	p1, logs1 := startProcess(t, bin, cfg)
	obs.next("events", isEvent("controller_started"))
	rep := obs.command(base, room, contract.CommandMessage{RequestID: "p-1", Action: "start_visit", VisitID: "v-p", Duration: "1h"})
	require.True(t, rep.OK, "%+v\n%s", rep.Error, logs1.String())
	endsAt := rep.State.Visit.EndsAt
	started := event(t, obs.next("events", isEvent("visit_started")))

	require.NoError(t, p1.Process.Signal(syscall.SIGKILL))
	_ = p1.Wait()

	p2, logs2 := startProcess(t, bin, cfg)
	resumed := event(t, obs.next("events", func(m paho.Message) bool {
		e := contract.EventMessage{}
		return json.Unmarshal(m.Payload(), &e) == nil && e.Type == "controller_started" && e.Resumed != nil && *e.Resumed
	}))
	assert.Greater(t, resumed.Seq, started.Seq, "seq continues")
	st := obs.next("state", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"v-p"`)) })
	var sm contract.StateMessage
	require.NoError(t, json.Unmarshal(st.Payload(), &sm))
	require.NotNil(t, sm.Visit, "visit resumed\n%s", logs2.String())
	assert.WithinDuration(t, endsAt.Time, sm.Visit.EndsAt.Time, time.Second, "deadline unchanged")

	// The visit's lamp is on; what the outputs were before does not count.
	obs.next("sim/outputs", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"in_use":"on"`)) })
	obs.forget("sim/outputs")
	require.NoError(t, p2.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p2.Wait(), "clean exit on SIGTERM\n%s", logs2.String())
	obs.next("availability", payloadIs(contract.Offline))
	// A clean stop leaves every output off, and says so before offline.
	obs.next("sim/outputs", payloadIs(`{"in_use":"off","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"}`))
	// No second visit was started: a visit_started seen again is the same
	// record redelivered (at least once, same seq), never a new one.
	for _, m := range obs.seen {
		if m != nil && bytes.HasSuffix([]byte(m.Topic()), []byte("/events")) {
			if e := event(t, m); e.Type == "visit_started" {
				assert.Equal(t, started.Seq, e.Seq)
			}
		}
	}

	// A damaged journal (a flipped byte in its last entry): roomd raises a
	// critical system fault and goes on in a new epoch.
	segs, err := filepath.Glob(filepath.Join(stateDir, "journal", "seg-*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	last := segs[len(segs)-1]
	b, err := os.ReadFile(last)
	require.NoError(t, err)
	b[len(b)-3] ^= 0x20
	require.NoError(t, os.WriteFile(last, b, 0o600))
	p3, logs3 := startProcess(t, bin, cfg)
	fault := event(t, obs.next("alerts", func(m paho.Message) bool {
		e := contract.EventMessage{}
		return json.Unmarshal(m.Payload(), &e) == nil && e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == "journal"
	}))
	require.NotNil(t, fault.Alert, "%s", logs3.String())
	assert.Equal(t, "system_fault", fault.Alert.Kind)
	assert.Equal(t, "critical", fault.Alert.Severity)
	assert.NotEqual(t, started.Epoch, fault.Epoch, "a new epoch: no seq it hands out can collide with one a consumer holds")
	require.NoError(t, p3.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p3.Wait())
	aside, _ := filepath.Glob(last + ".damaged-*")
	assert.Len(t, aside, 1, "the damaged segment is kept for examination")
}
