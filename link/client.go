package link

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/mqttconn"
)

// Defaults of Options.
const (
	DefaultKeepalive      = 5 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxReconnectInterval caps the reconnect backoff (1 s,
	// doubling). A room's alerts wait for its next attempt once the broker
	// is back, so the cap is short: one connection attempt per room every
	// 5 s during a long outage is nothing for a broker on the site's LAN.
	DefaultMaxReconnectInterval = 5 * time.Second
	DefaultPublishTimeout       = 10 * time.Second
	// closeWait bounds the offline publish in Close when ctx has no sooner deadline.
	closeWait = 2 * time.Second
)

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
	// MaxReconnectInterval caps the reconnect backoff (default 5s).
	MaxReconnectInterval time.Duration
	// Topics names the room's topics. Required.
	Topics contract.Topics
	// MaxPayload is the largest command accepted (default
	// DefaultMaxCommand); larger ones are refused with bad_request.
	MaxPayload int
	// SimMode subscribes to sim/set.
	SimMode bool
	// Watch lists further topics (no wildcards) to subscribe to, at QoS 1;
	// their messages reach Handler as KindWatched (e.g. Home Assistant's
	// status topic).
	Watch []string
	// Handler receives every inbound message, on the MQTT client's own
	// goroutine, in arrival order. It must not block. Required.
	Handler func(Message)
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
	KindCommand MessageKind = iota + 1 // {base}/{room}/cmd or cmd/{operator}
	KindSimSet                         // {base}/{room}/sim/set (simulator mode only)
	KindWatched                        // a topic of Options.Watch
)

func (k MessageKind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindSimSet:
		return "sim_set"
	case KindWatched:
		return "watched"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Message is an inbound message, its payload copied out of the MQTT client.
type Message struct {
	Kind  MessageKind
	Topic string
	// Operator is the {operator} of cmd/{operator}; "" on the plain cmd topic.
	Operator string
	// OperatorTopic: the command came on cmd/{operator}, not on the plain
	// cmd topic (an empty level, cmd/, is an operator topic whose operator
	// is not an operator id).
	OperatorTopic bool
	Payload       []byte
	// Retained: the broker delivered a retained message (because roomd
	// subscribed after it was published).
	Retained bool
}

// Errors of the client.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("mqtt link closed")
	// ErrNotConnected is returned by Publish without a usable connection.
	ErrNotConnected = errors.New("not connected to the broker")
)

// Client is roomd's MQTT connection: it keeps a persistent session with the
// broker, restores the subscriptions on every connection, hands inbound
// messages to Options.Handler and publishes what the Publisher gives it.
// All methods are safe for concurrent use and none blocks on the network
// except Close.
type Client struct {
	opts Options
	t    contract.Topics
	log  *slog.Logger
	mo   *mqtt.ClientOptions
	cli  mqtt.Client // replaced for every new connection (connectLoop); read with paho()

	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	epoch   uint64        // connections made so far
	up      chan struct{} // closed and replaced when a connection comes up
	lost    chan struct{} // closed when the current connection is lost
	lastErr error         // why the last connection attempt failed

	// usable: the current connection's subscriptions are in place, so it
	// may publish (Conn).
	usable bool
	// subscribed receives a value after each successful SUBACK (tests wait on it).
	subscribed chan struct{}
}

