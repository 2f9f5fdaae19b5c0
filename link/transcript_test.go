package link_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/wallclock"
)

var update = flag.Bool("update", false, "rewrite docs/transcript.md from a fresh run")

// TestTranscriptFullVisit runs a real room (room.Open through roomtest, the
// simulator backend, the embedded broker) through a full visit and records
// every message on {base}/# with its topic, QoS and retained flag as
// published: warnings, an extension, the door bolted (door_locked, repeated,
// acknowledged), a panic acknowledged and reset on site, time_up escalated,
// repeated, acknowledged and reannounced, an operator's commands, a restart
// during a visit (what fell due while roomd was down, with due_at), the end
// of a visit by vacancy, and a replay. Every message is validated against
// docs/asyncapi.yaml by a third-party JSON Schema validator, and the run is
// written as docs/transcript.md, which must equal the committed file
// (go test ./link -run Transcript -update rewrites it).
func TestTranscriptFullVisit(t *testing.T) {
	schemas := contracttest.Load(t)
	broker := mqtttest.Embedded(t)
	clock := newManualClock(t0)
	rec := startRecorder(t, broker)
	dir := t.TempDir()

	var sr *simRoom
	start := func() *roomtest.Room {
		cfg := transcriptConfig(t, broker, dir)
		sr = newSimRoom(t, cfg, clock, sr)
		return roomtest.Start(t, roomtest.Options{Broker: broker, Room: "room-1", Dir: dir,
			Config:  func(c *configs.Config) { *c = *cfg },
			Options: func(o *room.Options) { o.Clock = clock; o.Backend = sr; o.Version = "transcript" }})
	}
	ts := &transcript{t: t, rec: rec, clock: clock}

	ts.section("roomd starts", "A room with nobody in it: roomd says it is online, what it is (info), that it started, and its state.")
	r := start()
	sr.waitInitial(t)
	ts.waitTopic("availability", func(m recorded) bool { return string(m.Payload) == contract.Online })
	ts.waitTopic("info", nil)
	// One state for the start, one for the first reading of each of the
	// six inputs and points (each changes the room from unknown).
	ts.waitStates(7)
	ts.flush(r)

	ts.section("the booking system asks for the state", "")
	ts.command("cmd", `{"request_id":"b-100","action":"get_state"}`)

	ts.section("the booking system starts a visit of 30 minutes", "On the anonymous cmd topic: the records carry no `by`.")
	ts.command("cmd", fmt.Sprintf(`{"request_id":"b-101","action":"start_visit","visit_id":"v-1001","duration":"30m","expires_at":%q}`, ts.expires(5*time.Minute)))
	ts.flush(r)

	ts.section("operator guard-7 extends the visit by 10 minutes", "On cmd/guard-7: the record carries `by`, the reply `operator`.")
	ts.command("cmd/guard-7", fmt.Sprintf(`{"request_id":"g-1","action":"extend_visit","add":"10m","expires_at":%q}`, ts.expires(5*time.Minute)))
	ts.flush(r)

	ts.section("guard-7 sends the same extension again", "The same (operator, request_id) within the retention window: the first reply again, nothing applied.")
	ts.command("cmd/guard-7", fmt.Sprintf(`{"request_id":"g-1","action":"extend_visit","add":"10m","expires_at":%q}`, ts.expires(5*time.Minute)))

	ts.section("a command that expired on its way", "")
	ts.command("cmd", `{"request_id":"b-102","action":"end_visit","expires_at":"2026-03-01T08:59:00.000Z"}`)

	ts.section("30 minutes in: the first warning, 10 minutes before the end", "")
	clock.set(t0.Add(30 * time.Minute))
	ts.waitEvent("visit_warning")
	ts.flush(r)

	ts.section("the occupants bolt the door", "lock_engaged at once; door_locked after the lock grace of 10 s.")
	sr.set(t, controller.InputLock, "", controller.LevelActive)
	ts.waitEvent("lock_engaged")
	ts.flush(r)
	clock.set(t0.Add(30*time.Minute + 10*time.Second))
	ts.waitEvent("alert_raised")
	ts.flush(r)

	ts.section("nobody acknowledges: door_locked is announced again after repeat_every (2 minutes)", "")
	clock.set(t0.Add(32*time.Minute + 10*time.Second))
	ts.waitEvent("alert_repeated")
	ts.flush(r)

	ts.section("guard-7 acknowledges door_locked", "")
	ts.command("cmd/guard-7", fmt.Sprintf(`{"request_id":"g-2","action":"ack_alert","alert_id":%q,"expires_at":%q}`, ts.alertID("door_locked"), ts.expires(time.Minute)))
	ts.flush(r)

	ts.section("the door is unbolted: door_locked clears", "")
	sr.set(t, controller.InputLock, "", controller.LevelInactive)
	ts.waitEvent("alert_cleared")
	ts.flush(r)

	ts.section("the panic point at the bed is pressed", "")
	sr.set(t, controller.InputPanic, "bed", controller.LevelActive)
	ts.waitEvent("alert_raised")
	ts.flush(r)

	ts.section("guard-7 acknowledges the panic; the point is released", "With panic_reset on_site the alert stays until it is reset at the room.")
	ts.command("cmd/guard-7", fmt.Sprintf(`{"request_id":"g-3","action":"ack_alert","alert_id":%q,"expires_at":%q}`, ts.alertID("panic"), ts.expires(time.Minute)))
	ts.setAndWaitState(sr, controller.InputPanic, "bed", controller.LevelInactive)
	ts.flush(r)

	ts.section("staff at the room press the staff input: the panic is reset and clears", "The record is `by: on_site`.")
	sr.set(t, controller.InputStaff, "", controller.LevelActive)
	ts.waitEvent("alert_cleared")
	ts.setAndWaitState(sr, controller.InputStaff, "", controller.LevelInactive)
	ts.flush(r)

	ts.section("35 minutes in: the second warning, 5 minutes before the end", "")
	clock.set(t0.Add(35 * time.Minute))
	ts.waitEvent("visit_warning")
	ts.flush(r)

	ts.section("40 minutes in: time is up", "")
	clock.set(t0.Add(40 * time.Minute))
	ts.waitEvent("alert_raised")
	ts.flush(r)

	ts.section("nobody acknowledges: after escalate_after (5 minutes) time_up becomes critical", "")
	clock.set(t0.Add(45 * time.Minute))
	ts.waitEvent("alert_escalated")
	ts.flush(r)

	ts.section("still nobody: time_up is repeated after repeat_every (2 minutes)", "")
	clock.set(t0.Add(47 * time.Minute))
	ts.waitEvent("alert_repeated")
	ts.flush(r)

	ts.section("guard-7 acknowledges time_up", "")
	ts.command("cmd/guard-7", fmt.Sprintf(`{"request_id":"g-4","action":"ack_alert","alert_id":%q,"expires_at":%q}`, ts.alertID("time_up"), ts.expires(time.Minute)))
	ts.flush(r)

	ts.section("the visit still runs after reannounce_after (5 minutes): time_up is unacknowledged again", "")
	clock.set(t0.Add(52 * time.Minute))
	ts.waitEvent("alert_reannounced")
	ts.flush(r)

	ts.section("the booking system ends the visit", "time_up clears with it.")
	ts.command("cmd", fmt.Sprintf(`{"request_id":"b-103","action":"end_visit","expires_at":%q}`, ts.expires(5*time.Minute)))
	ts.flush(r)

	ts.section("somebody is in the room before the next visit", "Outside visits the state shows presence.")
	clock.set(t0.Add(60 * time.Minute))
	ts.setAndWaitState(sr, controller.InputPresence, "", controller.LevelActive)
	ts.flush(r)

	ts.section("the booking system asks for the state again", "")
	ts.command("cmd", `{"request_id":"b-104","action":"get_state"}`)

	ts.section("the second visit starts, 20 minutes", "")
	ts.command("cmd", fmt.Sprintf(`{"request_id":"b-105","action":"start_visit","visit_id":"v-1002","duration":"20m","expires_at":%q}`, ts.expires(5*time.Minute)))
	ts.flush(r)

	ts.section("roomd is stopped, and started again 12 minutes later", "What fell due while it was down (the first warning at 10 minutes before the end) is announced once, at the restart, with `due_at`.")
	r.Stop()
	ts.waitTopic("availability", func(m recorded) bool { return string(m.Payload) == contract.Offline })
	clock.set(t0.Add(72 * time.Minute))
	r = start()
	sr.waitInitial(t)
	ts.waitTopic("availability", func(m recorded) bool { return string(m.Payload) == contract.Online })
	ts.waitTopic("info", nil)
	ts.waitEvent("visit_warning")
	ts.flush(r)

	ts.section("the door opens and the occupants leave", "Presence is never published during a visit; the door is.")
	sr.set(t, controller.InputDoor, "", controller.LevelActive)
	ts.waitEvent("door_opened")
	sr.set(t, controller.InputPresence, "", controller.LevelInactive)
	sr.set(t, controller.InputDoor, "", controller.LevelInactive)
	ts.waitEvent("door_closed")
	ts.flush(r)

	ts.section("nobody for vacancy_hold (1 minute): the visit ends by vacancy", "The one thing presence may cause during a visit.")
	clock.set(t0.Add(73 * time.Minute))
	ts.waitEvent("visit_ended")
	ts.flush(r)

	ts.section("guard-7 replays seq 5 to 8", "The records again, with their original payloads, then the reply.")
	ts.command("cmd/guard-7", `{"request_id":"g-5","action":"replay","from_seq":5,"to_seq":8}`)

	ts.section("roomd stops", "A clean shutdown publishes offline itself; after a crash the broker publishes the Last Will.")
	r.Stop()
	ts.waitTopic("availability", func(m recorded) bool { return string(m.Payload) == contract.Offline })

	msgs := rec.all()
	for _, m := range msgs {
		if m.Topic == markTopic {
			continue
		}
		assert.NoError(t, schemas.Validate(t, messageOf(m.Topic), m.Payload), "%s", m.Topic)
		assert.Equal(t, byte(1), m.QoS, "%s: QoS", m.Topic)
		assert.Equal(t, retainedTopic(m.Topic), m.Retained, "%s: retained flag", m.Topic)
	}
	checkRecords(t, msgs)

	got := ts.render(msgs)
	path := filepath.Join("..", "docs", "transcript.md")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test ./link -run Transcript -update writes it")
	assert.Equal(t, string(want), got, "docs/transcript.md differs from a fresh run; rewrite it with go test ./link -run Transcript -update and review the difference")
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// checkRecords: every record is announced once per epoch and seq on events
// (and its copy follows on alerts), replays aside, with no gap; every state
// carries a seq already announced.
func checkRecords(t *testing.T, msgs []recorded) {
	t.Helper()
	seen := map[string][]byte{}
	var last uint64
	for i, m := range msgs {
		var key struct {
			Epoch string `json:"epoch"`
			Seq   uint64 `json:"seq"`
			Type  string `json:"type"`
		}
		switch {
		case strings.HasSuffix(m.Topic, "/events"):
			require.NoError(t, json.Unmarshal(m.Payload, &key))
			k := fmt.Sprintf("%s/%d", key.Epoch, key.Seq)
			if prev, ok := seen[k]; ok {
				assert.Equal(t, string(prev), string(m.Payload), "the same (epoch, seq) carries the same payload")
				continue
			}
			seen[k] = m.Payload
			assert.Equal(t, last+1, key.Seq, "no gap before %s", m.Payload)
			last = key.Seq
			if strings.HasPrefix(key.Type, "alert_") {
				require.Less(t, i+1, len(msgs))
				assert.True(t, strings.HasSuffix(msgs[i+1].Topic, "/alerts") && bytes.Equal(msgs[i+1].Payload, m.Payload),
					"the alerts copy follows its events copy: %s", m.Payload)
			}
		case strings.HasSuffix(m.Topic, "/state"):
			require.NoError(t, json.Unmarshal(m.Payload, &key))
			assert.LessOrEqual(t, key.Seq, last, "a state never before its record")
		}
	}
}

func retainedTopic(topic string) bool {
	return strings.HasSuffix(topic, "/availability") || strings.HasSuffix(topic, "/info") || strings.HasSuffix(topic, "/state")
}

// messageOf names the message of docs/asyncapi.yaml a topic carries.
func messageOf(topic string) string {
	parts := strings.Split(topic, "/")
	switch {
	case len(parts) >= 4 && parts[2] == "cmd":
		return "command"
	case len(parts) == 3 && parts[2] == "cmd":
		return "command"
	case len(parts) == 3 && parts[2] == "events":
		return "event"
	case len(parts) == 3 && parts[2] == "alerts":
		return "alert"
	}
	return parts[len(parts)-1]
}

func transcriptConfig(t *testing.T, broker, dir string) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: room-1\nstate_dir: %s\npolicy: {preset: italy}\ndevice: {backend: sim}\nmqtt: {broker: %q, heartbeat: 1h, keepalive: 5s}\ncommands: {operators: [guard-7]}\n",
		dir, broker), "transcript config")
	require.NoError(t, err)
	cfg.Policy = controller.Policy{
		Name:            "transcript",
		MaxDuration:     2 * time.Hour,
		Extension:       controller.ExtensionUpToMax,
		Warnings:        []time.Duration{10 * time.Minute, 5 * time.Minute},
		EscalateAfter:   5 * time.Minute,
		RepeatEvery:     2 * time.Minute,
		ReannounceAfter: 5 * time.Minute,
		LockScope:       controller.LockDuringVisit,
		LockGrace:       10 * time.Second,
		EndOnVacancy:    true,
		VacancyHold:     time.Minute,
		VacateTimeout:   5 * time.Minute,
		PanicReset:      controller.PanicResetOnSite,
	}
	line := func(pin string, point string) configs.Line {
		return configs.Line{Pin: pin, Pull: configs.PullUp, Debounce: 30 * time.Millisecond, Point: point}
	}
	door, lock, staff := line("GPIO17", ""), line("GPIO27", ""), line("GPIO22", "")
	staff.ActiveLow = true
	cfg.Device.Inputs = configs.Inputs{Door: &door, Lock: &lock, Staff: &staff,
		Presence: []configs.Line{line("GPIO23", "")},
		Panic:    []configs.Line{line("GPIO5", "bed"), line("GPIO6", "toilet")}}
	cfg.Device.Outputs = map[controller.Output]configs.Line{}
	for i, o := range controller.Outputs {
		cfg.Device.Outputs[o] = configs.Line{Pin: fmt.Sprintf("GPIO%d", 12+i)}
	}
	return cfg
}

