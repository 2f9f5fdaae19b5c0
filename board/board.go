// Package board is the guard station board: it follows every room under
// one topic base through roomclient, as the broker identity guard-station,
// keeps a tile per room (Model), streams every change to the browsers in
// order (History, Server-Sent Events), and sends each action as the
// logged-in operator on {base}/{room}/cmd/{operator}. cmd/guardboard runs
// it; Server is its web side (accounts, sessions, CSRF, the page).
package board

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// quietAfter is how long a connected board waits for its first message
// before it says that it may not be allowed to read.
const quietAfter = 10 * time.Second

// Defaults of Options.
const (
	DefaultUsername       = "guard-station"
	DefaultHistory        = 20000
	DefaultCommandTimeout = 20 * time.Second
	// LogKept is how many alert log lines a fresh page receives.
	LogKept = 200
	// keepalive of the board's broker connection: a dead broker shows the
	// "data stale" banner within about 1.5 of it.
	keepalive = 5 * time.Second
)

// Options configure a Board.
type Options struct {
	// Broker is the broker URL; Username (default guard-station) and
	// Password authenticate the board; TLS for ssl:// and tls://.
	Broker, Username, Password string
	TLS                        *tls.Config
	// Base is the topic base ("" means visitrooms).
	Base string
	// SimUsername and SimPassword, if SimUsername is set, are the identity
	// the tester panel publishes sim/set as (a sim-driver identity that no
	// production ACL grants). Without it the panel is off.
	SimUsername, SimPassword string
	// CommandTimeout bounds the wait for a room's reply (default 20s).
	CommandTimeout time.Duration
	// History is how many updates a browser can resume over (default 20000).
	History int
	// StateFile, if set, keeps where the board stands in every room's
	// records (epoch and highest seq applied), written every 10 s and at
	// the end: after a restart roomclient asks the rooms to replay what the
	// broker did not keep for the board (a lost session, a broker that lost
	// its queue), so no alert is missed and who acknowledged stays known.
	StateFile string
	// Rooms are the site's rooms: ids, or patterns with * and ? (path.Match),
	// e.g. "room-*". A room of another id (any identity may publish under
	// its own name on the broker) is never a tile and never rings: the
	// board lists it apart as unknown. Nil: every valid room id.
	Rooms []string
	// Records keeps the response-time records (nil: in memory only).
	Records *Records
	// Now is the board's clock (nil: wallclock.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Dial, if set, opens the broker connections (tests).
	Dial func(ctx context.Context) (net.Conn, error)
}

// Board follows the rooms and serves their tiles.
type Board struct {
	o   Options
	log *slog.Logger
	now func() time.Time
	// History is the ordered stream of updates the browsers follow.
	History *History

	client atomic.Pointer[roomclient.Client]
	simCli atomic.Pointer[roomclient.Client]
	// heard: a room's message reached the board since it connected.
	heard atomic.Bool
	// quietAfter is how long the board waits, connected, for a first
	// message before it says it may not be allowed to read.
	quietAfter time.Duration

	box mailbox

	// Owned by the loop goroutine.
	model      *Model
	lastJSON   map[string]string
	logLines   []json.RawMessage
	connected  bool
	since      time.Time
	marks      map[string]roomclient.Mark // the records applied, per room
	marksDirty bool
	ticks      int
	unknown    string // the unknown rooms' JSON, as last published
	// lastContact: room → the records' id of its no-contact alarm.
	lastContact map[string]string
	// Records are the response-time records.
	Records *Records

	metrics boardMetrics // what the loop counts for Metrics
}

