package link

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// TestStateNeverBeforeItsEvent: on one subscription, the state that carries
// seq N arrives after the event with seq N, for every state.
func TestStateNeverBeforeItsEvent(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	r := startRoom(t, roomOpts{url: url})
	for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic} {
		r.input(in, controller.LevelInactive)
	}
	obs.command("room-a", `{"request_id":"s","action":"start_visit","visit_id":"v1","duration":"1h","expires_at":"`+exp()+`"}`, "s")
	for i := range 20 {
		lvl := controller.LevelActive
		if i%2 == 1 {
			lvl = controller.LevelInactive
		}
		r.input(controller.InputDoor, lvl)
		r.input(controller.InputPanic, lvl)
	}
	r.flush()
	last := r.lastSeq()
	obs.await("state", func(m obsMsg) bool { return stateOf(t, m.Payload).Seq == last })
	seen := map[uint64]bool{}
	states := 0
	for _, m := range obs.held {
		switch {
		case strings.HasSuffix(m.Topic, "/events"):
			seen[strictEvent(t, m.Payload).Seq] = true
		case strings.HasSuffix(m.Topic, "/state"):
			st := stateOf(t, m.Payload)
			require.True(t, seen[st.Seq], "state with seq %d arrived before event %d", st.Seq, st.Seq)
			states++
		}
	}
	assert.Greater(t, states, 20, "a state per change")
}

// TestEveryCommandGetsAReply: a flood of commands sent without waiting for
// replies: every one is answered (done, refused, or busy), none is silent.
func TestEveryCommandGetsAReply(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/reply"})
	// The queues, not the identity's rate limit, are under test.
	startRoom(t, roomOpts{url: url, rate: unlimited})
	const n = 1500
	for i := range n {
		payload := fmt.Sprintf(`{"request_id":"f-%d","action":"get_state"}`, i)
		if i%3 == 0 {
			payload = fmt.Sprintf(`{"request_id":"f-%d","action":"end_visit","expires_at":%q}`, i, exp())
		}
		tok := obs.cli.Publish("visitrooms/room-a/cmd", 1, false, payload)
		_ = tok // sent without waiting, as the flood in the field was
	}
	answered := map[string]bool{}
	busy := 0
	for len(answered) < n {
		m := obs.next("reply", nil)
		rep := strictReply(t, m.Payload)
		if answered[rep.RequestID] {
			continue
		}
		answered[rep.RequestID] = true
		if rep.Error != nil && rep.Error.Code == string(contract.CodeBusy) {
			busy++
		}
	}
	t.Logf("%d commands, every one answered, %d of them busy", n, busy)
}

// TestReplay: a consumer that saw a gap asks for the records again and gets
// them with their original seq and payload, then the reply; a range the
// journal no longer holds is refused with replay_unavailable.
func TestReplay(t *testing.T) {
	url := mqtttest.Embedded(t)
	r := startRoom(t, roomOpts{url: url})
	r.input(controller.InputDoor, controller.LevelInactive)
	for range 5 {
		r.input(controller.InputDoor, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelInactive)
	}
	r.flush()
	last := r.lastSeq()
	require.Equal(t, uint64(11), last)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	ep := r.j.Epoch().String()
	rep := obs.command("room-a", `{"request_id":"rp","action":"replay","from_seq":3,"to_seq":6}`, "rp")
	require.True(t, rep.OK, "%+v", rep.Error)
	require.NotNil(t, rep.Replay)
	assert.Equal(t, contract.ReplayBody{Epoch: ep, FromSeq: 3, ToSeq: 6, Count: 4}, *rep.Replay)
	got := dedupeSeqs(t, obs.drain("events"))
	assert.Equal(t, []uint64{3, 4, 5, 6}, got, "replayed before the reply, in order")
	obs.command("room-a", `{"request_id":"rp2","action":"replay","from_seq":1}`, "rp2")
	all := obs.drain("events")
	require.Len(t, all, int(last))
	first := strictEvent(t, all[0].Payload)
	assert.Equal(t, "controller_started", first.Type)
	assert.Equal(t, ep, first.Epoch)

	for _, tc := range []struct{ payload, want string }{
		{`{"request_id":"x1","action":"replay","from_seq":999}`, "has not been announced"},
		{`{"request_id":"x2","action":"replay","from_seq":1,"epoch":"00000000000000aa"}`, "holds no record of epoch"},
	} {
		var id string
		require.NoError(t, json.Unmarshal([]byte(tc.payload[strings.Index(tc.payload, `"request_id":`)+13:strings.Index(tc.payload, `,`)]), &id))
		rep := obs.command("room-a", tc.payload, id)
		require.False(t, rep.OK)
		assert.Equal(t, string(contract.CodeReplayUnavailable), rep.Error.Code)
		assert.Contains(t, rep.Error.Message, tc.want)
		assert.Equal(t, contract.ActionReplay, rep.Action)
	}
}

// TestReplayOfACompactedRange: records older than the retention, once the
// broker acknowledged them, are compacted; replay says so and where to
// start.
func TestReplayOfACompactedRange(t *testing.T) {
	url := mqtttest.Embedded(t)
	var later atomic.Int64 // how far the journal's clock is ahead
	r := startRoom(t, roomOpts{url: url, journal: journal.Options{SegmentBytes: 2 << 10, Retention: time.Hour,
		Now: func() time.Time { return wallclock.Now().Add(time.Duration(later.Load())) }}})
	r.input(controller.InputDoor, controller.LevelInactive)
	for range 30 {
		r.input(controller.InputDoor, controller.LevelActive)
		r.input(controller.InputDoor, controller.LevelInactive)
	}
	r.flush()
	later.Store(int64(48 * time.Hour))
	require.NoError(t, r.j.Sync())
	first, _, ok := r.j.SeqRange(r.j.Epoch())
	require.True(t, ok)
	require.Greater(t, first, uint64(1), "old segments were compacted")

	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/reply"})
	rep := obs.command("room-a", `{"request_id":"old","action":"replay","from_seq":1}`, "old")
	require.False(t, rep.OK)
	assert.Equal(t, string(contract.CodeReplayUnavailable), rep.Error.Code)
	assert.Contains(t, rep.Error.Message, fmt.Sprintf("ask from %d", first))
	rep = obs.command("room-a", fmt.Sprintf(`{"request_id":"kept","action":"replay","from_seq":%d}`, first), "kept")
	require.True(t, rep.OK, "%+v", rep.Error)
}

