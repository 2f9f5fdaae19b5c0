package link

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/outbox"
)

// Defaults of Options.
const (
	DefaultKeepalive            = 5 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultPublishTimeout       = 10 * time.Second
	DefaultIncomingBuffer       = 64
	// closeWait bounds the offline publish in Close when ctx has no sooner deadline.
	closeWait = 2 * time.Second
	// retryInterval is how long the publishers wait after a failure before
	// they look at the connection again (a reconnect wakes them sooner).
	retryInterval = time.Second
	// replyQueue bounds replies waiting to be published.
	replyQueue = 256
	// replyTTL is how long a reply waits for a connection before it is dropped.
	replyTTL = time.Minute
)

// Queue is the durable queue the client publishes events and alerts from.
// *outbox.Outbox implements it.
type Queue interface {
	// Append stores an entry durably and returns it with its id.
	Append(topic string, payload []byte, retained bool) (outbox.Entry, error)
	// Ack removes an entry once the broker acknowledged it.
	Ack(id uint64) error
	// Pending returns the unacknowledged entries in append order.
	Pending() []outbox.Entry
	// Len returns the number of unacknowledged entries.
	Len() int
}

// Options configures New.
type Options struct {
	// Broker is the broker URL: tcp://host:port, ssl://host:port (also
	// tls://, mqtt://, mqtts://, ws://, wss://).
	Broker string
	// ClientID must be stable across restarts: the broker keeps the
	// session (clean session false) and its queued commands under it.
	ClientID string
	// Username and Password authenticate the room (the username is the room
	// id under the shipped ACL). The caller reads the password from a file.
	Username, Password string
	// TLS, if not nil, is used for ssl://, tls://, mqtts:// and wss://.
	TLS *tls.Config
	// Keepalive is the MQTT keepalive (default 5s): the broker publishes the
	// Last Will about 1.5 keepalives after the room falls silent.
	Keepalive time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the reconnect backoff (default 30s).
	MaxReconnectInterval time.Duration
	// PublishTimeout is how long a QoS 1 publish may wait for its PUBACK
	// before the client starts over from the first unacknowledged entry
	// (default 10s).
	PublishTimeout time.Duration
	// Topics names the room's topics. Required.
	Topics Topics
	// Outbox holds events and alerts until the broker acknowledged them. Required.
	Outbox Queue
	// MaxPayload is the largest command accepted (default
	// DefaultMaxCommand); larger ones are refused with bad_request at once.
	MaxPayload int
	// IncomingBuffer is the depth of the Incoming channel (default 64).
	// When it is full, a command is refused with busy.
	IncomingBuffer int
	// SimMode subscribes to sim/set and enables PublishSimOutputs.
	SimMode bool
	// Dial, if not nil, opens the connection to the broker in place of
	// dialling Broker (which must still be a valid URL: it names the broker
	// in logs). ctx ends after ConnectTimeout. TLS is not applied to the
	// connection it returns. For in-process use and tests, e.g. one end of a
	// net.Pipe whose other end an embedded broker serves.
	Dial func(ctx context.Context) (net.Conn, error)
}

// MessageKind says which topic a Message came from.
type MessageKind uint8

// The kinds of inbound messages.
const (
	KindCommand MessageKind = iota + 1 // {base}/{room}/cmd
	KindSimSet                         // {base}/{room}/sim/set (simulator mode only)
)

func (k MessageKind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindSimSet:
		return "sim_set"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Message is an inbound message, its payload copied out of the MQTT client.
type Message struct {
	Kind    MessageKind
	Topic   string
	Payload []byte
}

// Errors of the client.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("mqtt link closed")
	// ErrReplyQueueFull is returned by Reply when replies pile up faster
	// than they can be published.
	ErrReplyQueueFull = errors.New("mqtt reply queue full")
)

var (
	errConnLost       = errors.New("connection lost")
	errPublishTimeout = errors.New("no PUBACK in time")
	errStopping       = errors.New("client stopping")
)

