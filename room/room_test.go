package room_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/wallclock"
)

const wait = 30 * time.Second

// consumer is what the contract asks a consumer to be: it keeps every
// record by (room, epoch, seq), and it fails the test if two different
// records ever arrive under the same key.
type consumer struct {
	t   *testing.T
	cli paho.Client

	mu      sync.Mutex
	byKey   map[string]string // epoch/seq → payload
	events  []contract.EventMessage
	arrived []time.Time // when each of events arrived
	dups    int         // the same record again (at least once)
	replies []contract.ReplyMessage
	other   []paho.Message
	all     []string // every message: topic, a space, payload
	wake    chan struct{}
}

func consume(t *testing.T, url string) *consumer {
	t.Helper()
	c := &consumer{t: t, byKey: map[string]string{}, wake: make(chan struct{}, 1)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("consumer-%d", wallclock.Now().UnixNano())).
		SetCleanSession(true).SetOrderMatters(true)
	c.cli = paho.NewClient(opts)
	tok := c.cli.Connect()
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	tok = c.cli.Subscribe("visitrooms/room-1/#", 1, c.handle)
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.cli.Disconnect(100) })
	return c
}

func (c *consumer) handle(_ paho.Client, m paho.Message) {
	now := wallclock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, m.Topic()+" "+string(m.Payload()))
	switch {
	case strings.HasSuffix(m.Topic(), "/events"):
		var e contract.EventMessage
		if err := json.Unmarshal(m.Payload(), &e); err != nil {
			c.t.Errorf("unreadable event %s: %v", m.Payload(), err)
			return
		}
		key := fmt.Sprintf("%s/%d", e.Epoch, e.Seq)
		if prev, ok := c.byKey[key]; ok {
			if prev != string(m.Payload()) {
				c.t.Errorf("two different records under (room-1, %s):\n  %s\n  %s", key, prev, m.Payload())
			}
			c.dups++
			return
		}
		c.byKey[key] = string(m.Payload())
		c.events, c.arrived = append(c.events, e), append(c.arrived, now)
	case strings.HasSuffix(m.Topic(), "/reply"):
		var r contract.ReplyMessage
		if json.Unmarshal(m.Payload(), &r) == nil {
			c.replies = append(c.replies, r)
		}
	default:
		c.other = append(c.other, m)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// await waits until an event satisfies ok and returns it.
func (c *consumer) await(what string, ok func(contract.EventMessage) bool) contract.EventMessage {
	c.t.Helper()
	e, _ := c.awaitFrom(what, 0, ok)
	return e
}

// awaitFrom waits for the first event at index from or later (see count)
// that ok accepts; it returns the event and when it arrived.
func (c *consumer) awaitFrom(what string, from int, ok func(contract.EventMessage) bool) (contract.EventMessage, time.Time) {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		for i := from; i < len(c.events); i++ {
			if ok(c.events[i]) {
				e, at := c.events[i], c.arrived[i]
				c.mu.Unlock()
				return e, at
			}
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-deadline:
			c.t.Fatalf("no %s within %s", what, wait)
		}
	}
}

// count is how many distinct records have arrived: an index for awaitFrom.
func (c *consumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// has reports whether an event satisfying ok has arrived.
func (c *consumer) has(ok func(contract.EventMessage) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if ok(e) {
			return true
		}
	}
	return false
}

// awaitCount waits until n events of type typ have arrived.
func (c *consumer) awaitCount(typ string, n int) {
	c.t.Helper()
	c.until(fmt.Sprintf("%d %s events", n, typ), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		got := 0
		for _, e := range c.events {
			if e.Type == typ {
				got++
			}
		}
		return got >= n
	})
}

// until waits until cond (which may lock c.mu) holds.
func (c *consumer) until(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(wait)
	for !cond() {
		select {
		case <-c.wake:
		case <-deadline:
			c.t.Fatalf("no %s within %s", what, wait)
		}
	}
}