// simRoom is the simulator backend with the deliveries of its readings
// watched: set changes an input and returns once the room's loop has taken
// the reading, so what the test does next comes after it.
type simRoom struct {
	*sim.Room
	clock *manualClock
	mu    sync.Mutex
	cond  *sync.Cond
	taken []device.Reading
	out   chan<- device.Reading
}

func newSimRoom(t *testing.T, cfg *configs.Config, clock *manualClock, prev *simRoom) *simRoom {
	t.Helper()
	s, err := sim.New(room.DeviceSpec(cfg), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	sr := &simRoom{Room: s, clock: clock}
	sr.cond = sync.NewCond(&sr.mu)
	// The room's inputs as they were: a restart is not a change.
	levels := map[controller.Input]controller.Level{controller.InputDoor: controller.LevelInactive,
		controller.InputLock: controller.LevelInactive, controller.InputPresence: controller.LevelInactive,
		controller.InputStaff: controller.LevelInactive}
	if prev != nil {
		prev.mu.Lock()
		for _, rd := range prev.taken {
			if rd.Input != controller.InputPanic {
				levels[rd.Input] = rd.Level
			}
		}
		prev.mu.Unlock()
	}
	for in, l := range levels {
		require.NoError(t, s.SetInput(in, l))
	}
	for _, p := range []string{"bed", "toilet"} {
		require.NoError(t, s.SetPoint(p, controller.LevelInactive))
	}
	return sr
}

// Run forwards the simulator's readings, each stamped so that the loop
// dates it at the axis time it was taken at.
func (s *simRoom) Run(ctx context.Context, out chan<- device.Reading) error {
	in := make(chan device.Reading)
	s.mu.Lock()
	s.out = out
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.Room.Run(ctx, in) }()
	for {
		select {
		case rd := <-in:
			rd.At = s.clock.stamp()
			select {
			case out <- rd:
			case <-ctx.Done():
				return <-done
			}
			s.mu.Lock()
			s.taken = append(s.taken, rd)
			s.cond.Broadcast()
			s.mu.Unlock()
		case err := <-done:
			return err
		}
	}
}

