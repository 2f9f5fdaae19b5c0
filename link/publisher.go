package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// Defaults of PublisherOptions.
const (
	DefaultWindow      = 16
	DefaultFaultAfter  = 30 * time.Second
	DefaultReplyWindow = 24 * time.Hour
	DefaultMaxReplies  = 100000
	// DirectQueue bounds the replies and other messages waiting outside the
	// journal (refusals, answers to duplicates, get_state, replays).
	DirectQueue = 4096
	// StallAfter: when the oldest publish in flight has waited this long
	// for its PUBACK, records no longer wait for the window: the journal's
	// messages after it are sent at once (up to StallWindow in flight), so
	// a panic reaches a broker that forwards but does not acknowledge.
	StallAfter  = 500 * time.Millisecond
	StallWindow = 1024
)

// Source is the journal as the Publisher reads it; *journal.Journal
// satisfies it.
type Source interface {
	Get(lsn uint64) (*journal.Entry, error)
	First() uint64
	Last() uint64
	Changed() <-chan struct{}
	Acked() journal.Pos
	Ack(p journal.Pos)
	SnapshotAt(lsn uint64) *controller.Snapshot
	Epoch() journal.Epoch
	SeqRange(ep journal.Epoch) (first, last uint64, ok bool)
	EntriesWithSeqs(ep journal.Epoch, from, to uint64) []uint64
	Since(t time.Time) []uint64
}

// Conn is the broker connection as the Publisher uses it; *Client
// satisfies it.
type Conn interface {
	// Conn returns the current connection's number and a channel closed when
	// it is lost; ok false when there is none (up is then closed when one
	// comes).
	Conn() (epoch uint64, lost <-chan struct{}, up <-chan struct{}, ok bool)
	// Publish starts a QoS 1 publish on connection epoch; unless that is
	// the current usable connection, the token fails at once.
	Publish(epoch uint64, topic string, payload []byte, retained bool) mqtt.Token
	// Drop ends connection epoch so that a new one is made; nothing if a
	// later one is current.
	Drop(epoch uint64, reason error)
}

// PublisherOptions configure NewPublisher.
type PublisherOptions struct {
	Room    string
	Topics  contract.Topics
	Journal Source
	Conn    Conn
	// Now is the room's time axis (state timestamps, the reply window).
	Now func() time.Time
	// Heartbeat: the state is published again this often (default 30s).
	Heartbeat time.Duration
	// Window bounds the publishes in flight (default 16).
	Window int
	// PublishTimeout: a publish without PUBACK for this long means the broker
	// is not working: the connection is dropped and made again (default 10s).
	PublishTimeout time.Duration
	// FaultAfter: no delivery for this long while the room has something to
	// deliver, or no connection, raises a critical system_fault (source link)
	// through Faults; it clears when delivery resumes (default 30s).
	FaultAfter time.Duration
	// Faults receives the link's faults; it must not block.
	Faults func(controller.Fault)
	// ReplyWindow is how long a reply answers a redelivered command (default 24h).
	ReplyWindow time.Duration
	// MaxReplies bounds the replies kept for that (default 100000).
	MaxReplies int
	Logger     *slog.Logger
}

// outMsg is one message to publish. build, if set, makes the payload at
// the moment of sending (so that a state is the latest published one).
type outMsg struct {
	topic    string
	payload  []byte
	retained bool
	build    func() []byte
	journal  bool        // a message of a journal entry: pos is its position
	pos      journal.Pos // its position; the ack position after it is pos+1
	state    *controller.Snapshot
	epoch    journal.Epoch
	at       time.Time
}

type inflight struct {
	msg  outMsg
	tok  mqtt.Token
	sent time.Time
}