func (c *consumer) reply(id string) contract.ReplyMessage {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		for _, r := range c.replies {
			if r.RequestID == id {
				c.mu.Unlock()
				return r
			}
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-deadline:
			c.t.Fatalf("no reply to %s within %s", id, wait)
		}
	}
}

func (c *consumer) send(op, payload string) {
	c.t.Helper()
	topic := "visitrooms/room-1/cmd"
	if op != "" {
		topic += "/" + op
	}
	tok := c.cli.Publish(topic, 1, false, payload)
	require.True(c.t, tok.WaitTimeout(wait))
	require.NoError(c.t, tok.Error())
}

// command sends a command on the room's cmd topic (body: its fields after
// request_id; an expiry is added but to get_state) and returns its reply.
func (c *consumer) command(id, body string) contract.ReplyMessage {
	c.t.Helper()
	exp := ""
	if !strings.Contains(body, "get_state") {
		exp = fmt.Sprintf(`,"expires_at":%q`, contract.FormatTime(wallclock.Now().Add(10*time.Minute)))
	}
	c.send("", fmt.Sprintf(`{"request_id":%q,%s%s}`, id, body, exp))
	return c.reply(id)
}

func (c *consumer) simSet(payload string) {
	c.t.Helper()
	tok := c.cli.Publish("visitrooms/room-1/sim/set", 1, false, payload)
	require.True(c.t, tok.WaitTimeout(wait))
	require.NoError(c.t, tok.Error())
}

// rest is the sim/set body of a room whose sensors are all at rest.
const rest = `{"door":"closed","lock":"unlocked","presence":false,"panic":false}`

// atRest puts the room's sensors at rest (body, a sim/set, e.g. rest) and
// waits until the room has read its door as closed. A sensor driven before
// the room's first reading of it is that first reading, which announces
// nothing (a door open at start is not an opening), and a command's reply
// proves only that the room subscribed; so a test that drives the door
// must wait for this.
func (c *consumer) atRest(body string) {
	c.t.Helper()
	c.simSet(body)
	for i := 0; ; i++ {
		// Unique across the room's restarts in one test: a request_id seen
		// before is answered from the room's reply window, with the old state.
		id := fmt.Sprintf("at-rest-%d-%d", wallclock.Now().UnixNano(), i)
		c.send("guard-7", `{"request_id":"`+id+`","action":"get_state"}`)
		if rep := c.reply(id); rep.State != nil && rep.State.Door == "closed" {
			return
		}
		require.Less(c.t, i, 600, "the room never read its door as closed")
		<-time.After(50 * time.Millisecond)
	}
}

func expires() string { return wallclock.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339Nano) }

func isType(typ string) func(contract.EventMessage) bool {
	return func(e contract.EventMessage) bool { return e.Type == typ }
}

func isAlert(typ, kind string) func(contract.EventMessage) bool {
	return func(e contract.EventMessage) bool { return e.Type == typ && e.Alert != nil && e.Alert.Kind == kind }
}

// TestMigrateEarlierLayout starts a room on a state directory written by
// roomd before the journal (testdata/legacy-6c65459): the visit, its seq and
// the records the broker never acknowledged are all there after the upgrade,
// and a command answered before is answered again, not applied.
// legacyKilledAt is the last time on the axis of testdata/legacy-6c65459
// (its state.json's clock.axis).
var legacyKilledAt = time.Date(2026, 11, 28, 21, 20, 40, 425614149, time.UTC)

