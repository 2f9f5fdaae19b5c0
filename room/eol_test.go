package room_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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

// watcher is an MQTT client of the contract: it keeps every message of the
// room's topics.
type watcher struct {
	t   *testing.T
	cli paho.Client
	mu  sync.Mutex
	all []string // topic + " " + payload
	evs []contract.EventMessage
	at  []time.Time // when each event arrived
	rep map[string]contract.ReplyMessage
	hit chan struct{}
}

func watch(t *testing.T, url string) *watcher {
	w := &watcher{t: t, rep: map[string]contract.ReplyMessage{}, hit: make(chan struct{}, 1)}
	w.cli = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("watcher").SetCleanSession(true).SetOrderMatters(true))
	tok := w.cli.Connect()
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	tok = w.cli.Subscribe("visitrooms/room-1/#", 1, func(_ paho.Client, m paho.Message) {
		now := wallclock.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.all = append(w.all, m.Topic()+" "+string(m.Payload()))
		switch {
		case strings.HasSuffix(m.Topic(), "/events"):
			var e contract.EventMessage
			if json.Unmarshal(m.Payload(), &e) == nil {
				w.evs, w.at = append(w.evs, e), append(w.at, now)
			}
		case strings.HasSuffix(m.Topic(), "/reply"):
			var r contract.ReplyMessage
			if json.Unmarshal(m.Payload(), &r) == nil {
				w.rep[r.RequestID] = r
			}
		}
		select {
		case w.hit <- struct{}{}:
		default:
		}
	})
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { w.cli.Disconnect(100) })
	return w
}

func (w *watcher) publish(topic, payload string) {
	w.t.Helper()
	tok := w.cli.Publish(topic, 1, false, payload)
	require.True(w.t, tok.WaitTimeout(wait))
	require.NoError(w.t, tok.Error())
}

// event waits for the first event after index from that f accepts; it
// returns the event and when it arrived.
func (w *watcher) event(what string, from int, f func(contract.EventMessage) bool) (contract.EventMessage, time.Time) {
	w.t.Helper()
	deadline := time.After(wait)
	for {
		w.mu.Lock()
		for i := from; i < len(w.evs); i++ {
			if f(w.evs[i]) {
				e, at := w.evs[i], w.at[i]
				w.mu.Unlock()
				return e, at
			}
		}
		w.mu.Unlock()
		select {
		case <-w.hit:
		case <-deadline:
			w.t.Fatalf("no %s within %s", what, wait)
		}
	}
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.evs)
}

// atRest puts the room's sensors at rest (the sim/set body) and waits until
// the room has read its door as closed: a sensor driven before the room's
// first reading of it is that first reading, which announces nothing, and
// a command's reply proves only that the room subscribed.
func (w *watcher) atRest(body string) {
	w.t.Helper()
	w.publish("visitrooms/room-1/sim/set", body)
	for i := 0; ; i++ {
		id := fmt.Sprintf("at-rest-%d-%d", wallclock.Now().UnixNano(), i)
		if rep := w.command(id, `"action":"get_state"`); rep.State != nil && rep.State.Door == "closed" {
			return
		}
		require.Less(w.t, i, 600, "the room never read its door as closed")
		<-time.After(50 * time.Millisecond)
	}
}

func (w *watcher) command(id, body string) contract.ReplyMessage {
	w.t.Helper()
	exp := ""
	if !strings.Contains(body, "get_state") {
		exp = fmt.Sprintf(`,"expires_at":%q`, contract.FormatTime(wallclock.Now().Add(10*time.Minute)))
	}
	w.publish("visitrooms/room-1/cmd", fmt.Sprintf(`{"request_id":%q,%s%s}`, id, body, exp))
	deadline := time.After(wait)
	for {
		w.mu.Lock()
		r, ok := w.rep[id]
		w.mu.Unlock()
		if ok {
			return r
		}
		select {
		case <-w.hit:
		case <-deadline:
			w.t.Fatalf("no reply to %s", id)
		}
	}
}