// Client is roomd's MQTT link: it publishes events and alerts from the
// outbox, the retained state and availability, and replies, and delivers
// commands (and simulated inputs) on Incoming. All methods are safe for
// concurrent use and none blocks on the network except Close.
type Client struct {
	opts Options
	t    Topics
	log  *slog.Logger
	cli  mqtt.Client

	incoming chan Message
	inMu     sync.RWMutex
	inClosed bool

	kickOutbox   chan struct{}
	kickRetained chan struct{}
	replies      chan pendingReply
	stop         chan struct{}
	wg           sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	epoch    uint64        // connections made so far
	up       chan struct{} // closed and replaced when a connection comes up
	lost     chan struct{} // closed when the current connection is lost
	progress chan struct{} // closed and replaced when the outbox sender acks or goes idle

	availability, state, sim *slot

	// subscribed receives a value after each successful SUBACK (tests wait on it).
	subscribed chan struct{}
}

type pendingReply struct {
	requestID string
	payload   []byte
	queued    time.Time
}

// slot is a retained, latest-wins message: only the newest payload matters
// and it is published again after every reconnect.
type slot struct {
	topic     string
	payload   []byte
	version   uint64
	sentVer   uint64
	sentEpoch uint64
}

// New checks opts, starts connecting in the background and returns at once:
// roomd runs whether or not the broker is reachable. Events already in the
// outbox are published once connected.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	t := opts.Topics
	c := &Client{
		opts:         opts,
		t:            t,
		log:          logger.With(slog.String("component", "mqtt"), slog.String("room", t.Room)),
		incoming:     make(chan Message, opts.IncomingBuffer),
		kickOutbox:   make(chan struct{}, 1),
		kickRetained: make(chan struct{}, 1),
		replies:      make(chan pendingReply, replyQueue),
		stop:         make(chan struct{}),
		up:           make(chan struct{}),
		lost:         make(chan struct{}),
		progress:     make(chan struct{}),
		availability: &slot{topic: t.Availability(), payload: []byte(Online), version: 1},
		state:        &slot{topic: t.State()},
		sim:          &slot{topic: t.SimOutputs()},
		subscribed:   make(chan struct{}, 1),
	}
	close(c.lost) // not connected yet

	mo := mqtt.NewClientOptions().
		AddBroker(opts.Broker).
		SetClientID(opts.ClientID).
		SetUsername(opts.Username).
		SetPassword(opts.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetKeepAlive(opts.Keepalive).
		SetPingTimeout(opts.Keepalive).
		SetConnectTimeout(opts.ConnectTimeout).
		SetWriteTimeout(opts.PublishTimeout).
		// The client reconnects itself (connectLoop): paho's own reconnect
		// gives no signal once it has resent its in-flight messages, and
		// publishing before that races with the resend.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetProtocolVersion(4).
		// roomd's outbox, not paho, keeps what must survive: paho's stores
		// hand the same packet to its resend on reconnect (which sets the DUP
		// flag) and to the writer, a data race, and its file store neither
		// fsyncs nor survives I/O errors. With a store that keeps nothing,
		// paho resends nothing; runOutbox replays every unacknowledged entry
		// after each connect instead.
		SetStore(noStore{}).
		SetBinaryWill(t.Availability(), []byte(Offline), 1, true).
		SetDefaultPublishHandler(c.handle).
		SetConnectionLostHandler(c.onLost)
	if opts.TLS != nil {
		mo.SetTLSConfig(opts.TLS)
	}
	if dial := opts.Dial; dial != nil {
		timeout := opts.ConnectTimeout
		mo.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return dial(ctx)
		})
	}
	c.cli = mqtt.NewClient(mo)

	c.wg.Add(4)
	go c.connectLoop()
	go c.runOutbox()
	go c.runRetained()
	go c.runReplies()
	return c, nil
}

