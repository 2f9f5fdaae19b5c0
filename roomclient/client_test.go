package roomclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// wait bounds every wait in these tests.
const wait = 20 * time.Second

// inbox collects what a client hands over.
type inbox struct {
	mu      sync.Mutex
	records []roomclient.Record
	losses  []roomclient.Loss
	msgs    []roomclient.Message
	changed chan struct{}
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{}, 1)} }

func (b *inbox) poke() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *inbox) record(r roomclient.Record) {
	b.mu.Lock()
	b.records = append(b.records, r)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) loss(l roomclient.Loss) {
	b.mu.Lock()
	b.losses = append(b.losses, l)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) message(m roomclient.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.poke()
}

// until waits until cond holds (evaluated under the lock).
func (b *inbox) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-b.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (b *inbox) recordsOf(typ string) []roomclient.Record {
	var out []roomclient.Record
	for _, r := range b.records {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func dial(t *testing.T, o roomclient.Options) *roomclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := roomclient.Dial(ctx, o)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func send(t *testing.T, c *roomclient.Client, room string, cmd roomclient.Command) *roomclient.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Send(ctx, room, cmd)
	require.NoError(t, err)
	return r
}

func TestSendRecordsAndRegistryAgainstARoom(t *testing.T) {
	url := mqtttest.Embedded(t)
	box := newInbox()
	booking := dial(t, roomclient.Options{Broker: url, ClientID: "booking", Streams: roomclient.RegistryStreams,
		OnRecord: box.record, OnLoss: box.loss})
	guard := dial(t, roomclient.Options{Broker: url, ClientID: "guard-7", Operator: "guard-7", CleanSession: true})
	r := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-1"})

	reply := send(t, booking, "room-1", roomclient.StartVisit("v-42", 90*time.Minute))
	require.NoError(t, reply.Err())
	assert.Equal(t, "room-1", reply.Room)
	assert.Equal(t, "start_visit", reply.Action)
	assert.Empty(t, reply.Operator, "the booking system's anonymous topic")
	require.NotNil(t, reply.State)
	require.NotNil(t, reply.State.Visit)
	assert.Equal(t, "v-42", reply.State.Visit.ID)

	reply = send(t, booking, "room-1", roomclient.StartVisit("v-43", time.Hour))
	var refused *roomclient.RefusedError
	require.ErrorAs(t, reply.Err(), &refused)
	assert.Equal(t, "visit_in_progress", refused.Code)
	assert.Equal(t, "start_visit", refused.Action)

	// An operator's command is recorded with the operator as by.
	reply = send(t, guard, "room-1", roomclient.ExtendVisit(15*time.Minute))
	require.NoError(t, reply.Err())
	assert.Equal(t, "guard-7", reply.Operator)
	require.NoError(t, send(t, booking, "room-1", roomclient.EndVisit()).Err())

	box.until(t, "visit_ended once", func() bool { return len(box.recordsOf("visit_ended")) == 1 })
	box.mu.Lock()
	ext := box.recordsOf("visit_extended")
	require.Len(t, ext, 1)
	assert.Equal(t, "guard-7", ext[0].By)
	assert.Equal(t, int64(900), *ext[0].AddedS)
	started := box.recordsOf("visit_started")
	require.Len(t, started, 1)
	assert.Empty(t, started[0].By)
	// Every record once, in seq order, from the first one seen.
	for i := 1; i < len(box.records); i++ {
		assert.Equal(t, box.records[i-1].Seq+1, box.records[i].Seq, "records %d and %d", i-1, i)
		assert.Equal(t, roomclient.New, box.records[i].Verdict)
	}
	assert.Empty(t, box.losses)
	box.mu.Unlock()

	// The registry: the room, its version and policy, online.
	rooms := booking.Rooms()
	require.Len(t, rooms, 1)
	assert.Equal(t, "room-1", rooms[0].ID)
	assert.Equal(t, roomclient.Online, rooms[0].Availability)
	require.NotNil(t, rooms[0].Info)
	assert.Equal(t, contract.ContractVersion, rooms[0].Info.Version)
	assert.Equal(t, "italy", rooms[0].Info.Policy.Name)
	assert.Equal(t, int64(2*3600), rooms[0].Info.Policy.MaxDurationS)
	assert.Equal(t, int64(2), rooms[0].Info.HeartbeatS)
	assert.False(t, rooms[0].Stale)
	require.Eventually(t, func() bool { return booking.Rooms()[0].Seq == booking.Marks()["room-1"].Seq }, wait, 10*time.Millisecond,
		"the state follows the last record")

	// Stopped, the room says offline.
	r.Stop()
	require.Eventually(t, func() bool {
		rooms := booking.Rooms()
		return len(rooms) == 1 && rooms[0].Availability == roomclient.Offline
	}, wait, 10*time.Millisecond)
}

func TestSendRetriesUntilTheRoomAnswersAndAppliesOnce(t *testing.T) {
	url := mqtttest.Embedded(t)
	// A spy sees every copy of the command and every reply.
	spy := newInbox()
	spyc := dial(t, roomclient.Options{Broker: url, CleanSession: true, Rooms: []string{"room-2"}, Streams: roomclient.Replies,
		OnMessage: spy.message})
	require.NoError(t, spyc.Subscribe(context.Background(), "visitrooms/room-2/cmd", spy.message))
	booking := dial(t, roomclient.Options{Broker: url, ClientID: "booking", RetryEvery: 100 * time.Millisecond})
	// The command goes out before the room exists: the broker drops it (no
	// subscriber), and Send publishes it again until the room answers.
	got := make(chan *roomclient.Reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		r, err := booking.Send(ctx, "room-2", roomclient.StartVisit("v-1", time.Hour))
		if !assert.NoError(t, err) {
			return
		}
		got <- r
	}()
	copies := func() (n int) {
		for _, m := range spy.msgs {
			if m.Kind == roomclient.KindOther {
				n++
			}
		}
		return n
	}
	spy.until(t, "two copies sent before the room is up", func() bool { return copies() >= 2 })
	roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-2"})
	var r *roomclient.Reply
	select {
	case r = <-got:
	case <-time.After(wait):
		t.Fatal("no reply")
	}
	require.NoError(t, r.Err())

	// Copies that reached the room while the first was in progress, or
	// after, are answered with the first reply, never applied again (a
	// second start_visit would be refused visit_in_progress).
	require.NoError(t, send(t, booking, "room-2", roomclient.EndVisit()).Err())
	spy.mu.Lock()
	n := 0
	for _, m := range spy.msgs {
		if m.Reply != nil && m.Reply.RequestID == r.RequestID {
			n++
			assert.Equal(t, r.ReplyMessage, *m.Reply)
		}
	}
	spy.mu.Unlock()
	assert.GreaterOrEqual(t, n, 1)

	// The same command sent again with its request id gets the first reply.
	cmd, _, err := booking.Prepare(roomclient.SetService(false, "repairs"))
	require.NoError(t, err)
	first := send(t, booking, "room-2", cmd)
	again := send(t, booking, "room-2", cmd)
	require.NoError(t, first.Err())
	assert.Equal(t, first.ReplyMessage, again.ReplyMessage)
}

func TestRecordsResumedFromAMarkAreReplayed(t *testing.T) {
	url := mqtttest.Embedded(t)
	r := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-3"})
	first := newInbox()
	c1 := dial(t, roomclient.Options{Broker: url, ClientID: "booking", OnRecord: first.record})
	for i := range 3 {
		require.NoError(t, send(t, c1, "room-3", roomclient.StartVisit(fmt.Sprintf("v-%d", i), time.Hour)).Err())
		require.NoError(t, send(t, c1, "room-3", roomclient.EndVisit()).Err())
	}
	first.until(t, "three visits", func() bool { return len(first.recordsOf("visit_ended")) == 3 })
	c1.Close()
	marks := c1.Marks()
	high := marks["room-3"]
	require.Greater(t, high.Seq, uint64(6))

	// A consumer that kept an older mark (it had handled up to seq 2) and
	// lost its session: what it did not see is replayed.
	second := newInbox()
	c2 := dial(t, roomclient.Options{Broker: url, ClientID: "booking-2", CleanSession: true, OnRecord: second.record,
		OnLoss: second.loss, ReplayDelay: 50 * time.Millisecond,
		Resume: map[string]roomclient.Mark{"room-3": {Epoch: high.Epoch, Seq: 2}}})
	_ = c2
	// The retained state reveals the tail.
	second.until(t, "seqs 3..high replayed", func() bool {
		seen := map[uint64]bool{}
		for _, rec := range second.records {
			seen[rec.Seq] = true
		}
		for s := uint64(3); s <= high.Seq; s++ {
			if !seen[s] {
				return false
			}
		}
		return true
	})
	second.mu.Lock()
	for _, rec := range second.records {
		assert.Equal(t, roomclient.Filled, rec.Verdict, "seq %d", rec.Seq)
		assert.Greater(t, rec.Seq, uint64(2))
	}
	assert.Empty(t, second.losses)
	second.mu.Unlock()
	_ = r
}

func TestRecordsTheRoomCannotReplayAreReportedLost(t *testing.T) {
	url := mqtttest.Embedded(t)
	roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-4"})
	box := newInbox()
	dial(t, roomclient.Options{Broker: url, ClientID: "booking", OnRecord: box.record, OnLoss: box.loss,
		ReplayDelay: 50 * time.Millisecond})
	// Records of an epoch the room's journal does not hold (as after a
	// journal loss), with seqs 2 and 3 never seen.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("forger"))
	require.True(t, pub.Connect().WaitTimeout(wait))
	defer pub.Disconnect(0)
	for _, seq := range []uint64{1, 4} {
		ev := contract.EventMessage{Room: "room-4", Epoch: "00000000000000ff", Seq: seq, At: contract.T(wallclock.Now()), Type: "door_opened"}
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		tok := pub.Publish("visitrooms/room-4/events", 1, false, b)
		require.True(t, tok.WaitTimeout(wait))
	}
	box.until(t, "the loss", func() bool { return len(box.losses) > 0 })
	box.mu.Lock()
	defer box.mu.Unlock()
	l := box.losses[0]
	assert.Equal(t, roomclient.Gap{Room: "room-4", Epoch: "00000000000000ff", Range: roomclient.Range{From: 2, To: 3}}, l.Gap)
	assert.Contains(t, l.Reason, "replay_unavailable")
}

func TestNoRoomNoReply(t *testing.T) {
	url := mqtttest.Embedded(t)
	c := dial(t, roomclient.Options{Broker: url, CleanSession: true, RetryEvery: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, "room-9", roomclient.EndVisit())
	var nr *roomclient.NoReplyError
	require.ErrorAs(t, err, &nr)
	assert.Equal(t, "room-9", nr.Room)
	assert.Equal(t, "end_visit", nr.Action)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestInvalidCommandIsNotSent(t *testing.T) {
	url := mqtttest.Embedded(t)
	c := dial(t, roomclient.Options{Broker: url, CleanSession: true})
	for _, tc := range []struct {
		cmd  roomclient.Command
		code string
	}{
		{roomclient.StartVisit("a name with spaces", time.Hour), "invalid_visit_id"},
		{roomclient.ExtendVisit(-time.Minute), "invalid_duration"},
		{roomclient.Replay("", 0, 0), "bad_request"},
		{roomclient.EndVisit().WithExpiry(wallclock.Now().Add(-time.Second)), "expired"},
		{roomclient.EndVisit().WithExpiry(wallclock.Now().Add(2 * time.Hour)), "bad_request"},
	} {
		_, err := c.Send(context.Background(), "room-1", tc.cmd)
		var inv *roomclient.InvalidCommandError
		require.ErrorAs(t, err, &inv, "%+v", tc.cmd)
		assert.Equal(t, tc.code, inv.Code, "%+v", tc.cmd)
	}
	_, err := c.Send(context.Background(), "Room 1", roomclient.EndVisit())
	assert.ErrorContains(t, err, `room id "Room 1"`)
}

func TestOptionsChecked(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		o    roomclient.Options
		want string
	}{
		{roomclient.Options{Broker: "127.0.0.1:1883", ClientID: "x"}, "want scheme://host:port"},
		{roomclient.Options{Broker: "http://127.0.0.1:1883", ClientID: "x"}, `unknown scheme "http"`},
		{roomclient.Options{Broker: "tcp://127.0.0.1:1883"}, "persistent session needs a stable client id"},
		{roomclient.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "x", Base: "a/#"}, "wildcard"},
		{roomclient.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "x", Rooms: []string{"Room"}}, `room id "Room"`},
		{roomclient.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "x", Operator: "on_site"}, `operator "on_site"`},
		{roomclient.Options{Broker: "tcp://127.0.0.1:1883", ClientID: "x", CommandLife: 2 * time.Hour}, "CommandLife 2h0m0s"},
	} {
		_, err := roomclient.Dial(ctx, tc.o)
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := roomclient.Dial(ctx, roomclient.Options{Broker: "tcp://127.0.0.1:1", CleanSession: true, ConnectTimeout: 2 * time.Second})
	var ce *roomclient.ConnectError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "connect to broker tcp://127.0.0.1:1")
}

