package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/daemon"
)

type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) Notify(s string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, s)
	return nil
}

// TestWaitForBatteryEndsWhenTheBatteryIsGood: after the battery stop,
// roomd watches the battery-low line and exits (so that systemd starts the
// room afresh) once it reads good; the simulator's UPS starts good.
func TestWaitForBatteryEndsWhenTheBatteryIsGood(t *testing.T) {
	cfg, err := configs.Parse(fmt.Appendf(nil, `room: room-1
state_dir: %s
policy: {preset: italy}
device:
  backend: sim
  power: {mains_fail: {pin: SIM5, active_low: true}, battery_low: {pin: SIM6, active_low: true}}
mqtt: {broker: "tcp://127.0.0.1:1"}
`, t.TempDir()), "test")
	require.NoError(t, err)
	n := &notes{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = waitForBattery(ctx, cfg, slog.New(slog.DiscardHandler), n, time.Millisecond)
	require.ErrorIs(t, err, daemon.ErrBatteryLow)
	assert.ErrorContains(t, err, "the battery is good again")
	require.NoError(t, ctx.Err(), "ended by the battery line, not the deadline")
	n.mu.Lock()
	defer n.mu.Unlock()
	require.NotEmpty(t, n.got)
	assert.Contains(t, n.got[0], "STATUS=stopped: the battery is low")
}
