package main

import (
	"bytes"
	"context"
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

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

const waitFor = 15 * time.Second

// observer is a test MQTT client that records every message under a room.
type observer struct {
	t    *testing.T
	cli  paho.Client
	ch   chan paho.Message
	seen []paho.Message // received, not yet returned by next
}

func observe(t *testing.T, url, base, room string) *observer {
	t.Helper()
	o := &observer{t: t, ch: make(chan paho.Message, 4096)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("obs-%d", wallclock.Now().UnixNano())).
		SetCleanSession(true).SetOrderMatters(true)
	o.cli = paho.NewClient(opts)
	tok := o.cli.Connect()
	require.True(t, tok.WaitTimeout(waitFor), "connect observer")
	require.NoError(t, tok.Error())
	tok = o.cli.Subscribe(base+"/"+room+"/#", 1, func(_ paho.Client, m paho.Message) { o.ch <- m })
	require.True(t, tok.WaitTimeout(waitFor), "subscribe observer")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { o.cli.Disconnect(100) })
	return o
}

// next returns the earliest message not returned before, on a topic ending
// in suffix, that satisfies ok. Messages of other topics stay available.
func (o *observer) next(suffix string, ok func(m paho.Message) bool) paho.Message {
	o.t.Helper()
	match := func(m paho.Message) bool {
		return strings.HasSuffix(m.Topic(), "/"+suffix) && (ok == nil || ok(m))
	}
	for i, m := range o.seen {
		if m != nil && match(m) {
			o.seen[i] = nil
			return m
		}
	}
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-o.ch:
			if match(m) {
				return m
			}
			o.seen = append(o.seen, m)
		case <-deadline:
			var got strings.Builder
			for _, m := range o.seen {
				if m != nil {
					fmt.Fprintf(&got, "\n  %s %.200s", m.Topic(), m.Payload())
				}
			}
			o.t.Fatalf("no matching message on %s within %s; not yet matched:%s", suffix, waitFor, got.String())
			return nil
		}
	}
}

// forget drops the messages seen on suffix and not yet taken, so that the
// next match must come after this moment.
func (o *observer) forget(suffix string) {
	for {
		select {
		case m := <-o.ch:
			o.seen = append(o.seen, m)
			continue
		default:
		}
		break
	}
	for i, m := range o.seen {
		if m != nil && strings.HasSuffix(m.Topic(), "/"+suffix) {
			o.seen[i] = nil
		}
	}
}

func (o *observer) publish(topic string, payload []byte) {
	o.t.Helper()
	tok := o.cli.Publish(topic, 1, false, payload)
	require.True(o.t, tok.WaitTimeout(waitFor))
	require.NoError(o.t, tok.Error())
}

func (o *observer) command(base, room string, c contract.CommandMessage) contract.ReplyMessage {
	o.t.Helper()
	if c.ExpiresAt == "" && c.Action != "get_state" {
		c.ExpiresAt = wallclock.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(c)
	require.NoError(o.t, err)
	o.publish(base+"/"+room+"/cmd", b)
	m := o.next("reply", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"`+c.RequestID+`"`)) })
	var rep contract.ReplyMessage
	require.NoError(o.t, json.Unmarshal(m.Payload(), &rep))
	return rep
}

func isEvent(typ string) func(m paho.Message) bool {
	return func(m paho.Message) bool {
		var e contract.EventMessage
		return json.Unmarshal(m.Payload(), &e) == nil && e.Type == typ
	}
}

func payloadIs(s string) func(m paho.Message) bool {
	return func(m paho.Message) bool { return string(m.Payload()) == s }
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a value after each Write, for waitFor
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.signal() <- struct{}{}:
	default:
	}
	return n, err
}

// signal returns the channel Write signals on; s.mu must be held.
func (s *syncBuf) signal() chan struct{} {
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	return s.wrote
}

// waitFor waits until the logs contain text, or fails the test after d.
func (s *syncBuf) waitFor(t *testing.T, text string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		ok, wrote := strings.Contains(s.b.String(), text), s.signal()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wrote:
		case <-deadline:
			t.Fatalf("no %q in the logs within %s:\n%s", text, d, s.String())
		}
	}
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeSimConfig(t *testing.T, url, room, stateDir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `room: %s
state_dir: %s
policy:
  preset: italy
device:
  backend: sim
mqtt:
  broker: %s
  base: visitrooms
  heartbeat: 1s
`, room, stateDir, url), 0o600))
	return path
}

// TestRunSimRoomOnEmbeddedBroker runs "roomd run" in-process with the
// simulator backend against the embedded broker: commands and sim/set in,
// replies, events, state and sim/outputs out, offline and safe outputs at
// the end.
func TestRunSimRoomOnEmbeddedBroker(t *testing.T) {
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-7"
	obs := observe(t, url, base, room)
	cfg := writeSimConfig(t, url, room, t.TempDir())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("roomd's log:\n%s", logs.String())
		}
	})
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"roomd", "run", "--config", cfg, "--log-format", "json"}, os.Getenv, &syncBuf{}, logs)
	}()

	obs.next("availability", payloadIs(contract.Online))
	obs.next("events", isEvent("controller_started"))
	obs.next("sim/outputs", nil)
	// The room has read its lock: a lock driven before its first reading is
	// that reading, which announces nothing (the room's records may come
	// before its inputs' first readings).
	obs.next("state", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"lock":"unlocked"`)) })

	rep := obs.command(base, room, contract.CommandMessage{RequestID: "req-1", Action: "start_visit", VisitID: "v-42", Duration: "45m"})
	require.True(t, rep.OK, "%+v", rep.Error)
	require.NotNil(t, rep.State)
	require.NotNil(t, rep.State.Visit)
	assert.Equal(t, int64(45*60), rep.State.Visit.RemainingS)
	obs.next("events", isEvent("visit_started"))
	obs.next("sim/outputs", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"in_use":"on"`)) })

	// A redelivered command gets the same reply and is not applied twice.
	again := obs.command(base, room, contract.CommandMessage{RequestID: "req-1", Action: "start_visit", VisitID: "v-42", Duration: "45m"})
	assert.True(t, again.OK)
	// A bad command is refused at the edge.
	bad := obs.command(base, room, contract.CommandMessage{RequestID: "req-2", Action: "start_visit", VisitID: "v 1", Duration: "45m"})
	assert.False(t, bad.OK)

	// The simulated sensors drive the controller: bolting the door is loud at once.
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"lock":"locked"}`))
	obs.next("events", isEvent("lock_engaged"))
	obs.next("sim/outputs", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"warning":"blink"`)) })

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("roomd run did not stop")
	}
	obs.next("availability", payloadIs(contract.Offline))
	assert.Contains(t, logs.String(), "SIMULATOR BACKEND")
	assert.NotContains(t, logs.String(), "v-42", "no visit id in logs above debug")
}