func TestMigrateEarlierLayout(t *testing.T) {
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("testdata/legacy-6c65459")))
	// The fixture's room was killed at 21:20:40 on its own axis; this room
	// starts 30 s later on that axis, whatever the date of the run, so the
	// reply to book-1 is as young as it was then.
	clock := daemon.NewClockAt(legacyKilledAt.Add(30*time.Second), 1)
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir,
		Config:  func(cfg *configs.Config) { cfg.Policy.Warnings = []time.Duration{30 * time.Second} },
		Options: func(o *room.Options) { o.Clock = clock }})
	expires := func() string { return contract.FormatTime(clock.Now().Add(10 * time.Minute)) }

	// The undelivered records, with the journal's epoch, then the resume.
	warn := c.await("visit_warning", isType("visit_warning"))
	assert.Equal(t, uint64(3), warn.Seq)
	assert.Equal(t, "v-2026-0042", warn.VisitID)
	up := c.await("time_up raised", isAlert("alert_raised", "time_up"))
	assert.Equal(t, uint64(4), up.Seq)
	started := c.await("controller_started", isType("controller_started"))
	require.NotNil(t, started.Resumed)
	assert.True(t, *started.Resumed, "the visit was resumed, not started anew")
	assert.Equal(t, warn.Epoch, started.Epoch)
	// seq continues from the old layout's 4 with no gap.
	c.mu.Lock()
	seen := map[uint64]bool{}
	for _, e := range c.events {
		seen[e.Seq] = true
	}
	c.mu.Unlock()
	for s := uint64(3); s <= started.Seq; s++ {
		assert.True(t, seen[s], "seq %d", s)
	}

	// The visit runs on (in overtime: its 40 s ended long ago).
	c.send("", `{"request_id":"probe","action":"get_state"}`)
	st := c.reply("probe").State
	require.NotNil(t, st)
	require.NotNil(t, st.Visit)
	assert.Equal(t, "v-2026-0042", st.Visit.ID)
	assert.Equal(t, "overtime", st.Phase)

	// The command answered before the upgrade is answered from its reply.
	c.send("", `{"request_id":"book-1","action":"start_visit","visit_id":"v-2026-0042","duration":"40s","expires_at":"`+expires()+`"}`)
	again := c.reply("book-1")
	require.True(t, again.OK, "%+v", again)
	require.NotNil(t, again.State)
	assert.Equal(t, "in_visit", again.State.Phase, "the reply of the time, not a new start")

	// The old files are gone or set aside; the journal is in place.
	r.Stop()
	_, err := os.Stat(filepath.Join(dir, "outbox"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	for _, f := range []string{"state.json.migrated", "replies.json.migrated", "journal/head"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		assert.NotEqual(t, "visit_started", e.Type, "no second visit_started")
	}
}

// damage is something that can happen to a state directory between runs.
type damage struct {
	name string
	do   func(t *testing.T, dir string)
}

var damages = []damage{
	{"journal deleted", func(t *testing.T, dir string) {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, room.JournalDir)))
	}},
	{"last entry flipped", func(t *testing.T, dir string) {
		segs := segments(t, dir)
		last := segs[len(segs)-1]
		b, err := os.ReadFile(last)
		require.NoError(t, err)
		b[len(b)-4] ^= 0x08
		require.NoError(t, os.WriteFile(last, b, 0o600))
	}},
	{"last segment deleted", func(t *testing.T, dir string) {
		segs := segments(t, dir)
		require.NoError(t, os.Remove(segs[len(segs)-1]))
	}},
	{"segment unreadable", func(t *testing.T, dir string) {
		// As root a file mode does not stop reading; a directory in its
		// place does (EISDIR).
		segs := segments(t, dir)
		last := segs[len(segs)-1]
		require.NoError(t, os.Remove(last))
		require.NoError(t, os.Mkdir(last, 0o700))
	}},
	{"head and segments garbage", func(t *testing.T, dir string) {
		for _, s := range segments(t, dir) {
			require.NoError(t, os.WriteFile(s, []byte(strings.Repeat("x", 300)), 0o600))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, room.JournalDir, "head"), make([]byte, 4096), 0o600))
	}},
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	s, err := filepath.Glob(filepath.Join(dir, room.JournalDir, "seg-*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, s)
	return s
}

// TestSeqNeverReusedWhateverHappensToTheJournal: for each kind of damage,
// at a clean stop and at a crash, a consumer that deduplicates by (room,
// epoch, seq) never receives two different records under one key, and the
// panic pressed after the restart reaches it.
func TestSeqNeverReusedWhateverHappensToTheJournal(t *testing.T) {
	for _, d := range damages {
		for _, crash := range []bool{false, true} {
			name := d.name + map[bool]string{false: ", clean stop", true: ", crash"}[crash]
			t.Run(name, func(t *testing.T) {
				url := mqtttest.Embedded(t)
				c := consume(t, url)
				dir := t.TempDir()
				r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
				c.await("start", isType("controller_started"))
				c.atRest(rest)
				c.send("guard-7", `{"request_id":"s","action":"start_visit","visit_id":"v-1","duration":"1h","expires_at":"`+expires()+`"}`)
				require.True(t, c.reply("s").OK)
				for i := range 3 {
					c.simSet(`{"door":"open"}`)
					c.await("door_opened", func(e contract.EventMessage) bool { return e.Type == "door_opened" && i >= 0 })
					c.simSet(`{"door":"closed"}`)
				}
				c.await("door_closed", isType("door_closed"))
				if crash {
					r.Crash()
				} else {
					r.Stop()
				}
				d.do(t, dir)

				roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
				// Up again (it announces its start under a key the consumer
				// has not seen), then the panic is pressed.
				c.awaitCount("controller_started", 2)
				c.simSet(`{"panic":true}`)
				p := c.await("the panic after the restart", isAlert("alert_raised", "panic"))
				assert.NotEmpty(t, p.Epoch)
				// The room says what happened to its journal, loudly.
				if d.name != "journal deleted" {
					c.await("journal fault", func(e contract.EventMessage) bool {
						return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "system_fault" &&
							e.Alert.Source == contract.SourceJournal && e.Alert.Severity == "critical"
					})
				}
			})
		}
	}
}

// TestFullDiskOnTmpfs fills the state directory's file system: the room
// raises a critical fault and sounds the local alarm, a panic still reaches
// the guard (from memory, under a new epoch), and once space is back
// everything is written and survives a restart.
func TestFullDiskOnTmpfs(t *testing.T) {
	dir := tmpfs(t, "512k")
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	c.await("start", isType("controller_started"))
	c.atRest(rest)
	fill(t, dir)

	// The last page of the journal's segment may still have room for an
	// entry or two (tmpfs allocates whole pages): the door opens and closes
	// until the disk refuses a step. Each change is published either way.
	isFault := func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournalWrite
	}
	for i := 0; !c.has(isFault); i++ {
		require.Less(t, i, 32, "the full disk never refused a step")
		door, typ := "open", "door_opened"
		if i%2 == 1 {
			door, typ = "closed", "door_closed"
		}
		c.simSet(`{"door":"` + door + `"}`)
		c.awaitCount(typ, i/2+1)
	}
	fault := c.await("journal_write fault", isFault)
	assert.Equal(t, "critical", fault.Alert.Severity)
	assert.Contains(t, fault.Alert.Detail, "no space left on device")
	c.simSet(`{"panic":true}`)
	p := c.await("panic while the disk is full", isAlert("alert_raised", "panic"))
	assert.Equal(t, fault.Epoch, p.Epoch)
	assert.NotEqual(t, controller.ModeOff, r.Sim().Outputs()[controller.OutputAlarmSounder], "the local alarm sounds")
	assert.NotEqual(t, controller.ModeOff, r.Sim().Outputs()[controller.OutputAlarmLight])

	require.NoError(t, os.Remove(filepath.Join(dir, "ballast")))
	c.await("journal_write cleared", func(e contract.EventMessage) bool {
		return e.Type == "alert_cleared" && e.Alert != nil && e.Alert.Source == contract.SourceJournalWrite
	})
	r.Stop()
	// Everything published is in the journal now, under the epoch it was
	// published with.
	r2 := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	j := r2.Journal()
	found := false
	for lsn := j.First(); lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		require.NoError(t, err)
		for _, rec := range e.Records {
			if rec.Type == controller.EventAlertRaised && rec.Alert.Kind == controller.AlertPanic {
				found = true
				assert.Equal(t, p.Epoch, e.Epoch.String())
				assert.Equal(t, p.Seq, rec.Seq)
			}
		}
	}
	assert.True(t, found, "the panic raised while the disk was full was written once space came back")
}