func (o *Options) check() error {
	u, err := url.Parse(o.Broker)
	if err != nil || u.Host == "" {
		return fmt.Errorf("mqtt broker URL %q: want scheme://host:port", o.Broker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("mqtt broker URL %q: unknown scheme %q (want tcp, ssl, tls, mqtt, mqtts, ws or wss)", o.Broker, u.Scheme)
	}
	if o.ClientID == "" {
		return errors.New("mqtt client id is empty; it must be stable across restarts")
	}
	if len(o.ClientID) > 65535 {
		return fmt.Errorf("mqtt client id is %d bytes, above 65535", len(o.ClientID))
	}
	if _, err := NewTopics(o.Topics.Base, o.Topics.Room); err != nil || o.Topics.Base == "" {
		return fmt.Errorf("mqtt topics %+v: build them with NewTopics: %v", o.Topics, err)
	}
	if o.Outbox == nil {
		return errors.New("mqtt link needs an outbox")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"keepalive", &o.Keepalive, DefaultKeepalive},
		{"connect timeout", &o.ConnectTimeout, DefaultConnectTimeout},
		{"max reconnect interval", &o.MaxReconnectInterval, DefaultMaxReconnectInterval},
		{"publish timeout", &o.PublishTimeout, DefaultPublishTimeout},
	} {
		if *d.v < 0 {
			return fmt.Errorf("mqtt %s must not be negative, got %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.Keepalive < time.Second {
		return fmt.Errorf("mqtt keepalive %s is below the protocol's resolution of 1s", o.Keepalive)
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxCommand
	}
	if o.IncomingBuffer <= 0 {
		o.IncomingBuffer = DefaultIncomingBuffer
	}
	return nil
}

// Incoming delivers commands (and, in simulator mode, simulated inputs) in
// the order they arrived. It is closed by Close. Retained commands never
// appear (they are stale) and oversized ones are refused before they get here.
func (c *Client) Incoming() <-chan Message { return c.incoming }

// Topics returns the room's topics.
func (c *Client) Topics() Topics { return c.t }

// Connected reports whether a connection to the broker is up and usable.
func (c *Client) Connected() bool {
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	select {
	case <-lost:
		return false
	default:
		return c.cli.IsConnectionOpen()
	}
}

// Publish queues r durably in the outbox for {base}/{room}/events and, for
// an alert-lifecycle record, a second entry for {base}/{room}/alerts. It
// returns once the entries are on disk; the sender publishes them in order.
// An error wrapping outbox.ErrFull means the record could not be queued:
// the caller must raise a system fault.
func (c *Client) Publish(r controller.Record) error {
	if c.isClosed() {
		return fmt.Errorf("publish %s record %d: %w", r.Type, r.Seq, ErrClosed)
	}
	payload := EncodeRecord(c.t.Room, r)
	topics := []string{c.t.Events()}
	if r.Type.IsAlert() {
		topics = append(topics, c.t.Alerts())
	}
	defer c.kick(c.kickOutbox)
	for _, topic := range topics {
		if _, err := c.opts.Outbox.Append(topic, payload, false); err != nil {
			return fmt.Errorf("queue %s record %d for %s: %w", r.Type, r.Seq, topic, err)
		}
	}
	return nil
}

// PublishState sets the retained state payload (see EncodeState). Only the
// newest payload is published; it is published again after every reconnect.
func (c *Client) PublishState(payload []byte) { c.setSlot(c.state, payload) }

// PublishSimOutputs sets the retained sim/outputs payload. It does nothing
// unless Options.SimMode is set.
func (c *Client) PublishSimOutputs(payload []byte) {
	if c.opts.SimMode {
		c.setSlot(c.sim, payload)
	}
}

// Reply queues a reply payload (see EncodeReply, EncodeRefusal) for
// {base}/{room}/cmd/reply, QoS 1, and returns at once. A reply that cannot
// be published within a minute (no connection) is dropped with a warning:
// the requester retries with the same request_id and gets it from Replies.
func (c *Client) Reply(requestID string, payload []byte) error {
	if c.isClosed() {
		return fmt.Errorf("reply to request %q: %w", requestID, ErrClosed)
	}
	select {
	case c.replies <- pendingReply{requestID: requestID, payload: bytes.Clone(payload), queued: time.Now()}:
		return nil
	default:
		return fmt.Errorf("reply to request %q: %w", requestID, ErrReplyQueueFull)
	}
}

// Flush waits until the outbox is empty (every entry acknowledged by the
// broker) or ctx is done.
func (c *Client) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		ch := c.progress
		c.mu.Unlock()
		n := c.opts.Outbox.Len()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("flush mqtt outbox: %d entries unacknowledged: %w", n, ctx.Err())
		}
	}
}