// New checks opts, starts connecting in the background and returns at once:
// roomd runs whether or not the broker is reachable.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	t := opts.Topics
	c := &Client{
		opts:       opts,
		t:          t,
		log:        logger.With(slog.String("component", "mqtt"), slog.String("room", t.Room)),
		stop:       make(chan struct{}),
		up:         make(chan struct{}),
		lost:       make(chan struct{}),
		subscribed: make(chan struct{}, 1),
	}
	close(c.lost) // not connected yet

	mo := mqttconn.ClientOptions(mqttconn.Settings{
		Broker: opts.Broker, ClientID: opts.ClientID, Username: opts.Username, Password: opts.Password,
		TLS: opts.TLS, Keepalive: opts.Keepalive, ConnectTimeout: opts.ConnectTimeout, Dial: opts.Dial,
		// The broker keeps the room's session, and the commands queued for
		// it, across reconnects and restarts.
		CleanSession: false,
		// The client reconnects itself (connectLoop): paho's own reconnect
		// gives no signal once it has resent its in-flight messages, and
		// publishing before that races with the resend.
		Reconnect: mqttconn.ReconnectByCaller,
	}).
		// The journal, not paho, keeps what must survive: paho's stores
		// hand the same packet to its resend on reconnect (which sets the DUP
		// flag) and to the writer, a data race, and its file store neither
		// fsyncs nor survives I/O errors. With a store that keeps nothing,
		// paho resends nothing; the Publisher starts again from the journal's
		// acknowledgement position after each connect instead.
		SetStore(noStore{}).
		SetBinaryWill(t.Availability(), []byte(contract.Offline), 1, true).
		SetDefaultPublishHandler(c.handle).
		SetConnectionLostHandler(c.onLost)
	c.mo = mo
	c.cli = mqtt.NewClient(mo)

	c.wg.Add(1)
	go c.connectLoop()
	return c, nil
}

func (o *Options) check() error {
	if err := mqttconn.CheckBrokerURL(o.Broker); err != nil {
		return err
	}
	if o.ClientID == "" {
		return errors.New("mqtt client id is empty; it must be stable across restarts")
	}
	if len(o.ClientID) > 65535 {
		return fmt.Errorf("mqtt client id is %d bytes, above 65535", len(o.ClientID))
	}
	if _, err := contract.NewTopics(o.Topics.Base, o.Topics.Room); err != nil || o.Topics.Base == "" {
		return fmt.Errorf("mqtt topics %+v: build them with NewTopics: %v", o.Topics, err)
	}
	if o.Handler == nil {
		return errors.New("mqtt link needs a handler for inbound messages")
	}
	for _, w := range o.Watch {
		if w == "" || strings.ContainsAny(w, "+#\x00") {
			return fmt.Errorf("mqtt watched topic %q: want a topic name without wildcards", w)
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"keepalive", &o.Keepalive, DefaultKeepalive},
		{"connect timeout", &o.ConnectTimeout, DefaultConnectTimeout},
		{"max reconnect interval", &o.MaxReconnectInterval, DefaultMaxReconnectInterval},
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
		o.MaxPayload = contract.DefaultMaxCommand
	}
	return nil
}

// Topics returns the room's topics.
func (c *Client) Topics() contract.Topics { return c.t }

// Connected reports whether a connection to the broker is up and usable.
func (c *Client) Connected() bool {
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	select {
	case <-lost:
		return false
	default:
		c.mu.Lock()
		usable := c.usable
		c.mu.Unlock()
		return usable && c.paho().IsConnectionOpen()
	}
}

// LastError returns why the last connection attempt failed, or nil.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Conn waits for nothing: it returns the current connection's number and a
// channel closed when it is lost, and ok false when there is none (then up
// is closed when one comes).
func (c *Client) Conn() (epoch uint64, lost <-chan struct{}, up <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.lost:
		return 0, nil, c.up, false
	default:
		if !c.usable {
			return 0, nil, c.up, false
		}
		return c.epoch, c.lost, c.up, true
	}
}

// Publish starts a QoS 1 publish on connection epoch (as Conn returned it)
// and returns its token; it does not wait.
//
// Unless epoch is the current, usable connection it fails at once with
// ErrNotConnected instead of handing the message to paho: a message meant
// for a lost connection must not go out on the next one, ahead of what the
// Publisher sends again from the journal there, out of order (the head of
// the window failed on the old connection while what followed it went out
// on the new one).
func (c *Client) Publish(epoch uint64, topic string, payload []byte, retained bool) mqtt.Token {
	cli, ok := c.current(epoch)
	if !ok {
		return failedToken{ErrNotConnected}
	}
	return cli.Publish(topic, 1, retained, payload)
}