// Publisher follows the room's journal and publishes it in order: each
// record on events (and, for the alert lifecycle, on alerts), then the
// state that carries that record's seq, then the replies of the step. A
// state therefore never reaches a consumer before its event. It keeps the
// acknowledgement position in the journal, publishes availability and the
// state after every connection and on the heartbeat, answers get_state and
// replay, and keeps the replies of the reply window so that a redelivered
// command is answered, not applied.
type Publisher struct {
	o   PublisherOptions
	log *slog.Logger
	j   Source
	c   Conn
	idx *replyIndex

	mu       sync.Mutex
	direct   []outMsg // replies and other messages outside the journal
	replays  []replayJob
	retained map[string][]byte // topic → latest payload (sim outputs, ...)
	dropped  int
	kick     chan struct{}
	closing  bool

	// Only the run goroutine touches these.
	cur      journal.Pos // next journal message to send
	curMsgs  []outMsg    // messages of entry cur.LSN
	lastSnap *controller.Snapshot
	lastEp   journal.Epoch
	sent     map[string]uint64 // retained topic → version sent on this connection
	first    []outMsg          // what a new connection starts with
	inflight []inflight
	connNo   uint64
	okAt     time.Time // last time delivery was fine
	faulted  bool
	ixSnap   *controller.Snapshot
	ixNext   uint64 // next entry to index

	stop chan struct{}
	done chan struct{}

	stateSent atomic.Int64 // when the state was last handed over (axis time, Unix ns); 0: never
}

type replayJob struct {
	req      contract.Replay
	reply    func(*contract.ReplayBody, *contract.CommandError) []byte
	operator string
}