// TestBusyIsSentAgain answers the first copy of a command busy, as a room
// whose queue is full does, and checks that Send sends the same command
// again and returns the next answer.
func TestBusyIsSentAgain(t *testing.T) {
	url := mqtttest.Embedded(t)
	fake := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("fake-room"))
	require.True(t, fake.Connect().WaitTimeout(wait))
	defer fake.Disconnect(0)
	var mu sync.Mutex
	var seen []contract.CommandMessage
	tok := fake.Subscribe("visitrooms/room-5/cmd/#", 1, func(c mqtt.Client, m mqtt.Message) {
		var cmd contract.CommandMessage
		if json.Unmarshal(m.Payload(), &cmd) != nil {
			return
		}
		mu.Lock()
		seen = append(seen, cmd)
		n := len(seen)
		mu.Unlock()
		r := contract.ReplyMessage{RequestID: cmd.RequestID, Operator: "op-1", Action: cmd.Action, OK: true}
		if n == 1 {
			r.OK, r.Error = false, &contract.ErrorBody{Code: "busy", Message: "roomd is busy"}
		}
		b, _ := json.Marshal(r)
		go c.Publish("visitrooms/room-5/reply", 1, false, b)
	})
	require.True(t, tok.WaitTimeout(wait))
	c := dial(t, roomclient.Options{Broker: url, CleanSession: true, Operator: "op-1", RetryEvery: 100 * time.Millisecond})
	r := send(t, c, "room-5", roomclient.SetReady())
	assert.True(t, r.OK)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(seen), 2)
	assert.Equal(t, seen[0], seen[1], "the very same command, request id and expiry")
	assert.Equal(t, controller.ActionSetReady.String(), seen[0].Action)
	assert.NotEmpty(t, seen[0].ExpiresAt)
}