// current returns the paho client of connection epoch, and false unless
// that connection is the current one, usable and not lost.
func (c *Client) current(epoch uint64) (mqtt.Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.lost:
		return nil, false
	default:
	}
	if !c.usable || c.epoch != epoch {
		return nil, false
	}
	return c.cli, true
}

// Subscribed returns a channel that receives a value after each successful
// SUBACK (the broker then sends the retained messages of the topics).
// Tests in this package read it too: one reader at a time.
func (c *Client) Subscribed() <-chan struct{} { return c.subscribed }

// paho returns the paho client of the current connection.
func (c *Client) paho() mqtt.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cli
}

// failedToken is a publish that failed before it began.
type failedToken struct{ err error }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (t failedToken) Wait() bool                     { return true }
func (t failedToken) WaitTimeout(time.Duration) bool { return true }
func (t failedToken) Done() <-chan struct{}          { return closedChan }
func (t failedToken) Error() error                   { return t.err }

// Drop ends connection epoch as if it had been lost, so that connectLoop
// connects again: for a broker that stopped acknowledging. A later
// connection is left alone: what failed on an older one says nothing of it.
func (c *Client) Drop(epoch uint64, reason error) {
	c.mu.Lock()
	if c.epoch != epoch {
		c.mu.Unlock()
		return
	}
	select {
	case <-c.lost:
		c.mu.Unlock()
		return
	default:
		close(c.lost)
	}
	cli := c.cli
	c.mu.Unlock()
	c.log.Warn("dropping the connection to the broker; connecting again", slog.Any("reason", reason), slog.Uint64("connection", epoch))
	cli.Disconnect(0)
}

// Close publishes "offline" on availability (retained), bounded by ctx (and
// by 2s at most if ctx has no deadline), and disconnects. Calling it again
// returns nil. The Publisher must be stopped first.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()

	var err error
	if c.Connected() {
		wctx, cancel := context.WithTimeout(ctx, closeWait)
		tok := c.paho().Publish(c.t.Availability(), 1, true, []byte(contract.Offline))
		select {
		case <-tok.Done():
			if terr := tok.Error(); terr != nil {
				err = fmt.Errorf("publish offline on %s: %w", c.t.Availability(), terr)
			}
		case <-wctx.Done():
			err = fmt.Errorf("publish offline on %s: %w", c.t.Availability(), wctx.Err())
		}
		cancel()
	}
	c.paho().Disconnect(250)
	return err
}

// Abandon stops the client as a crash would: no offline message (the broker
// publishes the Last Will). Tests use it to simulate roomd dying.
func (c *Client) Abandon() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	c.paho().Disconnect(0)
}

