package room_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/room"
)

// TestDeviceSpecFromConfig: panic points keep their names, feedback lines
// and their grace reach the device layer, and the older key alarm drives the
// door light; the spec is one the device layer accepts.
func TestDeviceSpecFromConfig(t *testing.T) {
	// The example without the files under /etc/roomd it names (check-config
	// rightly refuses files that do not exist).
	example, err := os.ReadFile("../configs/roomd.example.yaml")
	require.NoError(t, err)
	var kept []string
	for _, l := range strings.Split(string(example), "\n") {
		if !strings.Contains(l, "/etc/roomd/") {
			kept = append(kept, l)
		}
	}
	cfg, err := configs.Parse([]byte(strings.Join(kept, "\n")), "example without secrets")
	require.NoError(t, err)
	spec := room.DeviceSpec(cfg)
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
	spec = room.DeviceSpec(old)
	require.NoError(t, spec.WithDefaults().Validate())
	assert.Equal(t, "GPIO26", spec.Outputs[controller.OutputAlarmLight].Pin, "alarm is the door light")
	assert.Equal(t, controller.DefaultPanicPoint, spec.PanicPoint(0))
	assert.Empty(t, spec.Feedback)
}