// waitInitial waits until the loop has taken the first reading of every
// input and panic point.
func (s *simRoom) waitInitial(t *testing.T) {
	t.Helper()
	deadline := wallclock.Now().Add(waitTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.taken) < 6 || len(s.out) > 0 {
		require.True(t, wallclock.Now().Before(deadline), "the room took %d initial readings", len(s.taken))
		s.mu.Unlock()
		waitBriefly()
		s.mu.Lock()
	}
}

// set changes an input (a panic point when point is set) and waits until
// the loop has taken the reading of that level.
func (s *simRoom) set(t *testing.T, in controller.Input, point string, l controller.Level) {
	t.Helper()
	s.mu.Lock()
	n := len(s.taken)
	s.mu.Unlock()
	if point != "" {
		require.NoError(t, s.SetPoint(point, l))
	} else {
		require.NoError(t, s.SetInput(in, l))
	}
	deadline := wallclock.Now().Add(waitTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		found := false
		for _, rd := range s.taken[n:] {
			if rd.Input == in && rd.Level == l && (point == "" || rd.Point == point) {
				found = true
			}
		}
		if found && len(s.out) == 0 {
			return
		}
		require.True(t, wallclock.Now().Before(deadline), "the room did not take %s %s=%s", in, point, l)
		s.mu.Unlock()
		waitBriefly()
		s.mu.Lock()
	}
}