// New returns a board; Run connects it.
func New(o Options) *Board {
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Base == "" {
		o.Base = contract.DefaultBase
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.History <= 0 {
		o.History = DefaultHistory
	}
	if o.Now == nil {
		o.Now = wallclock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Records == nil {
		o.Records, _ = OpenRecords(RecordsOptions{})
	}
	b := &Board{o: o, log: o.Logger, now: o.Now, History: NewHistory(o.History, 4096),
		model: NewModel(), lastJSON: map[string]string{}, marks: map[string]roomclient.Mark{}, Records: o.Records, quietAfter: quietAfter,
		unknown: "[]", lastContact: map[string]string{}}
	if o.Rooms != nil {
		b.model.Allow(RoomMatcher(o.Rooms))
	}
	b.box.init()
	b.metrics.init()
	b.since = o.Now()
	return b
}

// SimEnabled reports whether the tester panel may publish sim/set.
func (b *Board) SimEnabled() bool { return b.o.SimUsername != "" }

// item is one thing for the loop.
type item struct {
	msg   *roomclient.Message
	rec   *roomclient.Record
	loss  *roomclient.Loss
	lamps *roomclient.Message
	pager *roomclient.Message
	link  *bool
	tick  bool
	snap  chan snapshot
	view  chan viewReply
	room  string
	// ackContact acknowledges room's no-contact alarm as operator.
	ackContact chan bool
	operator   string
}

// mailbox is an unbounded queue: the client's receiving goroutine must
// never block, and no message may be dropped.
type mailbox struct {
	mu     sync.Mutex
	items  []item
	notify chan struct{}
}

func (m *mailbox) init() { m.notify = make(chan struct{}, 1) }

func (m *mailbox) put(it item) {
	m.mu.Lock()
	m.items = append(m.items, it)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []item {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.items
	m.items = nil
	return out
}

// Run connects to the broker (again and again until it answers), follows
// the rooms and updates the history until ctx ends.
func (b *Board) Run(ctx context.Context) error {
	if b.o.StateFile != "" {
		marks, err := readMarks(b.o.StateFile)
		if err != nil {
			// The board must run all the same: it gets what the broker kept
			// for it, and says that it may have missed records.
			b.log.Error("the board's state file is unreadable; starting without marks", "err", err)
			b.addLog(LogEntry{At: contract.T(b.now()), Type: "state_lost", Severity: "warning",
				Detail: "the board's state file was unreadable: records the broker did not keep while the board was away may be missing"})
			marks = map[string]roomclient.Mark{}
		}
		b.marks = marks
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.connect(ctx)
	}()
	if b.SimEnabled() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.connectSim(ctx)
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			if c := b.client.Load(); c != nil {
				c.Close()
			}
			if c := b.simCli.Load(); c != nil {
				c.Close()
			}
			for _, it := range b.box.take() {
				b.step(it) // what arrived before the close is applied, and marked
			}
			b.History.DropAll()
			return b.saveMarks()
		case <-b.box.notify:
			for _, it := range b.box.take() {
				b.step(it)
			}
		case <-tick.C:
			b.step(item{tick: true})
		}
	}
}

func (b *Board) options() roomclient.Options {
	up, down := true, false
	return roomclient.Options{
		Broker: b.o.Broker, Username: b.o.Username, Password: b.o.Password, TLS: b.o.TLS, Base: b.o.Base,
		// Replays go on cmd/guard-station, the one operator topic this
		// identity sends on in its own name.
		Operator:  b.o.Username,
		Streams:   roomclient.RegistryStreams | roomclient.Replies,
		Keepalive: keepalive, MaxReconnectInterval: 2 * time.Second, Dial: b.o.Dial,
		OnMessage: func(m roomclient.Message) { b.heard.Store(true); b.box.put(item{msg: &m}) },
		OnRecord:  func(r roomclient.Record) { b.box.put(item{rec: &r}) },
		OnLoss:    func(l roomclient.Loss) { b.box.put(item{loss: &l}) },
		OnConnect: func() { b.box.put(item{link: &up}) },
		OnLost:    func(error) { b.box.put(item{link: &down}) },
		Now:       b.now, Logger: b.log.With("component", "roomclient"),
		Resume: b.resume(),
	}
}

// resume returns the marks read at the start (a copy: the loop owns b.marks).
func (b *Board) resume() map[string]roomclient.Mark {
	if len(b.marks) == 0 {
		return nil
	}
	out := make(map[string]roomclient.Mark, len(b.marks))
	for r, m := range b.marks {
		out[r] = m
	}
	return out
}

// mark notes a record applied: the room's epoch and its highest seq.
func (b *Board) mark(r roomclient.Record) {
	m, ok := b.marks[r.Room]
	switch {
	case !ok || r.NewEpoch || (m.Epoch != r.Epoch && r.Verdict == roomclient.New):
		b.marks[r.Room] = roomclient.Mark{Epoch: r.Epoch, Seq: r.Seq}
	case m.Epoch == r.Epoch && r.Seq > m.Seq:
		m.Seq = r.Seq
		b.marks[r.Room] = m
	default:
		return
	}
	b.marksDirty = true
}

// marksFile is the state file's content.
type marksFile struct {
	Marks map[string]roomclient.Mark `json:"marks"`
}

func readMarks(path string) (map[string]roomclient.Mark, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]roomclient.Mark{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the board's state file: %w", err)
	}
	var f marksFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read the board's state file %s: %w", path, err)
	}
	if f.Marks == nil {
		f.Marks = map[string]roomclient.Mark{}
	}
	return f.Marks, nil
}