// Close publishes what it can of the outbox and then "offline" on
// availability (retained), both bounded by ctx (the offline publish by 2s
// at most if ctx has no deadline), and disconnects. What is left in the
// outbox stays on disk for the next run. Incoming is closed. Close does not
// close the outbox. Calling it again returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()

	var errs []error
	if c.Connected() {
		if err := c.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(c.stop)
	c.wg.Wait()

	if c.Connected() {
		wctx, cancel := context.WithTimeout(ctx, closeWait)
		tok := c.cli.Publish(c.t.Availability(), 1, true, []byte(Offline))
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				errs = append(errs, fmt.Errorf("publish offline on %s: %w", c.t.Availability(), err))
			}
		case <-wctx.Done():
			errs = append(errs, fmt.Errorf("publish offline on %s: %w", c.t.Availability(), wctx.Err()))
		}
		cancel()
	}
	c.cli.Disconnect(250)

	c.inMu.Lock()
	c.inClosed = true
	close(c.incoming)
	c.inMu.Unlock()
	return errors.Join(errs...)
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Client) kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *Client) setSlot(s *slot, payload []byte) {
	c.mu.Lock()
	s.payload = bytes.Clone(payload)
	s.version++
	c.mu.Unlock()
	c.kick(c.kickRetained)
}

// connectLoop keeps the client connected for its whole life: it connects,
// retrying with exponential backoff up to MaxReconnectInterval, marks the
// connection usable once paho has resent its in-flight messages (the
// connect token completes after that), restores the subscriptions, and
// starts over when the connection is lost.
func (c *Client) connectLoop() {
	defer c.wg.Done()
	delay := time.Second
	for {
		tok := c.cli.Connect()
		select {
		case <-tok.Done():
		case <-c.stop:
			return
		}
		if err := tok.Error(); err != nil {
			c.log.Warn("connect to broker failed", slog.String("broker", c.opts.Broker),
				slog.Any("error", err), slog.Duration("retry_in", delay))
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-c.stop:
				timer.Stop()
				return
			}
			delay = min(delay*2, c.opts.MaxReconnectInterval)
			continue
		}
		delay = time.Second
		lost := c.markUp()
		c.subscribe(lost)
		select {
		case <-lost:
		case <-c.stop:
			return
		}
	}
}

// markUp records a new usable connection and returns the channel closed
// when it is lost.
func (c *Client) markUp() <-chan struct{} {
	c.mu.Lock()
	c.epoch++
	epoch := c.epoch
	lost := make(chan struct{})
	c.lost = lost
	close(c.up)
	c.up = make(chan struct{})
	c.mu.Unlock()
	c.log.Info("connected to broker", slog.String("broker", c.opts.Broker), slog.Uint64("connection", epoch))
	c.kick(c.kickRetained)
	c.kick(c.kickOutbox)
	return lost
}