const waitTimeout = 60 * time.Second

// waitBriefly yields while a condition that real I/O settles is polled.
func waitBriefly() { <-time.After(2 * time.Millisecond) }

// manualClock is the room's time, moved by the test: a run is the same
// every time, to the millisecond.
type manualClock struct {
	mu     sync.Mutex
	base   time.Time
	off    time.Duration
	timers []*manualTimer
	// read is the offset the last reader of the clock saw: the loop
	// computes a timer's duration from the time it read, and may arm the
	// timer after the test moved the clock.
	read   time.Duration
	stamps map[time.Time]time.Duration // reading stamp → axis offset when taken
}

func newManualClock(base time.Time) *manualClock {
	return &manualClock{base: base, stamps: map[time.Time]time.Duration{}}
}

func (c *manualClock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(c.off)
}
func (c *manualClock) Boot() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = c.off
	return time.Hour + c.off
}
func (c *manualClock) BootID() (string, error) { return "manual-clock", nil }
func (c *manualClock) Synced() bool            { return true }

// Since is the axis time since a reading stamped by stamp was taken.
func (c *manualClock) Since(t time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off, ok := c.stamps[t]; ok {
		return c.off - off
	}
	return 0
}

// stamp returns a unique real time standing for the axis time now.
func (c *manualClock) stamp() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := wallclock.Now()
	for {
		if _, dup := c.stamps[s]; !dup {
			break
		}
		s = s.Add(time.Nanosecond)
	}
	c.stamps[s] = c.off
	return s
}