// saveMarks writes the marks atomically (a new file renamed over the old).
func (b *Board) saveMarks() error {
	if b.o.StateFile == "" || !b.marksDirty {
		return nil
	}
	data, err := json.Marshal(marksFile{Marks: b.marks})
	if err != nil {
		return fmt.Errorf("save the board's marks: %w", err)
	}
	tmp := b.o.StateFile + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save the board's marks: %w", err)
	}
	_, werr := f.Write(data)
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("save the board's marks: %w", werr)
	}
	if err := os.Rename(tmp, b.o.StateFile); err != nil {
		return fmt.Errorf("save the board's marks: %w", err)
	}
	b.marksDirty = false
	return nil
}

// connect dials until the broker answers; afterwards the client reconnects
// by itself.
func (b *Board) connect(ctx context.Context) {
	up := true
	for wait := time.Duration(0); ; wait = 2 * time.Second {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err := roomclient.Dial(dctx, b.options())
		cancel()
		if err != nil {
			b.logDialError(err, b.o.Username)
			continue
		}
		filter := b.o.Base + "/+/sim/outputs"
		// The embedded broker refuses a SUBSCRIBE whose packet id is in use
		// by a retained message it is still delivering: try a few times.
		for try := 1; ; try++ {
			err := c.Subscribe(ctx, filter, func(m roomclient.Message) { b.box.put(item{lamps: &m}) })
			if err == nil || try == 5 || ctx.Err() != nil {
				if err != nil {
					b.log.Warn("subscribe to the simulated lamps", "filter", filter, "err", err)
				}
				break
			}
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		// The site broker's bridge to the centre, for the metrics (a site
		// without one has none).
		if err := c.Subscribe(ctx, LinkTopic, func(m roomclient.Message) { b.metrics.bridge(m.Topic, m.Payload) }); err != nil {
			b.log.Warn("subscribe to the site's bridge state", "err", err)
		}
		// The paging gateways' status (roompager): "pagers not reachable".
		if err := c.Subscribe(ctx, b.o.Base+"/_pagers/+/status", func(m roomclient.Message) { b.box.put(item{pager: &m}) }); err != nil {
			b.log.Warn("subscribe to the paging gateways' status", "err", err)
		}
		b.client.Store(c)
		b.box.put(item{link: &up})
		b.log.Info("connected to the broker", "broker", b.o.Broker, "username", b.o.Username)
		go b.warnIfSilent(ctx)
		return
	}
}

// logDialError says why the board could not connect: a refused login or
// subscription is the broker's ACL or password file, not a broker down.
func (b *Board) logDialError(err error, user string) {
	var ce *roomclient.ConnectError
	var se *roomclient.SubscribeError
	switch {
	case errors.As(err, &se):
		b.log.Error("the broker does not let the board read what it shows; retrying", "username", user, "err", err)
	case errors.As(err, &ce) && ce.LoginRefused():
		b.log.Error("the broker refused the board's login; retrying", "username", user, "err", err)
	default:
		b.log.Warn("broker not reachable; retrying", "broker", b.o.Broker, "err", err)
	}
}

// warnIfSilent says, once, when nothing of any room reached the board
// within quietAfter of connecting: with mosquitto's ACL file, an identity
// that may read nothing gets a granted subscription and silence.
func (b *Board) warnIfSilent(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(b.quietAfter):
	}
	if !b.heard.Load() {
		b.log.Error(fmt.Sprintf("connected, and nothing under %s/ reached %s within %s: no room has published there yet, or %s is not allowed to read %s/+/{info,availability,state,reply} (the broker withholds what an identity may not read without saying so: docs/security.md)",
			b.o.Base, b.o.Username, b.quietAfter, b.o.Username, b.o.Base), "username", b.o.Username)
	}
}

func (b *Board) connectSim(ctx context.Context) {
	for wait := time.Duration(0); ; wait = 2 * time.Second {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err := roomclient.Dial(dctx, roomclient.Options{Broker: b.o.Broker, Username: b.o.SimUsername,
			Password: b.o.SimPassword, TLS: b.o.TLS, Base: b.o.Base, CleanSession: true, Dial: b.o.Dial,
			Keepalive: keepalive, MaxReconnectInterval: 2 * time.Second, Now: b.now,
			Logger: b.log.With("component", "sim-driver")})
		cancel()
		if err != nil {
			b.logDialError(err, b.o.SimUsername)
			continue
		}
		b.simCli.Store(c)
		return
	}
}