// NewPublisher builds the reply index from the journal (the replies of the
// reply window) and returns the publisher; start it with Run.
func NewPublisher(o PublisherOptions) (*Publisher, error) {
	if o.Journal == nil || o.Conn == nil || o.Now == nil {
		return nil, errors.New("publisher needs a journal, a connection and a clock")
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = contract.DefaultHeartbeat
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.FaultAfter <= 0 {
		o.FaultAfter = DefaultFaultAfter
	}
	if o.ReplyWindow <= 0 {
		o.ReplyWindow = DefaultReplyWindow
	}
	if o.MaxReplies <= 0 {
		o.MaxReplies = DefaultMaxReplies
	}
	if o.Faults == nil {
		o.Faults = func(controller.Fault) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{o: o, log: o.Logger.With(slog.String("component", "publisher")), j: o.Journal, c: o.Conn,
		idx: newReplyIndex(o.ReplyWindow, o.MaxReplies), retained: map[string][]byte{}, sent: map[string]uint64{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	// The reply index: every reply of the window, so that a redelivered
	// command is answered from it from the first moment.
	since := p.j.Since(o.Now().Add(-o.ReplyWindow))
	p.ixNext = p.j.Last() + 1
	if len(since) > 0 {
		p.ixNext = since[0]
	}
	p.ixSnap = p.j.SnapshotAt(p.ixNext - 1)
	p.index()
	p.cur = p.j.Acked()
	p.lastSnap = p.j.SnapshotAt(p.cur.LSN - 1)
	p.lastEp = p.j.Epoch()
	return p, nil
}

// Index returns the reply index, which the Edge consults.
func (p *Publisher) Index() *replyIndex { return p.idx }

// Run publishes until Close.
func (p *Publisher) Run() {
	defer close(p.done)
	p.okAt = wallclock.Now()
	hb := time.NewTicker(p.o.Heartbeat)
	defer hb.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		changed := p.j.Changed()
		p.index()
		epoch, lost, up, ok := p.c.Conn()
		if !ok {
			p.health(false)
			select {
			case <-up:
			case <-changed:
			case <-p.kick:
			case <-check.C:
			case <-hb.C:
			case <-p.stop:
				return
			}
			continue
		}
		if epoch != p.connNo {
			p.connected(epoch)
		}
		p.fill()
		var headDone <-chan struct{}
		var headTimeout <-chan time.Time
		var timer *time.Timer
		if len(p.inflight) > 0 {
			h := p.inflight[0]
			headDone = h.tok.Done()
			waited := wallclock.Since(h.sent)
			wake := p.o.PublishTimeout - waited
			if waited < StallAfter {
				wake = min(wake, StallAfter-waited) // then the window opens
			}
			timer = time.NewTimer(max(wake, 0))
			headTimeout = timer.C
			p.health(false) // raises the link fault only after FaultAfter without a PUBACK
		} else {
			p.health(true)
		}
		select {
		case <-headDone:
		case <-headTimeout:
		case <-changed:
		case <-p.kick:
		case <-hb.C:
			p.heartbeat()
		case <-check.C:
		case <-lost:
		case <-p.stop:
			if timer != nil {
				timer.Stop()
			}
			return
		}
		if timer != nil {
			timer.Stop()
		}
		p.reap(lost)
	}
}

// connected starts a new connection: the journal is published again from
// the acknowledgement position, after availability and the state.
func (p *Publisher) connected(epoch uint64) {
	p.connNo = epoch
	// Whatever was in flight on the old connection may not have arrived:
	// journal messages are sent again from the acknowledgement position,
	// others are put back in front of the queue.
	var again []outMsg
	for _, f := range p.inflight {
		if !f.msg.journal && f.msg.topic != p.o.Topics.Availability() && f.msg.topic != p.o.Topics.State() {
			again = append(again, f.msg)
		}
	}
	p.inflight = nil
	p.mu.Lock()
	p.direct = append(again, p.direct...)
	clear(p.sent)
	p.mu.Unlock()
	p.cur = p.j.Acked()
	p.curMsgs = nil
	p.lastSnap = p.j.SnapshotAt(p.cur.LSN - 1)
	if p.connNo == 1 {
		p.lastEp = p.j.Epoch() // a start that continued in a new epoch
	}
	t := p.o.Topics
	p.first = []outMsg{{topic: t.Availability(), payload: []byte(contract.Online), retained: true}}
	if p.lastSnap != nil {
		p.first = append(p.first, p.stateMsg())
	}
}

// stateMsg is the retained state, made when sent from the latest published
// snapshot at the room's current time.
func (p *Publisher) stateMsg() outMsg {
	return outMsg{topic: p.o.Topics.State(), retained: true, build: func() []byte {
		if p.lastSnap == nil {
			return nil
		}
		now := p.o.Now()
		p.stateSent.Store(now.UnixNano())
		return contract.EncodeState(p.o.Room, p.lastEp, p.lastSnap.StateAt(now))
	}}
}

func (p *Publisher) heartbeat() {
	if p.lastSnap == nil {
		return
	}
	p.mu.Lock()
	p.direct = append(p.direct, p.stateMsg())
	p.mu.Unlock()
}

// fill sends messages while the window has room: what a new connection
// starts with (availability, the state), then journal messages (alerts must
// not wait behind anything else), then the direct queue, then retained
// slots, then replays. While the oldest publish has waited StallAfter for
// its PUBACK, journal messages go beyond the window (up to StallWindow):
// records are never held hostage behind a broker that stopped
// acknowledging, for the PublishTimeout it takes to declare it dead.
//
// Messages outside the journal (replies, busy answers to a flood) take at
// most half of the window: a record that comes while they wait for their
// PUBACKs is sent at once, never behind them.
func (p *Publisher) fill() {
	others := 0
	for _, f := range p.inflight {
		if !f.msg.journal {
			others++
		}
	}
	stalled := len(p.inflight) > 0 && wallclock.Since(p.inflight[0].sent) >= StallAfter
	for {
		if len(p.inflight) >= p.o.Window && !(stalled && len(p.inflight) < StallWindow) {
			return
		}
		var m outMsg
		ok := len(p.first) > 0
		if ok {
			m, p.first = p.first[0], p.first[1:]
		} else if m, ok = p.nextJournal(); !ok && others < max(p.o.Window/2, 1) && len(p.inflight) < p.o.Window {
			m, ok = p.nextOther()
			if ok {
				others++
			}
		}
		if !ok {
			return
		}
		if m.build != nil {
			m.payload = m.build()
			if m.payload == nil {
				continue
			}
		}
		p.inflight = append(p.inflight, inflight{msg: m, tok: p.c.Publish(p.connNo, m.topic, m.payload, m.retained), sent: wallclock.Now()})
	}
}

// nextJournal returns the next journal message to send, and advances the
// cursor past it.
func (p *Publisher) nextJournal() (outMsg, bool) {
	for {
		if p.curMsgs == nil {
			if p.cur.LSN > p.j.Last() || p.cur.LSN == 0 {
				return outMsg{}, false
			}
			e, err := p.j.Get(p.cur.LSN)
			if err != nil {
				if errors.Is(err, journal.ErrCompacted) || errors.Is(err, journal.ErrLost) {
					p.log.Warn("journal entry gone before it was published; skipping it", "lsn", p.cur.LSN, "err", err)
					p.j.Ack(journal.Pos{LSN: p.cur.LSN + 1})
					p.cur = journal.Pos{LSN: p.cur.LSN + 1}
					continue
				}
				p.log.Error("journal entry unreadable; trying again", "lsn", p.cur.LSN, "err", err)
				return outMsg{}, false
			}
			p.curMsgs = p.entryMsgs(e)
			if len(p.curMsgs) == 0 {
				p.curMsgs = nil
				p.cur = journal.Pos{LSN: p.cur.LSN + 1}
				p.ackIfIdle()
				continue
			}
		}
		if int(p.cur.Msg) >= len(p.curMsgs) {
			p.curMsgs = nil
			p.cur = journal.Pos{LSN: p.cur.LSN + 1}
			continue
		}
		m := p.curMsgs[p.cur.Msg]
		p.cur.Msg++
		if m.state != nil {
			p.lastSnap, p.lastEp = m.state, m.epoch
		}
		return m, true
	}
}

// ackIfIdle moves the acknowledgement position over entries with nothing
// to publish when nothing is in flight before them.
func (p *Publisher) ackIfIdle() {
	if len(p.inflight) == 0 {
		p.j.Ack(p.cur)
	}
}

// entryMsgs returns the messages of an entry, in order: records (events,
// alerts), verbatim messages, the state, the replies.
func (p *Publisher) entryMsgs(e *journal.Entry) []outMsg {
	if e.Checkpoint {
		return nil
	}
	t := p.o.Topics
	var out []outMsg
	add := func(m outMsg) {
		m.journal = true
		m.pos = journal.Pos{LSN: e.LSN, Msg: uint32(len(out))}
		out = append(out, m)
	}
	for _, r := range e.Records {
		payload := contract.EncodeRecord(p.o.Room, e.Epoch, r)
		add(outMsg{topic: t.Events(), payload: payload})
		if r.Type.IsAlert() {
			add(outMsg{topic: t.Alerts(), payload: payload})
		}
	}
	for _, m := range e.Messages {
		add(outMsg{topic: m.Topic, payload: m.Payload})
	}
	snap := p.lastSnap
	if e.Snapshot != nil {
		snap = e.Snapshot
		add(outMsg{topic: t.State(), retained: true, payload: contract.EncodeState(p.o.Room, e.Epoch, e.Snapshot.StateAt(e.At)),
			state: e.Snapshot, epoch: e.Epoch})
	}
	for _, r := range e.Replies {
		add(outMsg{topic: t.Reply(), payload: p.replyPayload(e, r, snap)})
	}
	return out
}

func (p *Publisher) replyPayload(e *journal.Entry, r journal.Reply, snap *controller.Snapshot) []byte {
	var st controller.State
	if snap != nil {
		st = snap.StateAt(e.At)
	}
	return contract.EncodeReply(p.o.Room, e.Epoch, r.Operator, r.Reply, st)
}

// nextOther returns the next message outside the journal.
func (p *Publisher) nextOther() (outMsg, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.direct) > 0 {
		m := p.direct[0]
		p.direct = p.direct[1:]
		return m, true
	}
	for topic, payload := range p.retained {
		if v := versionOf(payload); p.sent[topic] != v {
			p.sent[topic] = v
			return outMsg{topic: topic, payload: payload, retained: true}, true
		}
	}
	if len(p.replays) > 0 {
		job := p.replays[0]
		p.replays = p.replays[1:]
		p.mu.Unlock()
		msgs := p.replayMsgs(job)
		p.mu.Lock()
		if len(msgs) > 0 {
			p.direct = append(p.direct, msgs[1:]...)
			return msgs[0], true
		}
	}
	return outMsg{}, false
}

// versionOf identifies a payload (retained slots are latest-wins).
func versionOf(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h | 1
}

// reap takes the completed publishes off the front of the window, moving
// the acknowledgement position; a failed or overdue one drops the
// connection, and everything is sent again on the next.
func (p *Publisher) reap(lost <-chan struct{}) {
	for len(p.inflight) > 0 {
		h := p.inflight[0]
		select {
		case <-h.tok.Done():
		default:
			if wallclock.Since(h.sent) >= p.o.PublishTimeout {
				p.log.Warn("no PUBACK in time; the broker is not working", "topic", h.msg.topic, "waited", wallclock.Since(h.sent))
				p.c.Drop(p.connNo, fmt.Errorf("no PUBACK for %s", p.o.PublishTimeout))
				p.connNo = 0 // start over on the next connection
			}
			select {
			case <-lost:
				p.connNo = 0
			default:
			}
			return
		}
		if err := h.tok.Error(); err != nil {
			p.log.Warn("publish failed; sending again from the first unacknowledged message", "topic", h.msg.topic, "err", err)
			p.c.Drop(p.connNo, err)
			p.connNo = 0
			return
		}
		p.inflight = p.inflight[1:]
		p.okAt = wallclock.Now()
		if h.msg.journal {
			next := journal.Pos{LSN: h.msg.pos.LSN, Msg: h.msg.pos.Msg + 1}
			if len(p.inflight) == 0 && p.curMsgs == nil {
				next = p.cur // everything up to the cursor is acknowledged
			}
			p.j.Ack(next)
		}
	}
	p.ackIfIdle()
}

// health raises the link fault when nothing could be delivered for
// FaultAfter, and clears it when delivery works again.
func (p *Publisher) health(ok bool) {
	now := wallclock.Now()
	if ok {
		p.okAt = now
		if p.faulted {
			p.faulted = false
			p.log.Info("delivery to the broker works again")
			p.o.Faults(controller.Fault{Source: contract.SourceLink, Active: false})
		}
		return
	}
	if !p.faulted && now.Sub(p.okAt) >= p.o.FaultAfter {
		p.faulted = true
		p.log.Error("nothing delivered to the broker for too long", "for", now.Sub(p.okAt))
		p.o.Faults(controller.Fault{Source: contract.SourceLink, Active: true, Severity: controller.SeverityCritical,
			Detail: fmt.Sprintf("the room could not deliver to the broker for %s; guards may not hear it", p.o.FaultAfter)})
	}
}

// index adds the replies of new entries to the reply index. The Edge
// clears a command's in-flight mark in the same step, so a redelivery is
// either still in flight or answered, never applied twice.
func (p *Publisher) index() {
	last := p.j.Last()
	for ; p.ixNext <= last; p.ixNext++ {
		e, err := p.j.Get(p.ixNext)
		if err != nil {
			continue // compacted or lost: nothing to answer from
		}
		if e.Snapshot != nil {
			p.ixSnap = e.Snapshot
		}
		for _, c := range e.Cached {
			p.idx.put(replyKey(c.Operator, c.RequestID), c.Payload, e.At)
		}
		for _, r := range e.Replies {
			p.idx.put(replyKey(r.Operator, r.Reply.RequestID), p.replyPayload(e, r, p.ixSnap), e.At)
		}
	}
	p.idx.expire(p.o.Now())
}

// Direct queues a message outside the journal (a refusal, a cached reply).
// It reports false when the queue is full.
func (p *Publisher) Direct(topic string, payload []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.direct) >= DirectQueue {
		p.dropped++
		return false
	}
	p.direct = append(p.direct, outMsg{topic: topic, payload: payload})
	p.wake()
	return true
}

// StateReply queues the answer to get_state: the latest published state at
// the moment it is sent.
func (p *Publisher) StateReply(requestID, operator string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.direct) >= DirectQueue {
		p.dropped++
		return false
	}
	p.direct = append(p.direct, outMsg{topic: p.o.Topics.Reply(), build: func() []byte {
		var st controller.State
		if p.lastSnap != nil {
			st = p.lastSnap.StateAt(p.o.Now())
		}
		return contract.EncodeReply(p.o.Room, p.lastEp, operator,
			controller.Reply{RequestID: requestID, Action: controller.ActionGetState}, st)
	}})
	p.wake()
	return true
}