func (c *manualClock) NewTimer(d time.Duration) daemon.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &manualTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, tm)
	tm.resetLocked(d)
	return tm
}

// set moves the clock to at and fires the timers due by then.
func (c *manualClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = at.Sub(c.base)
	for _, tm := range c.timers {
		tm.fireIfDueLocked()
	}
}

type manualTimer struct {
	c        *manualClock
	ch       chan time.Time
	deadline time.Duration
	armed    bool
}

func (tm *manualTimer) C() <-chan time.Time { return tm.ch }
func (tm *manualTimer) Reset(d time.Duration) {
	tm.c.mu.Lock()
	defer tm.c.mu.Unlock()
	tm.resetLocked(d)
}
func (tm *manualTimer) Stop() {
	tm.c.mu.Lock()
	defer tm.c.mu.Unlock()
	tm.armed = false
	tm.drain()
}
func (tm *manualTimer) resetLocked(d time.Duration) {
	tm.drain()
	tm.deadline, tm.armed = tm.c.read+max(d, 0), true
	tm.fireIfDueLocked()
}
func (tm *manualTimer) fireIfDueLocked() {
	if tm.armed && tm.deadline <= tm.c.off {
		tm.armed = false
		select {
		case tm.ch <- tm.c.base.Add(tm.c.off):
		default:
		}
	}
}
func (tm *manualTimer) drain() {
	select {
	case <-tm.ch:
	default:
	}
}

// recorded is one message as the broker delivered it to the recorder.
type recorded struct {
	Topic    string
	QoS      byte
	Retained bool
	Payload  []byte
}