// step applies one item; it runs on the loop goroutine alone.
func (b *Board) step(it item) {
	switch {
	case it.msg != nil:
		b.applyMessage(*it.msg)
	case it.rec != nil:
		if !b.model.Known(it.rec.Room) {
			b.model.room(it.rec.Room) // listed as unknown
			b.publishUnknown()
			return
		}
		if le := b.model.ApplyRecord(*it.rec); le != nil {
			b.addLog(*le)
		}
		b.record(*it.rec)
		if a := it.rec.Alert; a != nil { // every record comes once (duplicates are dropped); a Filled one was missing
			b.metrics.record(it.rec.Room, it.rec.Type, a.Kind)
		}
		b.publishRoom(it.rec.Room)
		b.mark(*it.rec)
	case it.loss != nil:
		l := it.loss
		b.addLog(LogEntry{At: contract.T(b.now()), Room: l.Room, Type: "records_lost", Severity: "warning",
			Detail: fmt.Sprintf("records %d to %d of epoch %s could not be replayed: %s", l.From, l.To, l.Epoch, l.Reason)})
	case it.lamps != nil:
		room, ok := roomOf(it.lamps.Topic, b.o.Base, "sim/outputs")
		if ok && b.model.ApplyLamps(room, it.lamps.Payload) {
			b.publishRoom(room)
		}
		b.publishUnknown()
	case it.pager != nil:
		gw, ok := roomOf(strings.Replace(it.pager.Topic, "/_pagers/", "/", 1), b.o.Base, "status")
		if ok && contract.ValidRoom(gw) && b.model.ApplyPagerStatus(gw, it.pager.Payload) {
			data, _ := json.Marshal(b.model.Pagers())
			b.History.Publish("pagers", data)
		}
	case it.link != nil:
		b.metrics.link(*it.link)
		if *it.link != b.connected {
			b.connected = *it.link
			b.since = b.now()
			b.model.BrokerLost(!b.connected, b.since)
			b.publishLink()
		}
	case it.tick:
		b.refreshRegistry()
		for _, room := range b.model.Rooms() {
			b.metrics.room(room, b.model.Link(room) == LinkOnline)
		}
		if b.ticks++; b.ticks%10 == 0 && b.marksDirty {
			if err := b.saveMarks(); err != nil {
				b.log.Error("save the board's marks", "err", err)
			}
		}
	case it.snap != nil:
		it.snap <- b.snapshot()
	case it.view != nil:
		v, ok := b.model.View(it.room)
		it.view <- viewReply{v, ok}
	case it.ackContact != nil:
		now := b.now()
		ok := b.model.AckContact(it.room, it.operator, now)
		if ok {
			v, _ := b.model.View(it.room)
			b.addLog(LogEntry{At: contract.T(now), Room: it.room, Type: "contact_acked", By: it.operator, Severity: "notice"})
			b.addRecord(RecordEvent{At: contract.T(now), Room: it.room, Alert: contactAlertID(v.NoContact), Kind: "no_contact",
				Severity: "critical", Type: "acked", By: it.operator})
			b.publishRoom(it.room)
		}
		it.ackContact <- ok
	}
}

// recordTypes maps the alert records to the steps of the response-time
// records.
var recordTypes = map[string]string{"alert_raised": "raised", "alert_escalated": "escalated", "alert_repeated": "repeated",
	"alert_reannounced": "reannounced", "alert_acked": "acked", "alert_cleared": "cleared"}

// record adds an alert record of a room to the response-time records.
func (b *Board) record(rec roomclient.Record) {
	e := rec.EventMessage
	typ, ok := recordTypes[e.Type]
	if !ok || e.Alert == nil {
		return
	}
	sev := e.Alert.Severity
	if !severities[sev] {
		sev = "critical"
	}
	b.addRecord(RecordEvent{At: e.At, Room: rec.Room, Epoch: e.Epoch, Alert: e.Alert.ID, Kind: e.Alert.Kind, Severity: sev,
		Type: typ, By: e.By, Reset: e.Alert.Reset && typ == "cleared"})
}

func (b *Board) addRecord(e RecordEvent) {
	if err := b.Records.Add(e); err != nil {
		b.log.Error("response-time records", "err", err)
	}
}

// contactAlertID names a no-contact alarm in the records: the board
// raises it, so it has no id from a room.
func contactAlertID(c *ContactView) string {
	if c == nil {
		return "no_contact"
	}
	return "no_contact@" + contract.FormatTime(c.RaisedAt.Time)
}