// subscribe restores the subscriptions on a new connection: the broker may
// have lost the session.
func (c *Client) subscribe(lost <-chan struct{}) {
	filters := map[string]byte{c.t.Command(): 1}
	if c.opts.SimMode {
		filters[c.t.SimSet()] = 1
	}
	tok := c.cli.SubscribeMultiple(filters, c.handle)
	timer := time.NewTimer(c.opts.PublishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-timer.C:
		c.log.Error("subscribe: no SUBACK in time; commands may not arrive until the next connection", slog.Duration("timeout", c.opts.PublishTimeout))
		return
	case <-lost:
		return
	case <-c.stop:
		return
	}
	if err := tok.Error(); err != nil {
		c.log.Error("subscribe failed; commands will not arrive until the next connection", slog.Any("error", err))
		return
	}
	refused := false
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code >= 0x80 {
			refused = true
			c.log.Error("broker refused subscription; check the ACL", slog.String("topic", topic), slog.Int("code", int(code)))
		}
	}
	if !refused {
		c.kick(c.subscribed)
	}
}

func (c *Client) onLost(_ mqtt.Client, err error) {
	c.mu.Lock()
	select {
	case <-c.lost:
	default:
		close(c.lost)
	}
	c.mu.Unlock()
	c.log.Warn("connection to broker lost", slog.Any("error", err))
}

// waitConnected waits until a connection is usable and returns a channel
// closed when it is lost and its number, or false when the client stops.
func (c *Client) waitConnected() (<-chan struct{}, uint64, bool) {
	for {
		c.mu.Lock()
		up, lost, epoch := c.up, c.lost, c.epoch
		c.mu.Unlock()
		select {
		case <-lost:
		default:
			return lost, epoch, true
		}
		select {
		case <-up:
		case <-c.stop:
			return nil, 0, false
		}
	}
}

// pause waits retryInterval, or less if a new connection comes up; false
// when the client stops.
func (c *Client) pause() bool {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	timer := time.NewTimer(retryInterval)
	defer timer.Stop()
	select {
	case <-up:
	case <-timer.C:
	case <-c.stop:
		return false
	}
	return true
}

// publish publishes with QoS 1 and waits for the PUBACK, the loss of the
// connection, PublishTimeout or stop, whichever comes first.
func (c *Client) publish(topic string, payload []byte, retained bool, lost <-chan struct{}) error {
	tok := c.cli.Publish(topic, 1, retained, payload)
	timer := time.NewTimer(c.opts.PublishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-lost:
		return errConnLost
	case <-timer.C:
		return errPublishTimeout
	case <-c.stop:
		return errStopping
	}
}

func (c *Client) signalProgress() {
	c.mu.Lock()
	close(c.progress)
	c.progress = make(chan struct{})
	c.mu.Unlock()
}

// runOutbox publishes the outbox in order, one entry at a time, acking each
// on its PUBACK. On any failure it starts over from the first unacknowledged
// entry once connected again; an entry may thus be published twice.
func (c *Client) runOutbox() {
	defer c.wg.Done()
	for {
		pending := c.opts.Outbox.Pending()
		if len(pending) == 0 {
			c.signalProgress()
			select {
			case <-c.kickOutbox:
				continue
			case <-c.stop:
				return
			}
		}
		lost, _, ok := c.waitConnected()
		if !ok {
			return
		}
		for _, e := range pending {
			if err := c.publish(e.Topic, e.Payload, e.Retained, lost); err != nil {
				if errors.Is(err, errStopping) {
					return
				}
				c.log.Warn("outbox publish failed; will resend from the first unacknowledged entry",
					slog.String("topic", e.Topic), slog.Uint64("entry", e.ID), slog.Any("error", err))
				if !c.pause() {
					return
				}
				break
			}
			if err := c.opts.Outbox.Ack(e.ID); err != nil {
				c.log.Error("outbox ack failed; the entry will be published again",
					slog.Uint64("entry", e.ID), slog.Any("error", err))
				if !c.pause() {
					return
				}
				break
			}
			c.signalProgress()
		}
	}
}