// markTopic carries the recorder's own section marks (not part of the contract).
const markTopic = "transcript/mark"

// recorder is an MQTT 5 subscriber on {base}/# with retain-as-published, so
// that it sees the retained flag each message was published with (an MQTT
// 3.1.1 subscriber sees it only on messages sent because it subscribed). It
// also publishes the test's commands and section marks.
type recorder struct {
	t    *testing.T
	conn net.Conn
	wmu  sync.Mutex
	id   uint16

	mu   sync.Mutex
	cond *sync.Cond
	msgs []recorded
	err  error
}

func startRecorder(t *testing.T, brokerURL string) *recorder {
	t.Helper()
	u, err := url.Parse(brokerURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	rc := &recorder{t: t, conn: conn}
	rc.cond = sync.NewCond(&rc.mu)
	t.Cleanup(func() { _ = conn.Close() })
	br := bufio.NewReader(conn)
	rc.write(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: "transcript-recorder"}})
	ack, err := readPacket(br)
	require.NoError(t, err)
	require.Equal(t, packets.Connack, ack.FixedHeader.Type)
	require.Equal(t, byte(0), ack.ReasonCode, "connack")
	rc.write(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 5, PacketID: rc.nextID(),
		Filters: packets.Subscriptions{{Filter: "visitrooms/#", Qos: 1, RetainAsPublished: true},
			{Filter: markTopic, Qos: 1, RetainAsPublished: true}}})
	sub, err := readPacket(br)
	require.NoError(t, err)
	require.Equal(t, packets.Suback, sub.FixedHeader.Type)
	require.Equal(t, []byte{1, 1}, sub.ReasonCodes, "suback")
	go rc.read(br)
	return rc
}

func (rc *recorder) nextID() uint16 {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.id++
	return rc.id
}

func (rc *recorder) write(pk *packets.Packet) {
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	}
	require.NoError(rc.t, err)
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	_, err = rc.conn.Write(buf.Bytes())
	require.NoError(rc.t, err)
}

func readPacket(br *bufio.Reader) (*packets.Packet, error) {
	hb, err := br.ReadByte()
	if err != nil {
		return nil, err
	}
	pk := &packets.Packet{ProtocolVersion: 5}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return nil, err
	}
	n, _, err := packets.DecodeLength(br)
	if err != nil {
		return nil, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := ioReadFull(br, body); err != nil {
		return nil, err
	}
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	}
	return pk, err
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (rc *recorder) read(br *bufio.Reader) {
	for {
		pk, err := readPacket(br)
		if err != nil {
			rc.mu.Lock()
			rc.err = err
			rc.cond.Broadcast()
			rc.mu.Unlock()
			return
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if pk.FixedHeader.Qos > 0 {
			var buf bytes.Buffer
			ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: 5, PacketID: pk.PacketID}
			if ack.PubackEncode(&buf) == nil {
				rc.wmu.Lock()
				_, _ = rc.conn.Write(buf.Bytes())
				rc.wmu.Unlock()
			}
		}
		rc.mu.Lock()
		rc.msgs = append(rc.msgs, recorded{Topic: pk.TopicName, QoS: pk.FixedHeader.Qos, Retained: pk.FixedHeader.Retain,
			Payload: bytes.Clone(pk.Payload)})
		rc.cond.Broadcast()
		rc.mu.Unlock()
	}
}

// publish sends payload with QoS 1, not retained.
func (rc *recorder) publish(topic string, payload []byte) {
	rc.write(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 5,
		PacketID: rc.nextID(), TopicName: topic, Payload: payload})
}

// waitFrom waits for a message at index from or later that pred accepts and
// returns its index.
func (rc *recorder) waitFrom(from int, what string, pred func(recorded) bool) int {
	rc.t.Helper()
	timer := time.AfterFunc(waitTimeout, func() {
		rc.mu.Lock()
		if rc.err == nil {
			rc.err = fmt.Errorf("timed out waiting for %s", what)
		}
		rc.cond.Broadcast()
		rc.mu.Unlock()
	})
	defer timer.Stop()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := from; ; {
		for ; i < len(rc.msgs); i++ {
			if pred(rc.msgs[i]) {
				return i
			}
		}
		if rc.err != nil {
			rc.t.Fatalf("recorder: %v (waiting for %s; %d messages so far)", rc.err, what, len(rc.msgs))
		}
		rc.cond.Wait()
	}
}