// TestBridgedPanicPointThroughTheContract: through MQTT alone, a panic
// point bridged on the simulator during a visit raises a critical
// sensor_fault naming the point and what was done within one second; a cut
// toilet loop too; drift is a warning that latches until acknowledged; and
// no message of the visit carries ohms or bands.
func TestBridgedPanicPointThroughTheContract(t *testing.T) {
	url := mqtttest.Embedded(t)
	w := watch(t, url)
	roomtest.Start(t, roomtest.Options{Broker: url, Config: loopRoom})
	w.event("controller_started", 0, func(e contract.EventMessage) bool { return e.Type == "controller_started" })
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
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic:bed":"bridged"}}`)
	e, at := w.event("the bridged bed", from, isFault("bed", "wire bridged"))
	assert.Equal(t, "critical", e.Alert.Severity)
	assert.Equal(t, "panic", e.Alert.Input)
	assert.Less(t, at.Sub(sent), time.Second, "within one second of the bridge")

	from = w.count()
	sent = wallclock.Now()
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic:toilet":"cut"}}`)
	e, at = w.event("the cut toilet", from, isFault("toilet", "wire cut"))
	assert.Equal(t, "critical", e.Alert.Severity)
	assert.Less(t, at.Sub(sent), time.Second)

	// Mended: the faults clear.
	from = w.count()
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic:bed":"sound","panic:toilet":"sound"}}`)
	for _, p := range []string{"bed", "toilet"} {
		w.event("the "+p+" mended", from, func(e contract.EventMessage) bool {
			return e.Type == "alert_cleared" && e.Alert.Kind == "sensor_fault" && e.Alert.Point == p
		})
	}

	// Drift: a warning that stays when the loop comes back, until acked.
	from = w.count()
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic:bed":"drift_high"}}`)
	drift, _ := w.event("the drift", from, func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert.Kind == "line_drift"
	})
	assert.Equal(t, "warning", drift.Alert.Severity)
	assert.Equal(t, "bed", drift.Alert.Point)
	assert.Equal(t, "resistance drifted high", drift.Alert.Detail)
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic:bed":"sound"}}`)
	rep = w.command("a1", fmt.Sprintf(`"action":"ack_alert","alert_id":%q`, drift.Alert.ID))
	require.True(t, rep.OK, "the drift latched until acknowledged: %+v", rep.Error)
	w.event("the drift cleared by its ack", from, func(e contract.EventMessage) bool {
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
	w := watch(t, url)
	roomtest.Start(t, roomtest.Options{Broker: url})
	w.event("controller_started", 0, func(e contract.EventMessage) bool { return e.Type == "controller_started" })
	// A reply proves the room subscribed: sim/set is in the same SUBSCRIBE.
	require.True(t, w.command("g", `"action":"get_state"`).OK)
	w.atRest(`{"door":"closed","lock":"unlocked","presence":false,"panic":false,"staff":false}`)
	from := w.count()
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic":"bridged"}}`)
	// Pressed, but the bridge holds the contact; then the door opens after
	// a bounce of 200 ms: its record is the barrier after which a press
	// would have been seen (it settles with the same debounce, 200 ms later).
	w.publish("visitrooms/room-1/sim/set", `{"panic":true}`)
	w.publish("visitrooms/room-1/sim/set", `{"bounce":{"input":"door","to":"open","count":11,"every_ms":20}}`)
	w.event("door_opened", from, func(e contract.EventMessage) bool { return e.Type == "door_opened" })
	w.mu.Lock()
	for _, e := range w.evs[from:] {
		assert.NotEqual(t, "alert_raised", e.Type, "a bridged plain contact raises nothing: %+v", e.Alert)
	}
	w.mu.Unlock()
	w.publish("visitrooms/room-1/sim/set", `{"wire":{"panic":"cut"}}`)
	e, _ := w.event("the cut", from, func(e contract.EventMessage) bool { return e.Type == "alert_raised" })
	assert.Equal(t, "panic", e.Alert.Kind, "a cut plain contact reads as a press")
}