// SetRetained publishes payload retained on topic after every connection
// and whenever it changes (latest wins).
func (p *Publisher) SetRetained(topic string, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retained[topic] = payload
	p.wake()
}

// Resend publishes the retained topic set with SetRetained again, now
// (after what is queued), for a consumer that asks for it (Home Assistant
// announcing itself online). It reports false when topic was never set or
// the queue is full.
func (p *Publisher) Resend(topic string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.retained[topic]; !ok || len(p.direct) >= DirectQueue {
		return false
	}
	p.direct = append(p.direct, outMsg{topic: topic, retained: true, build: func() []byte {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.retained[topic]
	}})
	p.wake()
	return true
}

// Replay queues a replay: the records of the request republished on events
// and alerts, then the reply. It reports false when replays are already
// queued (the requester gets busy).
func (p *Publisher) Replay(req contract.Replay, requestID, operator string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.replays) >= 4 {
		return false
	}
	p.replays = append(p.replays, replayJob{req: req, operator: operator, reply: func(body *contract.ReplayBody, cerr *contract.CommandError) []byte {
		if cerr != nil {
			cerr.RequestID, cerr.Action = requestID, contract.ActionReplay
			return contract.EncodeRefusal(operator, cerr)
		}
		return contract.EncodeReplayReply(operator, requestID, body)
	}})
	p.wake()
	return true
}

