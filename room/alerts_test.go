package room_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/wallclock"
)

// guard is an operator's console: its own broker identity, commands on
// cmd/<its id>, everything of room-1 read.
type guard struct {
	t   *testing.T
	id  string
	cli paho.Client

	mu      sync.Mutex
	events  []contract.EventMessage
	replies []contract.ReplyMessage
	outputs map[string]string
	wake    chan struct{}
}

func connectGuard(t *testing.T, m *mqtttest.MosquittoBroker, id, pw string) *guard {
	t.Helper()
	g := &guard{t: t, id: id, wake: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(m.URL()).SetClientID(id).SetUsername(id).SetPassword(pw).
		SetTLSConfig(m.TLSConfig()).SetCleanSession(true).SetOrderMatters(true)
	g.cli = paho.NewClient(opts)
	tok := g.cli.Connect()
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	tok = g.cli.Subscribe("visitrooms/room-1/#", 1, func(_ paho.Client, msg paho.Message) {
		g.mu.Lock()
		defer g.mu.Unlock()
		switch {
		case strings.HasSuffix(msg.Topic(), "/events"):
			var e contract.EventMessage
			if !assert.NoError(t, json.Unmarshal(msg.Payload(), &e)) { // the client's goroutine: no require
				return
			}
			g.events = append(g.events, e)
		case strings.HasSuffix(msg.Topic(), "/reply"):
			var r contract.ReplyMessage
			if !assert.NoError(t, json.Unmarshal(msg.Payload(), &r)) {
				return
			}
			g.replies = append(g.replies, r)
		case strings.HasSuffix(msg.Topic(), "/sim/outputs"):
			var o map[string]string
			if !assert.NoError(t, json.Unmarshal(msg.Payload(), &o)) {
				return
			}
			g.outputs = o
		}
		select {
		case g.wake <- struct{}{}:
		default:
		}
	})
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { g.cli.Disconnect(100) })
	return g
}

func (g *guard) until(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.After(wait)
	for {
		g.mu.Lock()
		ok := cond()
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.wake:
		case <-deadline:
			g.t.Fatalf("%s: no %s within %s", g.id, what, wait)
		}
	}
}

func (g *guard) event(typ, kind string) contract.EventMessage {
	g.t.Helper()
	var found contract.EventMessage
	g.until(typ+" "+kind, func() bool {
		for _, e := range g.events {
			if e.Type == typ && (kind == "" || e.Alert != nil && e.Alert.Kind == kind) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// command sends on cmd/<guard id> and returns the reply.
func (g *guard) command(requestID, body string) contract.ReplyMessage {
	g.t.Helper()
	payload := fmt.Sprintf(`{"request_id":%q,%s,"expires_at":%q}`, requestID, body, contract.FormatTime(wallclock.Now().Add(10*time.Minute)))
	tok := g.cli.Publish("visitrooms/room-1/cmd/"+g.id, 1, false, payload)
	require.True(g.t, tok.WaitTimeout(wait))
	require.NoError(g.t, tok.Error())
	var rep contract.ReplyMessage
	g.until("reply to "+requestID, func() bool {
		for _, r := range g.replies {
			if r.RequestID == requestID && r.Operator == g.id {
				rep = r
				return true
			}
		}
		return false
	})
	return rep
}

func (g *guard) output(name, want string) {
	g.t.Helper()
	g.until(name+" "+want, func() bool { return g.outputs[name] == want })
}

// TestAlertsAGuardCanRelyOn runs a simulated room against mosquitto with
// the shipped ACL over TLS, as a site does, and a guard on their own
// identity: a panic sounds at the door and blinks the reassurance lamp; a
// visit cannot start while it is active (not_ready, naming it); the guard's
// acknowledgement is recorded by their id, silences the sounder and turns
// reassurance steady ("help is coming") while the light stays; the reset at
// the room (staff key) clears it, by on_site; then the visit starts.
func TestAlertsAGuardCanRelyOn(t *testing.T) {
	users := map[string]string{"room-1": "pw-room", "guard-7": "pw-7", "sim-driver": "pw-sim"}
	acl := mqtttest.SiteACL(t, func(s *access.Site) { s.Rooms, s.SimDriver = []string{"room-1"}, "sim-driver" })
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: users, ACLFile: acl})
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw-room\n"), 0o600))

	g := connectGuard(t, m, "guard-7", "pw-7")
	driver := connectGuard(t, m, "sim-driver", "pw-sim")
	set := func(payload string) {
		tok := driver.cli.Publish("visitrooms/room-1/sim/set", 1, false, payload)
		require.True(t, tok.WaitTimeout(wait))
		require.NoError(t, tok.Error())
	}
	roomtest.Start(t, roomtest.Options{Broker: m.URL(), Config: func(c *configs.Config) {
		c.MQTT.Username, c.MQTT.PasswordFile = "room-1", pw
		c.MQTT.TLS.CAFile = m.CA.CertFile
	}})
	g.event("controller_started", "")
	set(`{"door":"closed","lock":"unlocked","presence":false,"panic":false,"staff":false}`)
	g.output("alarm_sounder", "off")

	set(`{"panic":true}`)
	raised := g.event("alert_raised", "panic")
	assert.Equal(t, "critical", raised.Alert.Severity)
	assert.Equal(t, "panic", raised.Alert.Point, "the point pressed is named")
	g.output("alarm_sounder", "panic")
	g.output("alarm_light", "panic")
	g.output("reassurance", "blink")

	rep := g.command("s1", `"action":"start_visit","visit_id":"v-1","duration":"1h"`)
	require.False(t, rep.OK)
	assert.Equal(t, "not_ready", rep.Error.Code)
	assert.Contains(t, rep.Error.Blockers, raised.Alert.ID)

	rep = g.command("a1", fmt.Sprintf(`"action":"ack_alert","alert_id":%q`, raised.Alert.ID))
	require.True(t, rep.OK, "%+v", rep.Error)
	acked := g.event("alert_acked", "panic")
	assert.Equal(t, "guard-7", acked.By, "the acknowledgement names the guard")
	g.output("alarm_sounder", "off")
	g.output("alarm_light", "on")
	g.output("reassurance", "on")

	// The key resets only a released point, and the panic line and the
	// key line settle independently, each after its own debounce (30 ms):
	// a turn of the key within a debounce of the release could be seen
	// first, and do nothing. So the point is released and the key's contact
	// bounces, 9 changes 10 ms apart (as a worn key switch does), each too
	// short to settle: the key settles pressed 30 ms after the last, 80 ms
	// after the point's release has settled.
	set(`{"panic":false,"bounce":{"input":"staff","to":"pressed","count":9,"every_ms":10}}`)
	cleared := g.event("alert_cleared", "panic")
	assert.Equal(t, "on_site", cleared.By, "reset at the room")
	set(`{"staff":false}`)
	g.output("alarm_light", "off")
	g.output("reassurance", "off")

	rep = g.command("s2", `"action":"start_visit","visit_id":"v-1","duration":"1h"`)
	require.True(t, rep.OK, "%+v", rep.Error)
	started := g.event("visit_started", "")
	assert.Equal(t, "guard-7", started.By)
}