func (rc *recorder) all() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.msgs...)
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.msgs)
}

// transcript drives the run section by section. A section starts with a
// mark published by the recorder after everything of the previous section
// was delivered, so every message lands in the section that caused it.
type transcript struct {
	t      *testing.T
	rec    *recorder
	clock  *manualClock
	titles map[string]string // mark payload → description
	cursor int               // where the current section starts
	n      int
}

func (ts *transcript) section(title, about string) {
	ts.t.Helper()
	if ts.titles == nil {
		ts.titles = map[string]string{}
	}
	ts.n++
	mark := fmt.Sprintf("%d. %s", ts.n, title)
	ts.titles[mark] = about
	ts.rec.publish(markTopic, []byte(mark))
	ts.cursor = ts.rec.waitFrom(ts.cursor, "mark "+mark, func(m recorded) bool { return m.Topic == markTopic && string(m.Payload) == mark })
}

// alertID returns the id of the latest alert of kind raised so far.
func (ts *transcript) alertID(kind string) string {
	ts.t.Helper()
	id := ""
	for _, m := range ts.rec.all() {
		var e contract.EventMessage
		if strings.HasSuffix(m.Topic, "/events") && json.Unmarshal(m.Payload, &e) == nil && e.Type == "alert_raised" && e.Alert.Kind == kind {
			id = e.Alert.ID
		}
	}
	require.NotEmpty(ts.t, id, "no %s alert raised", kind)
	return id
}

// expires returns an expires_at d after the room's time.
func (ts *transcript) expires(d time.Duration) string {
	return contract.FormatTime(ts.clock.Wall().Add(d))
}

// command publishes a command on topic (cmd or cmd/{operator}) and waits
// for its reply.
func (ts *transcript) command(topic, payload string) {
	ts.t.Helper()
	var c struct {
		RequestID string `json:"request_id"`
	}
	require.NoError(ts.t, json.Unmarshal([]byte(payload), &c))
	op, _ := strings.CutPrefix(topic, "cmd/")
	if topic == "cmd" {
		op = ""
	}
	ts.rec.publish("visitrooms/room-1/"+topic, []byte(payload))
	ts.rec.waitFrom(ts.cursor, "reply to "+c.RequestID, func(m recorded) bool {
		var r contract.ReplyMessage
		return m.Topic == "visitrooms/room-1/reply" && json.Unmarshal(m.Payload, &r) == nil && r.RequestID == c.RequestID && r.Operator == op
	})
}

func (ts *transcript) waitTopic(suffix string, pred func(recorded) bool) {
	ts.t.Helper()
	ts.rec.waitFrom(ts.cursor, suffix, func(m recorded) bool {
		return m.Topic == "visitrooms/room-1/"+suffix && (pred == nil || pred(m))
	})
}

// waitEvent waits for a record of type typ in this section, and for the
// state that carries its seq.
func (ts *transcript) waitEvent(typ string) {
	ts.t.Helper()
	var seq uint64
	ts.rec.waitFrom(ts.cursor, typ, func(m recorded) bool {
		var e contract.EventMessage
		if m.Topic != "visitrooms/room-1/events" || json.Unmarshal(m.Payload, &e) != nil || e.Type != typ {
			return false
		}
		seq = e.Seq
		return true
	})
	ts.waitState(seq)
}

func (ts *transcript) waitState(seq uint64) {
	ts.t.Helper()
	ts.rec.waitFrom(ts.cursor, fmt.Sprintf("state of seq %d", seq), func(m recorded) bool {
		var s contract.StateMessage
		return m.Topic == "visitrooms/room-1/state" && json.Unmarshal(m.Payload, &s) == nil && s.Seq >= seq
	})
}

// states counts the state messages of the current section.
func (ts *transcript) states() int {
	n := 0
	for _, m := range ts.rec.all()[ts.cursor:] {
		if strings.HasSuffix(m.Topic, "/state") {
			n++
		}
	}
	return n
}

// waitStates waits until the current section holds n state messages.
func (ts *transcript) waitStates(n int) {
	ts.t.Helper()
	seen := 0
	ts.rec.waitFrom(ts.cursor, fmt.Sprintf("%d states", n), func(m recorded) bool {
		if strings.HasSuffix(m.Topic, "/state") {
			seen++
		}
		return seen >= n
	})
}