// TestReadOnlyStateDirAtStart: the room starts anyway, says which path it
// cannot write, and a panic reaches the guard.
func TestReadOnlyStateDirAtStart(t *testing.T) {
	dir := tmpfs(t, "1m")
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	c.await("start", isType("controller_started"))
	r.Stop()
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))

	roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	fault := c.await("journal_write fault", func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournalWrite
	})
	assert.Equal(t, "critical", fault.Alert.Severity)
	assert.Contains(t, fault.Alert.Detail, filepath.Join(dir, room.JournalDir))
	assert.Contains(t, fault.Alert.Detail, "read-only file system")
	c.simSet(`{"panic":true}`)
	c.await("panic", isAlert("alert_raised", "panic"))
}

// TestAcknowledgedNotPublishedAgainAfterACrash: what the broker acknowledged
// more than a second before roomd was killed is not published again.
func TestAcknowledgedNotPublishedAgainAfterACrash(t *testing.T) {
	url := mqtttest.Embedded(t)
	dir := t.TempDir()
	c := consume(t, url)
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	c.await("start", isType("controller_started"))
	c.atRest(rest)
	c.send("", `{"request_id":"s","action":"start_visit","visit_id":"v-1","duration":"1h","expires_at":"`+expires()+`"}`)
	require.True(t, c.reply("s").OK)
	started := c.await("visit_started", isType("visit_started"))
	// The broker's acknowledgement of it is recorded in the head (which
	// happens within a second by itself; Sync makes it now).
	j := r.Journal()
	for j.Acked().LSN <= j.Last() {
		select {
		case <-j.Changed():
		case <-time.After(wait):
			t.Fatal("the broker never acknowledged the journal")
		}
	}
	require.NoError(t, j.Sync())
	r.Crash()

	c.mu.Lock()
	before := c.dups
	c.mu.Unlock()
	roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	resumed := c.await("resume", func(e contract.EventMessage) bool {
		return e.Type == "controller_started" && e.Resumed != nil && *e.Resumed
	})
	assert.Equal(t, started.Seq+1, resumed.Seq)
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Equal(t, before, c.dups, "no record was published twice")
}

