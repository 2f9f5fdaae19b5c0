package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/link/outbox"
)

// SourceReplies is the fault source of the command reply cache (cleared by ack).
const SourceReplies = "replies"

// LinkClient is the part of *link.Client that MQTTLink uses.
type LinkClient interface {
	Incoming() <-chan link.Message
	Publish(r controller.Record) error
	PublishState(payload []byte)
	Reply(requestID string, payload []byte) error
	Close(ctx context.Context) error
}

// MQTTLinkOptions configure NewMQTTLink.
type MQTTLinkOptions struct {
	Room string
	// Replies is the idempotency cache; nil keeps one in memory only.
	Replies *link.Replies
	// MaxPayload is the largest command accepted (0: link.DefaultMaxCommand).
	MaxPayload int
	// SimSet, if not nil, receives every sim/set payload (simulator mode).
	SimSet func(payload []byte) error
	// Now stamps the expiry check of commands; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// MQTTLink adapts a link client to the loop's Link. A goroutine (Run) reads
// the client's messages: a command whose request_id is in the reply cache
// gets the cached reply again; one refused at the edge (link.DecodeCommand)
// is answered at once; a duplicate of a command still in the loop is
// dropped (its reply is coming); others go to the loop. sim/set payloads go
// to SimSet. Problems of the reply cache are reported on Faults.
type MQTTLink struct {
	c       LinkClient
	opts    MQTTLinkOptions
	log     *slog.Logger
	replies *link.Replies
	cmds    chan controller.Command
	faults  chan controller.Fault

	mu       sync.Mutex
	inFlight map[string]bool
}

var _ Link = (*MQTTLink)(nil)

// NewMQTTLink returns the adapter; start its reader with go l.Run().
func NewMQTTLink(c LinkClient, opts MQTTLinkOptions) *MQTTLink {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := opts.Replies
	if r == nil {
		r, _ = link.OpenReplies("", 0) // in memory: cannot fail
	}
	return &MQTTLink{c: c, opts: opts, log: opts.Logger, replies: r,
		cmds: make(chan controller.Command, 16), faults: make(chan controller.Fault, 8), inFlight: map[string]bool{}}
}

// Faults delivers problems of the adapter (the reply cache) to raise as
// system faults; pass it as Deps.Faults.
func (l *MQTTLink) Faults() <-chan controller.Fault { return l.faults }

// Fault reports a fault on Faults without blocking (a full channel means
// faults are already pending).
func (l *MQTTLink) Fault(f controller.Fault) {
	select {
	case l.faults <- f:
	default:
	}
}

// Run reads the client's messages until Incoming is closed (by Close), then
// closes Commands.
func (l *MQTTLink) Run() {
	defer close(l.cmds)
	for m := range l.c.Incoming() {
		switch m.Kind {
		case link.KindCommand:
			l.command(m.Payload)
		case link.KindSimSet:
			if l.opts.SimSet == nil {
				l.log.Warn("sim/set message without a simulator; ignored")
				continue
			}
			if err := l.opts.SimSet(m.Payload); err != nil {
				l.log.Warn("sim/set refused", "err", err)
			}
		default:
			l.log.Warn("message of unknown kind ignored", "kind", m.Kind)
		}
	}
}

func (l *MQTTLink) command(payload []byte) {
	id := link.PeekRequestID(payload, l.opts.MaxPayload)
	if r, ok := l.replies.Lookup(id); ok {
		l.log.Info("duplicate command answered from the reply cache")
		l.log.Debug("duplicate command", "request", id)
		if err := l.c.Reply(id, r); err != nil {
			l.log.Warn("reply failed", "err", err)
		}
		return
	}
	cmd, cerr := link.DecodeCommand(payload, l.opts.MaxPayload, l.opts.Now())
	if cerr != nil {
		l.log.Info("command refused at the edge", "code", cerr.Code)
		l.log.Debug("command refused", "request", id, "err", cerr)
		r := link.EncodeRefusal(cerr)
		l.store(cerr.RequestID, r)
		if err := l.c.Reply(cerr.RequestID, r); err != nil {
			l.log.Warn("reply failed", "err", err)
		}
		return
	}
	l.mu.Lock()
	dup := l.inFlight[cmd.RequestID]
	l.inFlight[cmd.RequestID] = true
	l.mu.Unlock()
	if dup {
		l.log.Info("duplicate of a command in progress dropped")
		return
	}
	l.cmds <- cmd
}

func (l *MQTTLink) store(id string, payload []byte) {
	if err := l.replies.Store(id, payload); err != nil {
		l.log.Error("reply cache write failed; a redelivered command may be applied twice", "err", err)
		l.Fault(controller.Fault{Source: SourceReplies, Active: true, Severity: controller.SeverityWarning,
			ClearOnAck: true, Detail: "reply cache cannot be written: " + err.Error()})
	}
}

// Commands implements Link.
func (l *MQTTLink) Commands() <-chan controller.Command { return l.cmds }

// Publish implements Link; outbox.ErrFull is reported as ErrOutboxFull.
func (l *MQTTLink) Publish(rec controller.Record) error {
	err := l.c.Publish(rec)
	if errors.Is(err, outbox.ErrFull) {
		return fmt.Errorf("%w: %w", ErrOutboxFull, err)
	}
	return err
}

// PublishState implements Link.
func (l *MQTTLink) PublishState(st controller.State) error {
	l.c.PublishState(link.EncodeState(l.opts.Room, st))
	return nil
}

// Reply implements Link: encode, remember in the reply cache, send.
func (l *MQTTLink) Reply(rep controller.Reply, st controller.State) error {
	payload := link.EncodeReply(l.opts.Room, rep, st)
	l.store(rep.RequestID, payload)
	l.mu.Lock()
	delete(l.inFlight, rep.RequestID)
	l.mu.Unlock()
	return l.c.Reply(rep.RequestID, payload)
}

// Close implements Link.
func (l *MQTTLink) Close(ctx context.Context) error { return l.c.Close(ctx) }