// setAndWaitState changes an input whose change shows only in the state
// (no record), and waits for that state: the reading's step is then
// published before anything the test does next.
func (ts *transcript) setAndWaitState(sr *simRoom, in controller.Input, point string, l controller.Level) {
	ts.t.Helper()
	before := ts.states()
	sr.set(ts.t, in, point, l)
	ts.waitStates(before + 1)
}

// flush waits until the room's publisher has delivered every step.
func (ts *transcript) flush(r *roomtest.Room) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(ts.t, r.Publisher().Flush(ctx))
}

var (
	epochRe = regexp.MustCompile(`"epoch":"[0-9a-f]{16}"`)
	hashRe  = regexp.MustCompile(`"config_hash":"[0-9a-f]{16}"`)
)

// render writes the transcript: per section, availability and info first
// (roomd does not order them against the rest), then the section's command
// (the broker may deliver the sender's own copy after what it caused), then
// every other message in the order it arrived.
func (ts *transcript) render(msgs []recorded) string {
	var b strings.Builder
	b.WriteString(transcriptHead)
	var sec, retained, cmds []recorded
	var title string
	flushSection := func() {
		if title == "" {
			return
		}
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if about := ts.titles[title]; about != "" {
			fmt.Fprintf(&b, "%s\n\n", about)
		}
		b.WriteString("```\n")
		for _, m := range append(append(retained, cmds...), sec...) {
			p := epochRe.ReplaceAllString(string(m.Payload), `"epoch":"{epoch}"`)
			p = hashRe.ReplaceAllString(p, `"config_hash":"{config_hash}"`)
			dir := "←"
			if strings.Contains(m.Topic, "/cmd") {
				dir = "→"
			}
			flags := fmt.Sprintf("QoS %d", m.QoS)
			if m.Retained {
				flags += ", retained"
			}
			fmt.Fprintf(&b, "%s %s (%s)\n  %s\n", dir, m.Topic, flags, p)
		}
		b.WriteString("```\n")
		sec, retained, cmds = nil, nil, nil
	}
	for _, m := range msgs {
		switch {
		case m.Topic == markTopic:
			flushSection()
			title = string(m.Payload)
		case strings.HasSuffix(m.Topic, "/availability"), strings.HasSuffix(m.Topic, "/info"):
			retained = append(retained, m)
		case strings.Contains(m.Topic, "/cmd"):
			cmds = append(cmds, m)
		default:
			sec = append(sec, m)
		}
	}
	flushSection()
	return b.String()
}

const transcriptHead = `# A full visit, message by message

Every MQTT message of a real run of roomd (room.Open with the simulator
backend, the embedded broker), as a subscriber on ` + "`visitrooms/#`" + ` received it,
in order: → is a command sent to roomd, ← what roomd published. Each line
gives the topic, the QoS and whether the message was published retained
(seen with an MQTT 5 subscription with retain-as-published; an MQTT 3.1.1
subscriber sees the retained flag only on what the broker sends when it
subscribes). Generated by ` + "`go test ./link -run Transcript -update`" + `; the
test fails when this file differs from a fresh run, and validates every
message against [asyncapi.yaml](asyncapi.yaml).

What varies from run to run is written as a placeholder: the epoch (random
for a new journal) as ` + "`{epoch}`" + `, the config hash (the config names a
temporary directory and port) as ` + "`{config_hash}`" + `. The room's clock is the
test's, so every time is exact. Within a section, ` + "`availability`" + ` and ` + "`info`" + `
come first: roomd orders them against nothing else; then the command
that the section sends, if any (the broker may hand the sender's own copy
to the recording subscriber after what it caused). The run uses a heartbeat of
one hour, so that no heartbeat state comes between the steps. Sensors are
changed through the simulator directly (not sim/set), and the simulator's
topics are not shown.

The policy: visits up to 2 h, extensions allowed, warnings 10 and 5 minutes
before the end, time_up escalates after 5 minutes, critical alerts repeat
every 2 minutes, acknowledged alerts are announced again after 5 minutes,
lock grace 10 s, the visit ends by vacancy after 1 minute, panic_reset
on_site. The room has panic points ` + "`bed`" + ` and ` + "`toilet`" + `.
`
