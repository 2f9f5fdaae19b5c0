package link_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/wallclock"
)

// TestMosquittoRetainedCommands: what docs/mqtt.md says of retained
// commands, against a real mosquitto. MQTT 3.1.1 clears the retain flag of
// a message sent to an established subscription, so roomd cannot tell a
// retained command from a fresh one; expires_at is what keeps a stale
// command from acting late.
func TestMosquittoRetainedCommands(t *testing.T) {
	broker := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	clock := newManualClock(t0)
	logs := &logRecorder{}
	logs.cond = sync.NewCond(&logs.mu)
	dir := t.TempDir()
	start := func() *roomtest.Room {
		return roomtest.Start(t, roomtest.Options{Broker: broker.URL(), Room: "room-r", Dir: dir, Logger: slog.New(logs),
			Options: func(o *room.Options) { o.Clock = clock }})
	}
	c := newCommander(t, broker.URL(), "room-r")
	r := start()
	c.waitOnline()
	expires := func(d time.Duration) string { return contract.FormatTime(clock.Wall().Add(d)) }

	// Published retained while roomd is subscribed: delivered with the
	// retain flag clear, applied once.
	start1 := fmt.Sprintf(`{"request_id":"r-1","action":"start_visit","visit_id":"v-r1","duration":"30m","expires_at":%q}`, expires(5*time.Minute))
	c.publish("cmd", start1, true)
	rep := c.reply("r-1")
	require.True(t, rep.OK, "a retained command reaches a subscribed roomd as a fresh one: %+v", rep.Error)
	assert.Equal(t, "in_visit", rep.State.Phase)

	// On resubscription (every start) the broker sends it again, retained:
	// ignored, no reply.
	r.Stop()
	r = start()
	logs.wait(t, "retained command ignored", "r-1")
	c.publish("cmd", `{"request_id":"r-2","action":"get_state"}`, false)
	rep = c.reply("r-2")
	require.NotNil(t, rep.State)
	require.NotNil(t, rep.State.Visit)
	assert.Equal(t, "v-r1", rep.State.Visit.ID, "the visit was not started again")
	assert.Equal(t, 1, c.replies("r-1"), "no second reply to the retained command")

	// An empty retained publish clears it on the broker: no reply at all.
	c.publish("cmd", "", true)
	logs.wait(t, "empty command payload ignored", "")
	c.publish("cmd", `{"request_id":"r-3","action":"get_state"}`, false)
	c.reply("r-3")
	assert.Zero(t, c.replies(""), "an empty retained publish gets no reply")

	// Published while roomd is down: queued in its session and delivered,
	// retain flag clear, when it comes back. Within expires_at it is applied;
	// past it, refused as expired and never applied.
	r.Stop()
	c.publish("cmd/guard-7", fmt.Sprintf(`{"request_id":"r-4","action":"extend_visit","add":"5m","expires_at":%q}`, expires(time.Minute)), false)
	c.publish("cmd", fmt.Sprintf(`{"request_id":"r-5","action":"end_visit","expires_at":%q}`, expires(time.Minute)), true)
	clock.set(clock.Wall().Add(2 * time.Minute))
	c.publish("cmd", fmt.Sprintf(`{"request_id":"r-6","action":"extend_visit","add":"1m","expires_at":%q}`, expires(time.Minute)), false)
	r = start()
	late := c.replyFrom("guard-7", "r-4")
	require.False(t, late.OK)
	assert.Equal(t, "expired", late.Error.Code, "a command that waited past its expires_at is not applied")
	c.reply("r-6")
	c.publish("cmd", `{"request_id":"r-7","action":"get_state"}`, false)
	rep = c.reply("r-7")
	require.NotNil(t, rep.State.Visit, "the expired end_visit did not end the visit")
	assert.Equal(t, "v-r1", rep.State.Visit.ID)
	assert.Equal(t, int64(31*60), rep.State.Visit.EndsAt.Sub(rep.State.Visit.StartedAt.Time).Milliseconds()/1000,
		"only the extension within its expires_at was applied")
	require.Equal(t, 1, c.replies("r-5"), "the end_visit published retained while roomd was down is answered once (from the session queue)")
	r5 := c.replyOf("r-5")
	require.NotNil(t, r5.Error, "r-5 refused")
	assert.Equal(t, "expired", r5.Error.Code, "and refused as expired")
	c.publish("cmd", "", true)
}

