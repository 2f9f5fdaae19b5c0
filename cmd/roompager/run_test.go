package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/pager"
	"github.com/roomd/roomd/pager/espa"
	"github.com/roomd/roomd/pager/espatest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

const validConfig = `gateway: pager-1
language: it
mqtt: {broker: "tcp://127.0.0.1:1883"}
serial: {device: /dev/ttyUSB0}
routes:
  - {rooms: [room-1], kinds: [panic], addresses: ["101"]}
  - {addresses: ["900"], min_severity: critical}
`

func write(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "roompager.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestCheckConfigPrintsTheEffectiveConfig(t *testing.T) {
	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"roompager", "check-config", write(t, validConfig)}, os.Getenv, &out, &errb))
	for _, s := range []string{"gateway: pager-1", "baud: 9600", "data_bits: 7", "parity: even", "stop_bits: 2",
		"poll_every: 2s", "min_severity: warning", "max_length: 40"} {
		assert.Contains(t, out.String(), s)
	}
}

func TestCheckConfigNamesEveryBadField(t *testing.T) {
	bad := `gateway: Pager 1
language: fr
mqtt: {broker: "http://x", password_file: /nonexistent/pw}
serial: {baud: 1234, parity: mark}
espa: {own_address: "1", paging_address: "1", tries: 0}
routes:
  - {addresses: ["12a"], kinds: [fire], min_severity: loud, rooms: ["Room 1"]}
`
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"roompager", "check-config", write(t, bad)}, os.Getenv, &out, &errb)
	require.Error(t, err)
	for _, f := range []string{"gateway:", "language:", "mqtt.broker:", "mqtt.password_file:", "serial.device:", "serial: baud 1234",
		"espa.paging_address:", "espa.tries:", "routes[0].addresses[0]:", "routes[0].kinds[0]:", "routes[0].min_severity:", "routes[0].rooms[0]:"} {
		assert.Contains(t, err.Error(), f)
	}
	// A reserved identity is refused by name: the board would never show
	// a gateway so named.
	err = run(context.Background(), []string{"roompager", "check-config", write(t, strings.Replace(validConfig, "gateway: pager-1", "gateway: guard-station", 1))}, os.Getenv, &out, &errb)
	assert.ErrorContains(t, err, `gateway: "guard-station"`)
	assert.ErrorContains(t, err, "guard-station sim-driver")
	err = run(context.Background(), []string{"roompager", "check-config", write(t, "gateway: a\nunknown_key: 1\n")}, os.Getenv, &out, &errb)
	assert.ErrorContains(t, err, "unknown_key")
	assert.Equal(t, 2, exitCode(run(context.Background(), []string{"roompager", "frobnicate"}, os.Getenv, &out, &errb)))
}

// End to end: a real room on a real broker; its panic point pressed; the
// call reaches the simulated paging system on the other end of a
// pseudo-terminal, through roompager's own MQTT side, gateway and line;
// the line's status is published, and offline when roompager stops.
func TestAPanicPressedInARoomReachesThePagingSystem(t *testing.T) {
	broker := mqtttest.Embedded(t)
	rm := roomtest.Start(t, roomtest.Options{Broker: broker, Room: "room-1"})

	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	sim := espatest.Start(ptmx)
	t.Cleanup(func() { ptmx.Close(); <-sim.Done() })

	cfg, err := pager.ParseConfig([]byte(strings.Replace(validConfig, "tcp://127.0.0.1:1883", broker, 1)))
	require.NoError(t, err)
	cfg.Serial.Device = tty.Name()
	cfg.ESPA.PollEvery = pager.Duration(200 * time.Millisecond)
	cfg.ESPA.ReplyTimeout = pager.Duration(200 * time.Millisecond)

	// A watcher of the status topic, as the board is.
	statuses := make(chan pager.Status, 16)
	w, err := roomclient.Dial(context.Background(), roomclient.Options{Broker: broker, Username: "watcher", CleanSession: true})
	require.NoError(t, err)
	t.Cleanup(w.Close)
	require.NoError(t, w.Subscribe(context.Background(), pager.StatusFilter("visitrooms"), func(m roomclient.Message) {
		if s, err := pager.DecodeStatus(m.Payload); err == nil {
			statuses <- s
		}
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	waitStatus(t, statuses, "ok")

	pressed := wallclock.Now()
	require.NoError(t, rm.Sim().SetPoint("panic", controller.LevelActive))
	calls := sim.WaitCalls(2, 10*time.Second)
	require.Len(t, calls, 2, "the room's address and the critical group's")
	for _, c := range calls {
		assert.Equal(t, "2", c.Priority)
		assert.Equal(t, "PANICO room-1", c.Message)
	}
	assert.ElementsMatch(t, []string{"101", "900"}, []string{calls[0].Address, calls[1].Address})
	t.Logf("pressed to paged: %v", calls[1].At.Sub(pressed))

	// The outside check's input: the bytes the paging system received.
	if dir := os.Getenv("ROOMPAGER_CAPTURE"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "capture.hex"), []byte(hex.EncodeToString(sim.Captured())), 0o644))
	}
	// Every block on the line decodes with this package's reader too.
	for _, c := range calls {
		blk, err := espa.DecodeBlock(c.Raw)
		require.NoError(t, err)
		assert.Equal(t, espa.HeaderCallToPager, blk.Header)
	}

	// The paging system goes deaf: the status says so; and back.
	sim.SetSilent(true)
	st := waitStatus(t, statuses, "paging_down")
	assert.NotEmpty(t, st.Detail)
	sim.SetSilent(false)
	waitStatus(t, statuses, "ok")

	cancel()
	require.NoError(t, <-done)
	waitStatus(t, statuses, "offline")
}

func waitStatus(t *testing.T, ch <-chan pager.Status, state string) pager.Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if s.State == state {
				return s
			}
		case <-deadline:
			t.Fatalf("status never %s", state)
		}
	}
}