// TestSimPressesNeverDroppedUnderACommandFlood: sim/set does not share the
// command queue.
func TestSimPressesNeverDroppedUnderACommandFlood(t *testing.T) {
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	roomtest.Start(t, roomtest.Options{Broker: url,
		Config: func(cfg *configs.Config) { cfg.Device.Flap.MaxChanges = 1000 }})
	c.await("start", isType("controller_started"))
	c.atRest(rest)
	// A second client floods the room with commands while the presses go
	// in: the flood is bounded so that everything drains in the end; what
	// matters is that no press is lost on the way.
	flood := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("flood").SetCleanSession(true))
	tok := flood.Connect()
	require.True(t, tok.WaitTimeout(wait))
	require.NoError(t, tok.Error())
	defer flood.Disconnect(100)
	go func() {
		for i := range 3000 {
			flood.Publish("visitrooms/room-1/cmd", 1, false, fmt.Sprintf(`{"request_id":"f%d","action":"get_state"}`, i))
		}
	}()
	count := func(typ string) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, e := range c.events {
			if e.Type == typ {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 10; i++ {
		c.simSet(`{"door":"open"}`)
		c.until(fmt.Sprintf("door opening %d", i), func() bool { return count("door_opened") >= i })
		c.simSet(`{"door":"closed"}`)
		c.until(fmt.Sprintf("door closing %d", i), func() bool { return count("door_closed") >= i })
	}
}

// tmpfs mounts a small tmpfs for a state directory; it needs root: it
// skips without it, except under CI=true where it fails.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		testtier.Missing(t, "cannot mount a tmpfs at %s (needs root): %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill takes the rest of the file system at dir with a ballast file.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "ballast"))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return
		}
	}
}