// connectLoop keeps the client connected for its whole life: it connects,
// retrying with exponential backoff up to MaxReconnectInterval, restores the
// subscriptions, and starts over when the connection is lost.
func (c *Client) connectLoop() {
	defer c.wg.Done()
	delay := time.Second
	for n := 0; ; n++ {
		if n > 0 {
			// A new paho client for every attempt: the old one may still
			// hold publishes it had queued for the lost connection, and
			// would send them on the new one ahead of what the Publisher
			// sends again from the journal, out of order.
			old := c.paho()
			old.Disconnect(0)
			c.mu.Lock()
			c.cli = mqtt.NewClient(c.mo)
			c.mu.Unlock()
		}
		tok := c.paho().Connect()
		select {
		case <-tok.Done():
		case <-c.stop:
			return
		}
		if err := tok.Error(); err != nil {
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
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
		// Subscribe before anything is published: a consumer that sees
		// the room online (or its first record) and sends a command at
		// once must find the subscription in place, on the room's very
		// first connection too.
		lost := c.markConnected()
		ok := c.subscribe(lost)
		c.markUsable(lost)
		// A refused or failed subscription leaves the room deaf to its
		// commands on a connection that is otherwise up: it is tried again
		// on this connection, with backoff, until it takes. The broker may
		// refuse it only for a while (a packet identifier still held by
		// the session it resumed), or until its ACL is mended.
		for retry := time.Second; !ok; retry = min(retry*2, c.opts.MaxReconnectInterval) {
			timer := time.NewTimer(retry)
			select {
			case <-timer.C:
			case <-lost:
				timer.Stop()
			case <-c.stop:
				timer.Stop()
				return
			}
			select {
			case <-lost:
				ok = true // the next connection subscribes again
			default:
				c.log.Warn("subscribing again", slog.Duration("after", retry))
				ok = c.subscribe(lost)
			}
		}
		select {
		case <-lost:
		case <-c.stop:
			return
		}
	}
}

// markConnected records a new connection, not yet usable (Conn says none
// until markUsable), and returns the channel closed when it is lost.
func (c *Client) markConnected() <-chan struct{} {
	c.mu.Lock()
	c.epoch++
	epoch := c.epoch
	lost := make(chan struct{})
	c.lost = lost
	c.usable = false
	c.lastErr = nil
	c.mu.Unlock()
	c.log.Info("connected to broker", slog.String("broker", c.opts.Broker), slog.Uint64("connection", epoch))
	return lost
}

// markUsable makes the connection whose loss lost announces usable, once
// its subscriptions are in place (or given up on), and wakes Conn's
// waiters; nothing if it was lost meanwhile.
func (c *Client) markUsable(lost <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-lost:
		return
	default:
	}
	c.usable = true
	close(c.up)
	c.up = make(chan struct{})
}

// subscribe restores the subscriptions on a new connection: the broker may
// have lost the session. It reports whether the broker granted them all;
// false also when the connection was lost or the client stopped meanwhile.
func (c *Client) subscribe(lost <-chan struct{}) bool {
	filters := map[string]byte{c.t.Command(): 1, c.t.OperatorCommands(): 1}
	if c.opts.SimMode {
		filters[c.t.SimSet()] = 1
	}
	for _, w := range c.opts.Watch {
		filters[w] = 1
	}
	tok := c.paho().SubscribeMultiple(filters, c.handle)
	timer := time.NewTimer(c.opts.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-timer.C:
		c.log.Error("subscribe: no SUBACK in time; commands do not arrive until it is granted", slog.Duration("timeout", c.opts.ConnectTimeout))
		return false
	case <-lost:
		return false
	case <-c.stop:
		return false
	}
	if err := tok.Error(); err != nil {
		c.log.Error("subscribe failed; commands do not arrive until it is granted", slog.Any("error", err))
		return false
	}
	refused := false
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code >= 0x80 {
			refused = true
			c.log.Error("broker refused subscription; commands do not arrive until it is granted: check the ACL", slog.String("topic", topic), slog.Int("code", int(code)))
		}
	}
	if refused {
		return false
	}
	select {
	case c.subscribed <- struct{}{}:
	default:
	}
	return true
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

// handle receives every inbound message and hands a copy to the handler.
func (c *Client) handle(_ mqtt.Client, m mqtt.Message) {
	topic := m.Topic()
	msg := Message{Topic: topic, Retained: m.Retained()}
	switch {
	case topic == c.t.Command():
		msg.Kind = KindCommand
	case strings.HasPrefix(topic, c.t.Command()+"/"):
		msg.Kind = KindCommand
		msg.Operator = strings.TrimPrefix(topic, c.t.Command()+"/")
		msg.OperatorTopic = true
	case c.opts.SimMode && topic == c.t.SimSet():
		msg.Kind = KindSimSet
	case slices.Contains(c.opts.Watch, topic):
		msg.Kind = KindWatched
	default:
		c.log.Warn("message on an unexpected topic ignored", slog.String("topic", topic))
		return
	}
	msg.Payload = bytes.Clone(m.Payload())
	c.opts.Handler(msg)
}