// publishUnknown sends the ids heard of that are not the site's rooms, when
// they changed.
func (b *Board) publishUnknown() {
	data, _ := json.Marshal(b.model.Unknown())
	if string(data) == b.unknown {
		return
	}
	b.unknown = string(data)
	b.log.Warn("messages from ids that are not rooms of this board (see --rooms); ignored", "ids", b.unknown)
	b.History.Publish("unknown", data)
}

func roomOf(topic, base, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, base+"/")
	if !ok {
		return "", false
	}
	room, sfx, ok := strings.Cut(rest, "/")
	if !ok || sfx != suffix || room == "" {
		return "", false
	}
	return room, true
}

func (b *Board) applyMessage(m roomclient.Message) {
	switch m.Kind {
	case roomclient.KindState:
		if m.State != nil && b.model.ApplyState(m.Room, m.State) {
			if !m.Retained {
				b.model.NoteClock(m.Room, m.State.At.Time, m.Arrived)
			}
			b.refreshRegistry()
			b.publishRoom(m.Room)
		}
	case roomclient.KindInfo:
		if b.model.ApplyInfo(m.Room, m.Info) {
			b.publishRoom(m.Room)
		}
	case roomclient.KindAvailability:
		b.refreshRegistry()
		b.publishRoom(m.Room)
	}
	if m.Room != "" && !b.model.Known(m.Room) {
		b.model.room(m.Room)
		b.publishUnknown()
	}
}

// refreshRegistry takes the registry's view of every room (availability,
// staleness) and logs and publishes the rooms whose link changed, and the
// rooms out of reach during a visit.
func (b *Board) refreshRegistry() {
	c := b.client.Load()
	if c == nil {
		return
	}
	now := b.now()
	for _, ch := range b.model.ApplyRegistry(c.Rooms(), now) {
		if ch.Before != ch.After && (ch.Before != LinkUnknown || ch.After != LinkOnline) {
			sev := "warning"
			if ch.After == LinkOnline {
				sev = "notice"
			}
			b.addLog(LogEntry{At: contract.T(now), Room: ch.Room, Type: "link_" + string(ch.After), Severity: sev,
				Detail: fmt.Sprintf("link %s → %s", ch.Before, ch.After)})
		}
		switch ch.Contact {
		case ContactLost:
			v, _ := b.model.View(ch.Room)
			b.addLog(LogEntry{At: contract.T(now), Room: ch.Room, Type: "contact_lost", Severity: "critical"})
			b.addRecord(RecordEvent{At: contract.T(now), Room: ch.Room, Alert: contactAlertID(v.NoContact), Kind: "no_contact",
				Severity: "critical", Type: "raised"})
			b.lastContact[ch.Room] = contactAlertID(v.NoContact)
		case ContactBack:
			b.addLog(LogEntry{At: contract.T(now), Room: ch.Room, Type: "contact_back", Severity: "notice"})
			if id := b.lastContact[ch.Room]; id != "" {
				b.addRecord(RecordEvent{At: contract.T(now), Room: ch.Room, Alert: id, Kind: "no_contact", Severity: "critical", Type: "cleared"})
				delete(b.lastContact, ch.Room)
			}
		}
		b.publishRoom(ch.Room)
	}
}

func (b *Board) publishRoom(room string) {
	v, ok := b.model.View(room)
	if !ok {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		b.log.Error("encode tile", "room", room, "err", err)
		return
	}
	if b.lastJSON[room] == string(data) {
		return
	}
	b.lastJSON[room] = string(data)
	b.History.Publish("room", data)
}

func (b *Board) addLog(le LogEntry) {
	data, err := json.Marshal(le)
	if err != nil {
		b.log.Error("encode log line", "err", err)
		return
	}
	b.logLines = append(b.logLines, data)
	if len(b.logLines) > LogKept {
		b.logLines = b.logLines[len(b.logLines)-LogKept:]
	}
	b.History.Publish("log", data)
}

type linkMessage struct {
	Connected bool          `json:"connected"`
	Since     contract.Time `json:"since"`
}

func (b *Board) publishLink() {
	data, _ := json.Marshal(linkMessage{Connected: b.connected, Since: contract.T(b.since)})
	b.History.Publish("link", data)
}

// snapshot is what a fresh page receives.
type snapshot struct {
	data []byte
	head string
}

