package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
)

// cli runs visitctl with args against the broker at url.
func cli(t *testing.T, url string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return cliIn(t, url, "", args...)
}

// cliIn runs visitctl with args against the broker at url, stdin reading
// input.
func cliIn(t *testing.T, url, input string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"VISITCTL_BROKER": url, "VISITCTL_TIMEOUT": "10s"}
	err = run(context.Background(), append([]string{"visitctl"}, args...), func(k string) string { return env[k] },
		strings.NewReader(input), &out, &errOut)
	return out.String(), errOut.String(), err
}

// watchTopic subscribes to topic and returns the payloads received.
func watchTopic(t *testing.T, url, topic string) <-chan []byte {
	t.Helper()
	ch := make(chan []byte, 256)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("test-" + randomHex(4)))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	tok = c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { ch <- m.Payload() })
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	return ch
}

// waitState waits for a state on ch that satisfies ok.
func waitState(t *testing.T, ch <-chan []byte, what string, ok func(contract.StateMessage) bool) contract.StateMessage {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case p := <-ch:
			var s contract.StateMessage
			require.NoError(t, json.Unmarshal(p, &s))
			if ok(s) {
				return s
			}
		case <-deadline.C:
			t.Fatalf("no state with %s", what)
		}
	}
}

func TestCommandsAgainstARoom(t *testing.T) {
	url := mqtttest.Embedded(t)
	states := watchTopic(t, url, "visitrooms/room-1/state")
	startRoom(t, url, "visitrooms", "room-1")
	waitState(t, states, "the inputs read", func(s contract.StateMessage) bool { return s.Door == "closed" && s.Lock == "unlocked" })

	out, _, err := cli(t, url, "state", "room-1")
	require.NoError(t, err)
	assert.Contains(t, out, "room-1: get_state ok")
	assert.Contains(t, out, "phase     idle")
	assert.Contains(t, out, "door      closed")

	out, _, err = cli(t, url, "start", "room-1", "--visit", "v-42", "--duration", "1h30m")
	require.NoError(t, err)
	assert.Contains(t, out, "room-1: start_visit ok")
	assert.Contains(t, out, "phase     in_visit")
	assert.Contains(t, out, "visit     v-42")
	assert.Regexp(t, `\(1:(30:00|29:5\d) left\)`, out)
	assert.NotContains(t, out, "presence", "presence never leaves the room during a visit")

	_, _, err = cli(t, url, "start", "room-1", "--visit", "v-43", "--duration", "1h")
	require.Error(t, err)
	assert.Equal(t, "refused: visit_in_progress: a visit is already running", err.Error())
	assert.Equal(t, ExitFailed, exitCode(err))

	out, _, err = cli(t, url, "--json", "extend", "room-1", "--by", "15m")
	require.NoError(t, err)
	var reply contract.ReplyMessage
	require.NoError(t, json.Unmarshal([]byte(out), &reply), out)
	assert.True(t, reply.OK)
	assert.Equal(t, "extend_visit", reply.Action)
	require.NotNil(t, reply.State)
	require.NotNil(t, reply.State.Visit)
	assert.Equal(t, 105*time.Minute, reply.State.Visit.EndsAt.Sub(reply.State.Visit.StartedAt.Time))

	_, _, err = cli(t, url, "ack", "room-1", "no-such-alert")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, "unknown_alert", refused.Code)

	_, _, err = cli(t, url, "service", "room-1", "off", "--reason", "repairs")
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, "visit_in_progress", refused.Code)

	out, _, err = cli(t, url, "end", "room-1")
	require.NoError(t, err)
	assert.Contains(t, out, "phase     idle")

	out, _, err = cli(t, url, "service", "room-1", "off", "--reason", "repairs")
	require.NoError(t, err)
	assert.Contains(t, out, "phase     out_of_service")
	assert.Contains(t, out, "reason    repairs")
	_, _, err = cli(t, url, "start", "room-1", "--visit", "v-44", "--duration", "1h")
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, "out_of_service", refused.Code)
	_, _, err = cli(t, url, "service", "room-1", "on")
	require.NoError(t, err)

	out, _, err = cli(t, url, "sim", "room-1", "door=open")
	require.NoError(t, err)
	assert.Contains(t, out, `sent {"door":"open"} to visitrooms/room-1/sim/set`)
	waitState(t, states, "door open", func(s contract.StateMessage) bool { return s.Door == "open" })
	out, _, err = cli(t, url, "state", "room-1")
	require.NoError(t, err)
	assert.Contains(t, out, "door      open")

	out, _, err = cli(t, url, "watch", "--once", "--settle", "300ms")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^room-1\s+online\s+idle\s+-\s+open\s+unlocked\s`, out)
}

func TestPanicAlertAck(t *testing.T) {
	url := mqtttest.Embedded(t)
	states := watchTopic(t, url, "visitrooms/room-p/state")
	startRoom(t, url, "visitrooms", "room-p")
	waitState(t, states, "the first state", func(contract.StateMessage) bool { return true })

	_, _, err := cli(t, url, "sim", "room-p", "panic=pressed")
	require.NoError(t, err)
	s := waitState(t, states, "a panic alert", func(s contract.StateMessage) bool { return len(s.Alerts) > 0 })
	assert.Equal(t, "panic", s.Alerts[0].Kind)
	assert.Equal(t, "critical", s.Alerts[0].Severity)

	out, _, err := cli(t, url, "ack", "room-p", s.Alerts[0].ID)
	require.NoError(t, err)
	assert.Contains(t, out, "room-p: ack_alert ok")
	assert.Regexp(t, `alerts    panic-\d+ critical \d+s acked`, out)
	assert.Contains(t, out, "acked")
}

func TestNoRoomTimesOut(t *testing.T) {
	url := mqtttest.Embedded(t)
	_, _, err := cli(t, url, "--timeout", "300ms", "end", "room-9")
	var timeout *TimeoutError
	require.ErrorAs(t, err, &timeout)
	assert.Equal(t, ExitTimeout, exitCode(err))
	assert.Contains(t, err.Error(), "no reply from room room-9 to end_visit within 300ms")
}

func TestStateTimeoutShowsRetainedState(t *testing.T) {
	url := mqtttest.Embedded(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("publisher"))
	require.True(t, c.Connect().WaitTimeout(10*time.Second))
	defer c.Disconnect(100)
	st := `{"version":1,"room":"room-8","seq":7,"at":"2026-01-02T10:00:00Z","phase":"idle","visit":null,"door":"closed","lock":"unlocked","alerts":[],"service_reason":"","outputs":{}}`
	tok := c.Publish("visitrooms/room-8/state", 1, true, st)
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())

	out, _, err := cli(t, url, "--timeout", "300ms", "state", "room-8")
	assert.Equal(t, ExitTimeout, exitCode(err))
	assert.Contains(t, out, "room-8: no reply; last retained state")
	assert.Contains(t, out, "seq       7 at")
}

func TestBrokerUnreachable(t *testing.T) {
	_, _, err := cli(t, "tcp://127.0.0.1:1", "--timeout", "2s", "state", "room-1")
	require.Error(t, err)
	assert.Equal(t, ExitUnreachable, exitCode(err))
	assert.Contains(t, err.Error(), "connect to broker tcp://127.0.0.1:1")
}
