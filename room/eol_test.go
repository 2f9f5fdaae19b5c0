package room_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/wallclock"
)

// loopRoom is a simulated room whose panic points are end-of-line loops
// (Galaxy 1k + 1k at the bed, Texecom 2k2 + 4k7 at the toilet) and whose
// door, lock, presence and staff are plain contacts.
func loopRoom(c *configs.Config) {
	plain := func(pin string) *configs.Line {
		return &configs.Line{Pin: pin, Pull: configs.PullUp, Debounce: 30 * time.Millisecond}
	}
	c.Device.Inputs.Door, c.Device.Inputs.Lock, c.Device.Inputs.Staff = plain("SIM0"), plain("SIM1"), plain("SIM2")
	c.Device.Inputs.Staff.ActiveLow = true
	c.Device.Inputs.Presence = []configs.Line{*plain("SIM3")}
	c.Device.Inputs.Panic = []configs.Line{
		{Point: "bed", EOL: &configs.EOL{Preset: "galaxy", Scheme: eol.SchemeDouble, Bus: "1", Address: 0x48, Channel: 0, PullUp: 2200, SupplyMV: 3300, Hold: eol.DefaultHold}},
		{Point: "toilet", EOL: &configs.EOL{Preset: "texecom", Scheme: eol.SchemeDouble, Bus: "1", Address: 0x48, Channel: 1, PullUp: 4700, SupplyMV: 3300, Hold: eol.DefaultHold}},
	}
}

// TestBridgedPanicPointThroughTheContract: through MQTT alone, a panic
// point bridged on the simulator during a visit raises a critical
// sensor_fault naming the point and what was done within one second; a cut
// toilet loop too; drift is a warning that latches until acknowledged; and
// no message of the visit carries ohms or bands.
func TestBridgedPanicPointThroughTheContract(t *testing.T) {
	url := mqtttest.Embedded(t)
	w := consume(t, url)
	roomtest.Start(t, roomtest.Options{Broker: url, Config: loopRoom})
	w.await("controller_started", func(e contract.EventMessage) bool { return e.Type == "controller_started" })
	require.True(t, w.command("g", `"action":"get_state"`).OK, "a reply proves the room subscribed to sim/set too")
	w.atRest(`{"door":"closed","lock":"unlocked","presence":false,"staff":false}`)
	rep := w.command("s1", `"action":"start_visit","visit_id":"v-1","duration":"1h"`)
	require.True(t, rep.OK, "%+v", rep.Error)

	isFault := func(point, detail string) func(contract.EventMessage) bool {
		return func(e contract.EventMessage) bool {
			return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "sensor_fault" && e.Alert.Point == point && e.Alert.Detail == detail
		}
	}
	from := w.count()
	sent := wallclock.Now()
	w.simSet(`{"wire":{"panic:bed":"bridged"}}`)
	e, at := w.awaitFrom("the bridged bed", from, isFault("bed", "wire bridged"))
	assert.Equal(t, "critical", e.Alert.Severity)
	assert.Equal(t, "panic", e.Alert.Input)
	assert.Less(t, at.Sub(sent), time.Second, "within one second of the bridge")

	from = w.count()
	sent = wallclock.Now()
	w.simSet(`{"wire":{"panic:toilet":"cut"}}`)
	e, at = w.awaitFrom("the cut toilet", from, isFault("toilet", "wire cut"))
	assert.Equal(t, "critical", e.Alert.Severity)
	assert.Less(t, at.Sub(sent), time.Second)

	// Mended: the faults clear.
	from = w.count()
	w.simSet(`{"wire":{"panic:bed":"sound","panic:toilet":"sound"}}`)
	for _, p := range []string{"bed", "toilet"} {
		w.awaitFrom("the "+p+" mended", from, func(e contract.EventMessage) bool {
			return e.Type == "alert_cleared" && e.Alert.Kind == "sensor_fault" && e.Alert.Point == p
		})
	}

	// Drift: a warning that stays when the loop comes back, until acked.
	from = w.count()
	w.simSet(`{"wire":{"panic:bed":"drift_high"}}`)
	drift, _ := w.awaitFrom("the drift", from, func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert.Kind == "line_drift"
	})
	assert.Equal(t, "warning", drift.Alert.Severity)
	assert.Equal(t, "bed", drift.Alert.Point)
	assert.Equal(t, "resistance drifted high", drift.Alert.Detail)
	w.simSet(`{"wire":{"panic:bed":"sound"}}`)
	rep = w.command("a1", fmt.Sprintf(`"action":"ack_alert","alert_id":%q`, drift.Alert.ID))
	require.True(t, rep.OK, "the drift latched until acknowledged: %+v", rep.Error)
	w.awaitFrom("the drift cleared by its ack", from, func(e contract.EventMessage) bool {
		return e.Type == "alert_cleared" && e.Alert.ID == drift.Alert.ID
	})

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.all {
		low := strings.ToLower(m)
		for _, leak := range []string{"Ω", "ohm", "tamper_", `"band"`, "normal", "alarm band", "masked band"} {
			assert.NotContains(t, low, strings.ToLower(leak), "a message carries what the loop measured: %s", m)
		}
	}
}

// TestPlainContactBridgedStaysSilent shows what end-of-line supervision is
// for: a plain normally-closed panic contact bridged on the simulator reads
// released for ever, and no fault comes; only a cut is seen (as a press).
func TestPlainContactBridgedStaysSilent(t *testing.T) {
	url := mqtttest.Embedded(t)
	w := consume(t, url)
	roomtest.Start(t, roomtest.Options{Broker: url})
	w.await("controller_started", func(e contract.EventMessage) bool { return e.Type == "controller_started" })
	// A reply proves the room subscribed: sim/set is in the same SUBSCRIBE.
	require.True(t, w.command("g", `"action":"get_state"`).OK)
	w.atRest(`{"door":"closed","lock":"unlocked","presence":false,"panic":false,"staff":false}`)
	from := w.count()
	w.simSet(`{"wire":{"panic":"bridged"}}`)
	// Pressed, but the bridge holds the contact; then the door opens after
	// a bounce of 200 ms: its record is the barrier after which a press
	// would have been seen (it settles with the same debounce, 200 ms later).
	w.simSet(`{"panic":true}`)
	w.simSet(`{"bounce":{"input":"door","to":"open","count":11,"every_ms":20}}`)
	w.awaitFrom("door_opened", from, func(e contract.EventMessage) bool { return e.Type == "door_opened" })
	w.mu.Lock()
	for _, e := range w.events[from:] {
		assert.NotEqual(t, "alert_raised", e.Type, "a bridged plain contact raises nothing: %+v", e.Alert)
	}
	w.mu.Unlock()
	w.simSet(`{"wire":{"panic":"cut"}}`)
	e, _ := w.awaitFrom("the cut", from, func(e contract.EventMessage) bool { return e.Type == "alert_raised" })
	assert.Equal(t, "panic", e.Alert.Kind, "a cut plain contact reads as a press")
}