// replayMsgs builds the messages of a replay job.
func (p *Publisher) replayMsgs(job replayJob) []outMsg {
	t := p.o.Topics
	req := job.req
	ep := req.Epoch
	if ep == 0 {
		ep = p.j.Epoch()
	}
	reply := func(body *contract.ReplayBody, cerr *contract.CommandError) outMsg {
		return outMsg{topic: t.Reply(), payload: job.reply(body, cerr)}
	}
	first, last, ok := p.j.SeqRange(ep)
	switch {
	case !ok:
		return []outMsg{reply(nil, &contract.CommandError{Code: contract.CodeReplayUnavailable,
			Message: fmt.Sprintf("the journal holds no record of epoch %s", ep)})}
	case req.From < first:
		return []outMsg{reply(nil, &contract.CommandError{Code: contract.CodeReplayUnavailable,
			Message: fmt.Sprintf("records before seq %d of epoch %s are no longer kept (the journal keeps them for its retention); ask from %d", first, ep, first)})}
	case req.From > last:
		return []outMsg{reply(nil, &contract.CommandError{Code: contract.CodeReplayUnavailable,
			Message: fmt.Sprintf("seq %d of epoch %s has not been announced; the latest is %d", req.From, ep, last)})}
	case req.To > last:
		return []outMsg{reply(nil, &contract.CommandError{Code: contract.CodeReplayUnavailable,
			Message: fmt.Sprintf("seq %d of epoch %s has not been announced; the latest is %d: ask up to it, or leave to_seq out", req.To, ep, last)})}
	}
	to := req.To
	if to == 0 {
		to = last
	}
	to = min(to, req.From+contract.MaxReplay-1)
	var out []outMsg
	count := 0
	for _, lsn := range p.j.EntriesWithSeqs(ep, req.From, to) {
		e, err := p.j.Get(lsn)
		if err != nil {
			continue
		}
		for _, r := range e.Records {
			if r.Seq < req.From || r.Seq > to {
				continue
			}
			payload := contract.EncodeRecord(p.o.Room, e.Epoch, r)
			out = append(out, outMsg{topic: t.Events(), payload: payload})
			if r.Type.IsAlert() {
				out = append(out, outMsg{topic: t.Alerts(), payload: payload})
			}
			count++
		}
		for _, m := range e.Messages {
			if m.Seq >= req.From && m.Seq <= to {
				out = append(out, outMsg{topic: m.Topic, payload: m.Payload})
				count++
			}
		}
	}
	return append(out, reply(&contract.ReplayBody{Epoch: ep.String(), FromSeq: req.From, ToSeq: to, Count: count}, nil))
}