// commander publishes commands with paho (MQTT 3.1.1) and collects replies.
type commander struct {
	t    *testing.T
	cli  mqtt.Client
	base string
	mu   sync.Mutex
	cond *sync.Cond
	reps []contract.ReplyMessage
	on   bool
}

func newCommander(t *testing.T, url, room string) *commander {
	t.Helper()
	c := &commander{t: t, base: "visitrooms/" + room + "/"}
	c.cond = sync.NewCond(&c.mu)
	c.cli = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("commander").SetCleanSession(true))
	tok := c.cli.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.cli.Disconnect(100) })
	sub := c.cli.SubscribeMultiple(map[string]byte{c.base + "reply": 1, c.base + "availability": 1}, func(_ mqtt.Client, m mqtt.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.Topic() == c.base+"availability" {
			c.on = string(m.Payload()) == contract.Online
		} else {
			var r contract.ReplyMessage
			if json.Unmarshal(m.Payload(), &r) == nil {
				c.reps = append(c.reps, r)
			}
		}
		c.cond.Broadcast()
	})
	require.True(t, sub.WaitTimeout(waitTimeout))
	require.NoError(t, sub.Error())
	return c
}

func (c *commander) publish(topic, payload string, retained bool) {
	c.t.Helper()
	tok := c.cli.Publish(c.base+topic, 1, retained, payload)
	require.True(c.t, tok.WaitTimeout(waitTimeout))
	require.NoError(c.t, tok.Error())
}

func (c *commander) waitFor(what string, cond func() bool) {
	c.t.Helper()
	timer := time.AfterFunc(waitTimeout, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	deadline := wallclock.Now().Add(waitTimeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond() {
		require.True(c.t, wallclock.Now().Before(deadline), "timed out waiting for %s", what)
		c.cond.Wait()
	}
}

func (c *commander) waitOnline() { c.waitFor("online", func() bool { return c.on }) }

func (c *commander) replyFrom(op, id string) contract.ReplyMessage {
	c.t.Helper()
	var out contract.ReplyMessage
	c.waitFor("reply to "+id, func() bool {
		for _, r := range c.reps {
			if r.RequestID == id && r.Operator == op {
				out = r
				return true
			}
		}
		return false
	})
	return out
}

func (c *commander) reply(id string) contract.ReplyMessage { c.t.Helper(); return c.replyFrom("", id) }

func (c *commander) replyOf(id string) contract.ReplyMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reps {
		if r.RequestID == id {
			return r
		}
	}
	return contract.ReplyMessage{}
}

func (c *commander) replies(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reps {
		if r.RequestID == id {
			n++
		}
	}
	return n
}

// logRecorder is a slog handler that keeps every record, so a test can
// wait for what roomd logs when it sends nothing.
type logRecorder struct {
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	attrs []slog.Attr
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	l.cond.Broadcast()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// wait waits for a log line containing msg and, if set, request_id=id.
func (l *logRecorder) wait(t *testing.T, msg, id string) {
	t.Helper()
	timer := time.AfterFunc(waitTimeout, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer timer.Stop()
	deadline := wallclock.Now().Add(waitTimeout)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for _, line := range l.lines {
			if containsAll(line, msg, id) {
				return
			}
		}
		require.True(t, wallclock.Now().Before(deadline), "roomd did not log %q", msg)
		l.cond.Wait()
	}
}

func containsAll(line, msg, id string) bool {
	return strings.Contains(line, msg) && (id == "" || strings.Contains(line, "request_id="+id))
}