type snapshotMessage struct {
	Now       contract.Time     `json:"now"`
	Link      linkMessage       `json:"link"`
	Rooms     []RoomView        `json:"rooms"`
	Log       []json.RawMessage `json:"log"`
	SimDriver bool              `json:"sim_driver"`
	Pagers    []PagerView       `json:"pagers"`
	// Unknown are the ids heard of that are not rooms of this board.
	Unknown []string `json:"unknown"`
}

func (b *Board) snapshot() snapshot {
	m := snapshotMessage{Now: contract.T(b.now()), Link: linkMessage{Connected: b.connected, Since: contract.T(b.since)},
		Rooms: b.model.Views(), Log: b.logLines, SimDriver: b.SimEnabled(), Pagers: b.model.Pagers(),
		Unknown: b.model.Unknown()}
	if m.Log == nil {
		m.Log = []json.RawMessage{}
	}
	data, err := json.Marshal(m)
	if err != nil {
		b.log.Error("encode snapshot", "err", err)
	}
	return snapshot{data: data, head: b.History.Head()}
}

// Snapshot returns every tile, the log and the link, and the id of the
// last update they include; ctx bounds the wait for the loop.
func (b *Board) Snapshot(ctx context.Context) ([]byte, string, error) {
	ch := make(chan snapshot, 1)
	b.box.put(item{snap: ch})
	select {
	case s := <-ch:
		return s.data, s.head, nil
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// ErrNotConnected is an action while the board has no broker connection.
var ErrNotConnected = errors.New("the board is not connected to the broker")

// Send sends cmd to room as operator and waits for the reply (at most
// CommandTimeout). The command carries a fresh request id and an
// expires_at one minute ahead: the room never applies it late, and
// roomclient sends it again, unchanged, until the room answers.
func (b *Board) Send(ctx context.Context, room, operator string, cmd roomclient.Command) (*roomclient.Reply, error) {
	c := b.client.Load()
	if c == nil {
		return nil, ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.CommandTimeout)
	defer cancel()
	return c.SendAs(ctx, room, operator, cmd)
}

// SimSet publishes a simulator control to room's sim/set, after checking
// it with the simulator's own parser.
func (b *Board) SimSet(ctx context.Context, room string, payload []byte) error {
	if !b.SimEnabled() {
		return errors.New("the tester panel is off (start the board with --sim-driver-user)")
	}
	if _, err := contract.DecodeSimControl(payload); err != nil {
		return err
	}
	c := b.simCli.Load()
	if c == nil {
		return ErrNotConnected
	}
	t, err := c.Topics(room)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Publish(ctx, t.SimSet(), payload, false)
}

// View returns room's tile, and false for a room the board does not know;
// ctx bounds the wait for the loop.
func (b *Board) View(ctx context.Context, room string) (RoomView, bool) {
	ch := make(chan viewReply, 1)
	b.box.put(item{view: ch, room: room})
	select {
	case r := <-ch:
		return r.v, r.ok
	case <-ctx.Done():
		return RoomView{}, false
	}
}

// AckContact acknowledges, as operator, the no-contact alarm of room (a
// room out of reach during a visit): the board keeps it (the room cannot
// hear), every screen stops ringing for it, and the records name the
// operator. It reports whether there was one not yet acknowledged.
func (b *Board) AckContact(ctx context.Context, room, operator string) bool {
	ch := make(chan bool, 1)
	b.box.put(item{ackContact: ch, room: room, operator: operator})
	select {
	case ok := <-ch:
		return ok
	case <-ctx.Done():
		return false
	}
}

// RoomMatcher returns whether an id is one of the rooms given as ids or
// patterns (path.Match: * and ?). A malformed pattern matches nothing.
func RoomMatcher(rooms []string) func(string) bool {
	return func(id string) bool {
		for _, p := range rooms {
			if ok, err := path.Match(p, id); err == nil && ok {
				return true
			}
		}
		return false
	}
}

// ParseRooms reads a list of room ids and patterns, separated by commas or
// spaces ("room-1,room-2", "room-*"). Each must be a valid room id once
// its * and ? are read as letters, and a valid pattern.
func ParseRooms(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		plain := strings.NewReplacer("*", "x", "?", "x").Replace(f)
		if _, err := path.Match(f, ""); err != nil || !contract.ValidRoom(plain) {
			return nil, fmt.Errorf("room %q: want a room id ([a-z0-9][a-z0-9_-]*) or a pattern of them with * and ?", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("no room: want room ids or patterns, e.g. room-1,room-2 or room-*")
	}
	return out, nil
}

type viewReply struct {
	v  RoomView
	ok bool
}
