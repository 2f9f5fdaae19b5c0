package link

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// EdgeOptions configure NewEdge.
type EdgeOptions struct {
	Room       string
	Topics     contract.Topics
	MaxPayload int // 0: DefaultMaxCommand
	// Now is the room's clock, for expires_at.
	Now func() time.Time
	// Submit hands a command to the room's loop without blocking; false
	// means the loop's queue is full (the command gets busy).
	Submit func(c controller.Command, operator string) bool
	// SimSet, if not nil, applies a sim/set payload (simulator mode). It is
	// called on the MQTT client's goroutine, never through the command
	// queue, so a simulated press is never dropped for a command flood.
	SimSet func(payload []byte) error
	// Publisher answers what the edge answers itself (refusals, duplicates,
	// get_state, replay).
	Publisher *Publisher
	// Faults receives the edge's faults; it must not block.
	Faults func(controller.Fault)
	// Authorize says whether the room takes a command from its sender:
	// operator is the {operator} of cmd/{operator} ("" and onTopic false
	// for the plain cmd topic), query whether the command only asks
	// (get_state, replay). A non-empty answer refuses the command with
	// not_authorized and says why, whatever the broker let through. Nil
	// takes every command (roomd always sets it from its config).
	Authorize func(operator string, onTopic, query bool) string
	// Rate bounds each identity's commands (ratelimit.go); the zero value
	// means DefaultRateLimit.
	Rate   RateLimit
	Logger *slog.Logger
}

// Edge reads inbound messages: commands are checked, answered from the
// reply index when they were seen before, refused at once when they cannot
// be read, and otherwise handed to the room's loop; get_state and replay are
// answered here; sim/set goes to the simulator. Handle never blocks.
type Edge struct {
	o   EdgeOptions
	log *slog.Logger
	idx *replyIndex
	// idxNow is the publisher's clock: the reply window is judged on the
	// axis the replies were stamped on.
	idxNow func() time.Time

	lim      *limiter
	mu       sync.Mutex
	unsaid   int       // replies that could not be queued
	lastSaid time.Time // when the commands fault was last raised
}

// NewEdge returns the edge; pass its Handle as Options.Handler.
func NewEdge(o EdgeOptions) *Edge {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Faults == nil {
		o.Faults = func(controller.Fault) {}
	}
	if o.Rate == (RateLimit{}) {
		o.Rate = DefaultRateLimit
	}
	return &Edge{o: o, log: o.Logger.With(slog.String("component", "commands")), idx: o.Publisher.idx, idxNow: o.Publisher.o.Now,
		lim: newLimiter(o.Rate)}
}

// Handle takes one inbound message.
func (e *Edge) Handle(m Message) {
	switch m.Kind {
	case KindSimSet:
		if e.o.SimSet == nil {
			e.log.Warn("sim/set message without a simulator; ignored")
			return
		}
		if err := e.o.SimSet(m.Payload); err != nil {
			e.log.Warn("sim/set refused", "err", err)
			return
		}
		// Said, so that a tester (and a failing test) can tell a control
		// that never came from one that came and did not do what was meant.
		e.log.Info("sim/set applied", "bytes", len(m.Payload))
	case KindCommand:
		e.command(m)
	}
}