// runRetained publishes availability, state and sim outputs whenever they
// change and after every reconnect.
func (c *Client) runRetained() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kickRetained:
		case <-c.stop:
			return
		}
		for {
			lost, epoch, ok := c.waitConnected()
			if !ok {
				return
			}
			failed := false
			for _, s := range []*slot{c.availability, c.state, c.sim} {
				c.mu.Lock()
				due := s.version != 0 && (s.version != s.sentVer || s.sentEpoch != epoch)
				payload, version := s.payload, s.version
				c.mu.Unlock()
				if !due {
					continue
				}
				if err := c.publish(s.topic, payload, true, lost); err != nil {
					if errors.Is(err, errStopping) {
						return
					}
					c.log.Warn("retained publish failed; will retry", slog.String("topic", s.topic), slog.Any("error", err))
					failed = true
					break
				}
				c.mu.Lock()
				s.sentVer, s.sentEpoch = version, epoch
				c.mu.Unlock()
			}
			if !failed {
				break
			}
			if !c.pause() {
				return
			}
		}
	}
}

// runReplies publishes queued replies in order.
func (c *Client) runReplies() {
	defer c.wg.Done()
	for {
		var r pendingReply
		select {
		case r = <-c.replies:
		case <-c.stop:
			return
		}
		for {
			if time.Since(r.queued) > replyTTL {
				c.log.Warn("reply dropped: no connection to publish it", slog.String("request_id", r.requestID))
				break
			}
			lost, _, ok := c.waitConnected()
			if !ok {
				return
			}
			err := c.publish(c.t.Reply(), r.payload, false, lost)
			if err == nil {
				break
			}
			if errors.Is(err, errStopping) {
				return
			}
			c.log.Warn("reply publish failed; will retry", slog.String("request_id", r.requestID), slog.Any("error", err))
			if !c.pause() {
				return
			}
		}
	}
}

// handle receives every inbound message. It never blocks: it copies the
// payload into Incoming, or refuses the command with busy when Incoming is full.
func (c *Client) handle(_ mqtt.Client, m mqtt.Message) {
	topic := m.Topic()
	var kind MessageKind
	switch {
	case topic == c.t.Command():
		kind = KindCommand
	case c.opts.SimMode && topic == c.t.SimSet():
		kind = KindSimSet
	default:
		c.log.Warn("message on an unexpected topic ignored", slog.String("topic", topic))
		return
	}
	payload := m.Payload()
	if kind == KindCommand && m.Retained() {
		c.log.Warn("retained command ignored: a command must not be retained; clear it on the broker",
			slog.String("topic", topic), slog.String("request_id", PeekRequestID(payload, c.opts.MaxPayload)))
		return
	}
	if kind == KindCommand && len(payload) > c.opts.MaxPayload {
		c.log.Warn("oversized command refused", slog.Int("bytes", len(payload)), slog.Int("limit", c.opts.MaxPayload))
		c.refuse(&CommandError{Code: CodeBadRequest,
			Message: fmt.Sprintf("command is %d bytes, above the limit of %d", len(payload), c.opts.MaxPayload)})
		return
	}
	msg := Message{Kind: kind, Topic: topic, Payload: bytes.Clone(payload)}
	c.inMu.RLock()
	defer c.inMu.RUnlock()
	if c.inClosed {
		return
	}
	select {
	case c.incoming <- msg:
		return
	default:
	}
	if kind != KindCommand {
		c.log.Warn("simulated input dropped: incoming queue full")
		return
	}
	id := PeekRequestID(payload, c.opts.MaxPayload)
	c.log.Warn("command refused: incoming queue full", slog.String("request_id", id))
	c.refuse(&CommandError{RequestID: id, Code: CodeBusy, Message: "roomd is busy; the command was not applied, send it again"})
}

func (c *Client) refuse(e *CommandError) {
	if err := c.Reply(e.RequestID, EncodeRefusal(e)); err != nil {
		c.log.Error("refusal not sent", slog.String("request_id", e.RequestID), slog.String("code", string(e.Code)), slog.Any("error", err))
	}
}

// abandon stops the client as a crash would: no flush, no offline
// message, Incoming left open. Tests use it to simulate roomd dying.
func (c *Client) abandon() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	c.cli.Disconnect(0)
}