// TestBoundedJournalNeverAppliesARepeatInsideItsWindow floods a room whose
// journal is bounded to 256 KiB with commands through several compactions,
// then kills it (no clean stop). The journal never grew beyond its bound
// plus one segment; and after the restart every command repeated from
// inside the window the journal still honours is answered with its first
// reply, never applied again.
func TestBoundedJournalNeverAppliesARepeatInsideItsWindow(t *testing.T) {
	testtier.Slow(t, "a flood through compaction and a restart")
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	dir := t.TempDir()
	const maxBytes = 256 << 10
	bounded := func(cfg *configs.Config) { cfg.Journal.MaxBytes = maxBytes; cfg.Journal.Retention = time.Hour }
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir, Config: bounded})
	c.await("start", isType("controller_started"))
	c.simSet(`{"door":"closed","lock":"unlocked","presence":true,"panic":false}`)
	c.send("guard-0", `{"request_id":"visit-1","action":"start_visit","visit_id":"v-1","duration":"1h","expires_at":"`+expires()+`"}`)
	require.True(t, c.reply("visit-1").OK)
	// The flood: 100 identities, 20 commands each, within each one's
	// burst, so every command is journaled.
	type cmd struct{ op, id, payload string }
	var sent []cmd
	seg := int64(maxBytes / 8)
	for i := range 2000 {
		k := cmd{op: fmt.Sprintf("guard-%d", i%100), id: fmt.Sprintf("x-%d", i)}
		k.payload = `{"request_id":"` + k.id + `","action":"extend_visit","add":"1m","expires_at":"` + expires() + `"}`
		c.send(k.op, k.payload)
		sent = append(sent, k)
		if i%100 == 99 {
			c.reply(k.id)
			// One segment above the bound, and, under this flood (2,000
			// commands a second), the segments not yet synced (a sync gap).
			assert.LessOrEqual(t, r.Journal().Size(), int64(maxBytes)+2*seg, "max_bytes plus one segment, and one sync gap")
		}
	}
	t.Logf("a reply: %s", mustJSON(t, c.reply(sent[len(sent)-1].id)))
	require.Greater(t, r.Journal().First(), uint64(1), "the flood went through compaction (%d bytes)", r.Journal().Size())
	before := r.Journal().Window()
	r.Crash()

	firstReply := map[string]string{}
	c.mu.Lock()
	for _, rep := range c.replies {
		if _, ok := firstReply[rep.RequestID]; !ok {
			firstReply[rep.RequestID] = mustJSON(t, rep)
		}
	}
	c.mu.Unlock()
	r2 := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir, Config: bounded})
	c.awaitCount("controller_started", 1)
	window := r2.Journal().Window()
	require.Positive(t, window)
	// Every command of the last seconds (inside the window) is repeated:
	// its first reply comes again.
	for _, k := range sent[len(sent)-35:] {
		require.Contains(t, firstReply, k.id)
		c.send(k.op, k.payload)
		c.until("the repeated reply to "+k.id, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			n := 0
			for _, rep := range c.replies {
				if rep.RequestID == k.id {
					n++
				}
			}
			return n >= 2
		})
		c.mu.Lock()
		var again contract.ReplyMessage
		for _, rep := range c.replies {
			if rep.RequestID == k.id {
				again = rep
			}
		}
		c.mu.Unlock()
		assert.JSONEq(t, firstReply[k.id], mustJSON(t, again), "%s: the first reply, not applied again", k.id)
	}
	t.Logf("window before the crash %s, after %s; journal %d bytes", before, window, r2.Journal().Size())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestJournalRestoredFromAnOlderCopy: a room's state directory is copied,