func (p *Publisher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Queued returns how many messages outside the journal (replies, states,
// retained topics, replays) wait to be published: a metric.
func (p *Publisher) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.direct) + len(p.replays)
}

// StateSent returns when the state was last handed to the connection, on
// the room's time axis; zero before the first: a metric.
func (p *Publisher) StateSent() time.Time {
	if ns := p.stateSent.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Dropped returns how many direct messages were refused because the queue
// was full.
func (p *Publisher) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Flush waits until every journal entry up to the latest is acknowledged
// and, while connected, every other message is handed to the connection
// (see othersHandedOver), or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	for {
		changed := p.j.Changed()
		acked, last := p.j.Acked(), p.j.Last()
		if acked.LSN > last && p.othersHandedOver() {
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("flush: entries %d to %d not acknowledged: %w", acked.LSN, last, ctx.Err())
		}
		t.Stop()
	}
}

// othersHandedOver reports whether, while connected, the messages outside
// the journal (the direct queue, the latest payload of each retained topic)
// have all been handed to the connection, which sends them in order before
// anything published after them (the offline of a clean stop). Without a
// connection there is nobody to hand them to, and it reports true.
func (p *Publisher) othersHandedOver() bool {
	if _, _, _, ok := p.c.Conn(); !ok {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.direct) > 0 {
		return false
	}
	for topic, payload := range p.retained {
		if p.sent[topic] != versionOf(payload) {
			return false
		}
	}
	return true
}

// Close stops the publisher. Call Flush first to deliver what is pending.
func (p *Publisher) Close() {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return
	}
	p.closing = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
}