func (e *Edge) command(m Message) {
	op := m.Operator
	if len(m.Payload) == 0 {
		// An empty retained publish clears a retained command on the
		// broker; there is nothing to answer.
		e.log.Debug("empty command payload ignored (a retained command being cleared)", "topic", m.Topic)
		return
	}
	if m.Retained {
		e.log.Warn("retained command ignored: a command must not be retained; clear it with an empty retained publish",
			"topic", m.Topic, "request_id", contract.PeekRequestID(m.Payload, e.o.MaxPayload))
		return
	}
	bucket := op
	if m.OperatorTopic && op == "" {
		// cmd/ with an empty level is not the plain cmd topic: a flood
		// there must not make the booking system's commands busy. No
		// operator id contains '/'.
		bucket = "cmd/"
	}
	if !e.admit(bucket, m.Payload) {
		return
	}
	if cerr := contract.CheckOperator(op, m.OperatorTopic, m.Payload, e.o.MaxPayload); cerr != nil {
		e.log.Warn("command refused: the topic's operator is not an operator id", "topic", m.Topic)
		e.refuse(op, cerr)
		return
	}
	if e.o.Authorize != nil {
		action := contract.PeekAction(m.Payload)
		query := action == controller.ActionGetState.String() || action == contract.ActionReplay
		if why := e.o.Authorize(op, m.OperatorTopic, query); why != "" {
			e.log.Warn("command refused: its sender is not accepted by the room's config (commands)",
				"topic", m.Topic, "operator", op, "action", action, "why", why)
			e.refuse(op, &contract.CommandError{RequestID: contract.PeekRequestID(m.Payload, e.o.MaxPayload), Action: action,
				Code: contract.CodeNotAuthorized, Message: why})
			return
		}
	}
	id := contract.PeekRequestID(m.Payload, e.o.MaxPayload)
	key := replyKey(op, id)
	if id != "" {
		reply, dup := e.idx.claim(key, e.idxNow())
		switch {
		case reply != nil:
			e.log.Info("duplicate command answered from the reply index")
			e.log.Debug("duplicate command", "request", id, "operator", op)
			e.send(reply)
			return
		case dup:
			e.log.Info("duplicate of a command in progress; its reply is coming")
			return
		}
	}
	release := func() {
		if id != "" {
			e.idx.release(key)
		}
	}
	cmd, cerr := contract.DecodeCommand(m.Payload, e.o.MaxPayload, e.o.Now())
	if cerr != nil {
		release()
		e.log.Info("command refused at the edge", "code", cerr.Code)
		e.log.Debug("command refused", "request", id, "err", cerr)
		e.refuse(op, cerr)
		return
	}
	switch {
	case cmd.Replay != nil:
		release()
		if !e.o.Publisher.Replay(*cmd.Replay, cmd.RequestID, op) {
			e.refuse(op, &contract.CommandError{RequestID: cmd.RequestID, Action: contract.ActionReplay, Code: contract.CodeBusy,
				Message: "replays are already queued; send it again later"})
		}
	case cmd.Action == controller.ActionGetState:
		release()
		if !e.o.Publisher.StateReply(cmd.RequestID, op) {
			e.unsent(cmd.RequestID)
		}
	default:
		if !e.o.Submit(cmd.Command, op) {
			release()
			e.log.Warn("command refused: the room's queue is full", "action", cmd.Action)
			e.refuse(op, &contract.CommandError{RequestID: cmd.RequestID, Action: cmd.ActionName(), Code: contract.CodeBusy,
				Message: "roomd is busy; the command was not applied, send it again with the same request_id"})
		}
	}
}

func (e *Edge) refuse(op string, cerr *contract.CommandError) {
	e.send(contract.EncodeRefusal(op, cerr))
}

func (e *Edge) send(payload []byte) {
	if !e.o.Publisher.Direct(e.o.Topics.Reply(), payload) {
		e.unsent(contract.PeekRequestID(payload, 1<<20))
	}
}

// unsent counts a reply that could not even be queued and raises the
// commands fault: nothing is ever dropped silently.
func (e *Edge) unsent(requestID string) {
	e.mu.Lock()
	e.unsaid++
	n := e.unsaid
	raise := wallclock.Since(e.lastSaid) >= time.Second // the controller keeps one such alert; no need to flood
	if raise {
		e.lastSaid = wallclock.Now()
	}
	e.mu.Unlock()
	e.log.Error("reply could not be queued; the sender gets no answer and must retry", "request_id", requestID, "total", n)
	if raise {
		e.o.Faults(controller.Fault{Source: contract.SourceCommands, Active: true, Severity: controller.SeverityWarning, ClearOnAck: true,
			Detail: fmt.Sprintf("commands arrive faster than roomd can answer them; %d got no reply and must be sent again", n)})
	}
}

// admit applies the rate limit of bucket (ratelimit.go): the operator id,
// "" for the plain cmd topic, "cmd/" for an operator topic with an empty
// level. False when the command was answered busy or dropped here.
func (e *Edge) admit(bucket string, payload []byte) bool {
	op := bucket
	if bucket == "cmd/" {
		op = "" // the topic's level, as every reply to it carries
	}
	v, first := e.lim.take(bucket, wallclock.Now())
	switch v {
	case verdictBusy:
		e.refuse(op, &contract.CommandError{RequestID: contract.PeekRequestID(payload, e.o.MaxPayload), Action: contract.PeekAction(payload), Code: contract.CodeBusy,
			Message: fmt.Sprintf("too many commands from this identity (more than %d/s); not applied, send it again later with the same request_id", e.o.Rate.PerSecond)})
		return false
	case verdictDrop:
		if first {
			who := op
			switch bucket {
			case "":
				who = "the plain cmd topic"
			case "cmd/":
				who = "the cmd/ topic with an empty level"
			}
			e.log.Error("an identity floods the room with commands; its commands are dropped unanswered", "identity", who, "cap_per_s", e.o.Rate.CapPerSecond)
			e.o.Faults(controller.Fault{Source: contract.SourceCommands, Active: true, Severity: controller.SeverityWarning, ClearOnAck: true,
				Detail: fmt.Sprintf("identity %q sent more than %d commands in a second: in every second it sends more, what is beyond that is dropped without an answer (above %d/s it is answered busy); other identities are not affected",
					who, e.o.Rate.CapPerSecond, e.o.Rate.PerSecond)})
		}
		return false
	}
	return true
}
