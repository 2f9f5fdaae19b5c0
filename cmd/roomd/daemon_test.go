package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "--config FILE is required"},
		{[]string{"run", "--config", "x.yaml", "extra"}, "no arguments"},
		{[]string{"run", "--bogus"}, "flag provided but not defined"},
		{[]string{"run", "--config", "x.yaml", "--log-format", "xml"}, "unknown format"},
		{[]string{"run", "--config", "x.yaml", "--log-level", "loud"}, "--log-level"},
	} {
		_, _, err := runArgs(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.True(t, isUsage(err), "%v: %v", tc.args, err)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestRunBadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("room: 1 2 3\n"), 0o600))
	_, _, err := runArgs(t, "run", "--config", path)
	require.Error(t, err)
	assert.False(t, isUsage(err))
	assert.ErrorContains(t, err, "room")

	_, _, err = runArgs(t, "run", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "missing.yaml")
}

// TestDeviceSpecFromConfig: panic points keep their names, feedback lines
// and their grace reach the device layer, and the older key alarm drives the
// door light; the spec is one the device layer accepts.
func TestDeviceSpecFromConfig(t *testing.T) {
	cfg, err := configs.Load("../../configs/roomd.example.yaml")
	require.NoError(t, err)
	spec := deviceSpec(cfg)
	require.NoError(t, spec.WithDefaults().Validate())
	require.Len(t, spec.Inputs[controller.InputPanic], 2)
	assert.Equal(t, "bed", spec.PanicPoint(0))
	assert.Equal(t, "toilet", spec.PanicPoint(1))
	assert.Equal(t, device.LineSpec{Pin: "GPIO16", Pull: device.PullUp}, spec.Feedback[controller.OutputAlarmSounder])
	assert.Len(t, spec.Outputs, 5)
	assert.Equal(t, cfg.Device.FeedbackGrace, spec.FeedbackGrace)

	old, err := configs.Parse([]byte(`room: r
policy: {preset: italy}
device:
  inputs:
    door: {pin: GPIO17}
    lock: {pin: GPIO27}
    presence: [{pin: GPIO22}]
    panic: {pin: GPIO23}
  outputs: {in_use: {pin: GPIO13}, warning: {pin: GPIO19}, alarm: {pin: GPIO26}}
mqtt: {broker: tcp://127.0.0.1:1883}
`), "old.yaml")
	require.NoError(t, err)
	spec = deviceSpec(old)
	require.NoError(t, spec.WithDefaults().Validate())
	assert.Equal(t, "GPIO26", spec.Outputs[controller.OutputAlarmLight].Pin, "alarm is the door light")
	assert.Equal(t, controller.DefaultPanicPoint, spec.PanicPoint(0))
	assert.Empty(t, spec.Feedback)
}