// TestRequestIDWindow: a request_id is answered from the reply index for
// the reply window, even after many other commands (the earlier cache held
// the last 1024 for every client together); after the window it is a new
// command.
func TestRequestIDWindow(t *testing.T) {
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/#"})
	r := startRoom(t, roomOpts{url: url, rate: unlimited, pub: func(o *PublisherOptions) { o.ReplyWindow = time.Hour }})
	start := `{"request_id":"w1","action":"start_visit","visit_id":"v1","duration":"1h","expires_at":"` + exp() + `"}`
	first := obs.command("room-a", start, "w1")
	require.True(t, first.OK)
	end := `{"request_id":"w2","action":"end_visit","expires_at":"` + exp() + `"}`
	require.True(t, obs.command("room-a", end, "w2").OK)
	for i := range 1100 {
		obs.publish("visitrooms/room-a/cmd", fmt.Sprintf(`{"request_id":"n-%d","action":"ack_alert","alert_id":"x","expires_at":%q}`, i, exp()), false)
	}
	obs.reply("n-1099")
	again := obs.command("room-a", start, "w1")
	assert.JSONEq(t, mustJSON(first), mustJSON(again), "inside the window: the first reply, not a second visit")
	// The same id from another operator is another command.
	obs.publish("visitrooms/room-a/cmd/guard-7", start, false)
	other := obs.next("reply", func(m obsMsg) bool {
		rep := strictReply(t, m.Payload)
		return rep.RequestID == "w1" && rep.Operator == "guard-7"
	})
	assert.True(t, strictReply(t, other.Payload).OK, "guard-7's w1 is its own command")
	require.True(t, obs.command("room-a", `{"request_id":"w3","action":"end_visit","expires_at":"`+exp()+`"}`, "w3").OK)

	// Two hours later the window has passed: w1 is a new command.
	r.advance(2 * time.Hour)
	// Replies held from before (guard-7's w1, at-least-once copies of the
	// first) are skipped: the one wanted is the booking system's new w1.
	obs.drain("reply")
	obs.publish("visitrooms/room-a/cmd", start, false)
	late := strictReply(t, obs.next("reply", func(m obsMsg) bool {
		rep := strictReply(t, m.Payload)
		return rep.RequestID == "w1" && rep.Operator == "" && rep.State != nil && rep.State.Visit != nil &&
			!rep.State.Visit.StartedAt.Equal(first.State.Visit.StartedAt.Time)
	}).Payload)
	assert.True(t, late.OK, "applied again after the window: a new visit")
}

// fakeBroker accepts MQTT connections, answers CONNECT, SUBSCRIBE and
// PINGREQ, and never acknowledges a PUBLISH: a broker that looks alive and
// delivers nothing.
type fakeBroker struct {
	ln       net.Listener
	connects atomic.Int32
}

func startFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeBroker{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeBroker) URL() string { return "tcp://" + f.ln.Addr().String() }

func (f *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	for {
		p, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		var out packets.ControlPacket
		switch p := p.(type) {
		case *packets.ConnectPacket:
			f.connects.Add(1)
			out = packets.NewControlPacket(packets.Connack)
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID = p.MessageID
			sa.ReturnCodes = make([]byte, len(p.Topics))
			out = sa
		case *packets.PingreqPacket:
			out = packets.NewControlPacket(packets.Pingresp)
		case *packets.DisconnectPacket:
			return
		}
		if out != nil {
			if err := out.Write(c); err != nil {
				return
			}
		}
	}
}

// TestBrokerThatNeverAcknowledges: the room drops the connection after the
// publish timeout and dials again, and raises a critical link fault after
// FaultAfter; it goes on.
func TestBrokerThatNeverAcknowledges(t *testing.T) {
	fb := startFakeBroker(t)
	r := startRoom(t, roomOpts{url: fb.URL(), noWait: true, pub: func(o *PublisherOptions) {
		o.PublishTimeout = 500 * time.Millisecond
		o.FaultAfter = 2 * time.Second
	}})
	r.input(controller.InputPanic, controller.LevelActive)
	deadline := time.After(waitTimeout)
	for {
		var st controller.State
		r.do(func() { st = r.ctrl.State() })
		var link *controller.Alert
		for i := range st.Alerts {
			if st.Alerts[i].Source == contract.SourceLink {
				link = &st.Alerts[i]
			}
		}
		if link != nil {
			assert.Equal(t, controller.SeverityCritical, link.Severity)
			assert.Contains(t, link.Detail, "could not deliver")
			break
		}
		select {
		case <-deadline:
			t.Fatalf("no link fault; %d connects", fb.connects.Load())
		case <-time.After(100 * time.Millisecond):
		}
	}
	assert.GreaterOrEqual(t, fb.connects.Load(), int32(2), "the connection was dropped and made again")
	r.stop(false) // nothing is ever acknowledged: a clean stop would wait out its flush
}

// unlimited is a rate limit no test floods past.
var unlimited = RateLimit{PerSecond: 1 << 20, Burst: 1 << 20, CapPerSecond: 1 << 30}