// the room runs on and announces more, then the old copy is put back (a card
// restored from last week's image). Before it publishes anything, the room
// finds its journal behind the broker's retained state: it continues in a
// new epoch above everything it had announced, says so in a critical
// journal fault, and no key ever names two records.
func TestJournalRestoredFromAnOlderCopy(t *testing.T) {
	testtier.Slow(t, "three starts of a room against one broker")
	url := mqtttest.Embedded(t)
	c := consume(t, url)
	dir := t.TempDir()
	r := roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	c.await("start", isType("controller_started"))
	c.atRest(rest)
	c.simSet(`{"door":"open"}`)
	c.await("door_opened", isType("door_opened"))
	r.Stop()
	old := t.TempDir()
	require.NoError(t, os.CopyFS(old, os.DirFS(dir)))

	r = roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	c.send("guard-7", `{"request_id":"s","action":"start_visit","visit_id":"v-1","duration":"1h","expires_at":"`+expires()+`"}`)
	require.True(t, c.reply("s").OK)
	c.simSet(`{"panic":true}`)
	c.await("panic", isAlert("alert_raised", "panic"))
	c.simSet(`{"panic":false,"door":"closed"}`)
	c.await("door_closed", isType("door_closed"))
	r.Stop()
	c.mu.Lock()
	var announced uint64
	var alertIDs []string
	for _, e := range c.events {
		announced = max(announced, e.Seq)
		if e.Alert != nil && e.Type == "alert_raised" {
			alertIDs = append(alertIDs, e.Alert.ID)
		}
	}
	c.mu.Unlock()

	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.CopyFS(dir, os.DirFS(old)))
	r = roomtest.Start(t, roomtest.Options{Broker: url, Dir: dir})
	f := c.await("the journal fault", func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournal
	})
	assert.Equal(t, "critical", f.Alert.Severity)
	assert.Contains(t, f.Alert.Detail, "went back in time")
	assert.Greater(t, f.Seq, announced, "seqs continue above everything announced")
	assert.NotContains(t, alertIDs, f.Alert.ID, "alert ids are never handed out twice")
	c.simSet(`{"panic":true}`)
	p := c.await("the panic after the restore", func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "panic" && e.Seq > announced
	})
	assert.NotContains(t, alertIDs, p.Alert.ID)
	r.Stop()
}

// TestBrokerUnreachableAtStart: a room whose broker does not answer at
// start cannot check its journal against what it announced; it does not
// wait for it longer than WitnessWait, continues in a new epoch (whose keys
// no consumer holds) and says so, and its records reach the broker once it
// is back.
func TestBrokerUnreachableAtStart(t *testing.T) {
	testtier.Slow(t, "a start without its broker")
	url := mqtttest.Embedded(t)
	px := mqtttest.StartProxy(t, url)
	c := consume(t, url)
	dir := t.TempDir()
	r := roomtest.Start(t, roomtest.Options{Broker: px.URL(), Dir: dir})
	first := c.await("start", isType("controller_started"))
	r.Stop()

	px.Cut()
	start := wallclock.Now()
	r = roomtest.Start(t, roomtest.Options{Broker: px.URL(), Dir: dir})
	require.Eventually(t, func() bool { return r.Journal().Epoch().String() != first.Epoch }, 2*room.WitnessWait, 10*time.Millisecond)
	assert.Less(t, wallclock.Since(start), room.WitnessWait+2*time.Second, "the room does not wait for its broker")
	px.Resume()
	f := c.await("the journal fault", func(e contract.EventMessage) bool {
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournal
	})
	assert.Contains(t, f.Alert.Detail, "could not be reached")
	assert.NotEqual(t, first.Epoch, f.Epoch)
	r.Stop()
}
