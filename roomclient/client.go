package roomclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/mqttconn"
	"github.com/roomd/roomd/wallclock"
)

// Defaults of Options.
const (
	DefaultKeepalive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 10 * time.Second
	DefaultCommandLife          = time.Minute
	DefaultRetryEvery           = 2 * time.Second
	DefaultReplayDelay          = time.Second
)

// Stream names a kind of topic of every room (or of Options.Rooms) that the
// client subscribes to. Combine them with |.
type Stream uint8

// The streams.
const (
	Events         Stream = 1 << iota // {base}/{room}/events: every record
	Alerts                            // {base}/{room}/alerts: the alert records again
	States                            // {base}/{room}/state (retained)
	Infos                             // {base}/{room}/info (retained)
	Availabilities                    // {base}/{room}/availability (retained)
	Replies                           // {base}/{room}/reply: replies to every console
	// RegistryStreams are what the room registry is built from.
	RegistryStreams = Infos | Availabilities | States
)

var streamSuffix = []struct {
	s      Stream
	suffix string
	kind   Kind
}{
	{Events, "events", KindEvent}, {Alerts, "alerts", KindAlert}, {States, "state", KindState},
	{Infos, "info", KindInfo}, {Availabilities, "availability", KindAvailability}, {Replies, "reply", KindReply},
}

// Kind says which topic a Message came from.
type Kind uint8

// The kinds of messages.
const (
	KindEvent        Kind = iota + 1 // events
	KindAlert                        // alerts
	KindState                        // state
	KindInfo                         // info
	KindAvailability                 // availability
	KindReply                        // reply
	KindOther                        // a topic subscribed with Subscribe
)

func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "events"
	case KindAlert:
		return "alerts"
	case KindState:
		return "state"
	case KindInfo:
		return "info"
	case KindAvailability:
		return "availability"
	case KindReply:
		return "reply"
	case KindOther:
		return "other"
	default:
		return "kind(?)"
	}
}

// Message is one message as the client received it, decoded by its kind.
// Exactly one of Event, State, Info, Reply and Availability is set for a
// readable message of the contract with a payload; Err says why a payload
// could not be read. An empty Payload is a retained topic being cleared.
type Message struct {
	Kind  Kind
	Room  string // "" for KindOther
	Topic string
	// Retained: the broker kept it (it may be old; a state's "at" says
	// when it was current).
	Retained bool
	// Arrived is when the client received it, taken before anything else
	// is done with it.
	Arrived time.Time
	Payload []byte

	Event        *contract.EventMessage // events, alerts
	State        *contract.StateMessage
	Info         *contract.InfoMessage
	Reply        *contract.ReplyMessage
	Availability Availability
	Err          error
}

// Record is a record delivered once (Options.OnRecord): the first copy of
// each (room, epoch, seq) seen on the events topic.
type Record struct {
	Room    string
	Arrived time.Time
	// Verdict is New, or Filled for a record that was missing (replayed,
	// or late).
	Verdict Verdict
	// NewEpoch: the first record of an epoch the room had not used: gap
	// detection starts afresh here; reconcile with the room's state.
	NewEpoch bool
	contract.EventMessage
}

// Loss is a gap the client could not fill: the room no longer holds those
// records (replay_unavailable: compacted after its retention, lost with its
// journal, an epoch it does not know), or replayed without them.
type Loss struct {
	Gap
	Reason string
}

// Options configure Dial.
type Options struct {
	// Broker is the broker URL: tcp://host:1883, or ssl://, tls://,
	// mqtts:// for TLS (also mqtt://, ws://, wss://).
	Broker string
	// ClientID identifies the session. With a persistent session (the
	// default) it must be the same at every start, or the broker keeps
	// queueing for a session nobody resumes. Empty means Username. Under
	// the shipped broker config (use_username_as_clientid) the broker uses
	// the username whatever is sent: one identity is one session, so run
	// one Client per identity, in one process. A second connection with the
	// same username (another process, visitctl run as that identity) takes
	// the session over and disconnects the first.
	ClientID string
	// Username and Password authenticate the client.
	Username, Password string
	// TLS is used for ssl://, tls://, mqtts:// and wss://.
	TLS *tls.Config
	// CleanSession: a session that ends with the connection (for one-shot
	// tools). The default, a persistent session, has the broker queue
	// every QoS 1 message for the client while it is away.
	CleanSession bool
	// Base is the topic base ("" means visitrooms).
	Base string
	// Rooms limits the streams to these rooms; nil means every room ({base}/+/...).
	Rooms []string
	// Streams are the topics subscribed, at QoS 1.
	Streams Stream
	// Operator, if set, sends commands on {base}/{room}/cmd/{Operator}; the
	// room records it as "by". Under the shipped ACL it must be the
	// username. Empty sends on {base}/{room}/cmd, the booking system's
	// anonymous topic.
	Operator string
	// Keepalive (default 30s), ConnectTimeout (default 10s).
	Keepalive, ConnectTimeout time.Duration
	// NoReconnect: do not reconnect after the connection is lost (one-shot
	// tools). By default the client reconnects with a backoff up to
	// MaxReconnectInterval (default 10s) and subscribes again.
	NoReconnect          bool
	MaxReconnectInterval time.Duration
	// CommandLife is how long a command may take to reach the room: its
	// expires_at is now plus CommandLife (default 1m, at most 1h, which is
	// what a room accepts).
	CommandLife time.Duration
	// RetryEvery is how often Send publishes a command again, with the
	// same request id, while no reply came (default 2s).
	RetryEvery time.Duration
	// RequestPrefix starts the request ids the client makes (default the
	// client id, cut to 40 characters).
	RequestPrefix string

	// OnMessage receives every message of the streams, in arrival order,
	// on the client's receiving goroutine: it must not block (hand the
	// message to a channel).
	OnMessage func(Message)
	// OnRecord, if set, receives every record of the events topic once,
	// deduplicated by (room, epoch, seq), on the receiving goroutine. The
	// client subscribes to events (and to replies and states) for it, finds
	// the gaps and asks the room to replay them after ReplayDelay
	// (default 1s). A gap it cannot fill goes to OnLoss.
	OnRecord    func(Record)
	OnLoss      func(Loss)
	ReplayDelay time.Duration
	// Resume gives, per room, where the consumer stood (the Marks it
	// kept): records after it that are not redelivered are replayed.
	Resume map[string]Mark

	// OnConnect is called after every reconnection, once the
	// subscriptions are made again; OnLost when the connection is lost.
	OnConnect func()
	OnLost    func(error)

	// Now is the client's clock (expires_at, arrival times); nil: wallclock.Now.
	Now func() time.Time
	// Logger receives the client's log lines; nil discards them.
	Logger *slog.Logger
	// Dial, if set, opens the connection instead of dialling Broker (an
	// in-process broker, a test proxy).
	Dial func(ctx context.Context) (net.Conn, error)
	// Will, if set, is the client's Last Will (QoS 1): what the broker
	// publishes when the client dies without saying goodbye.
	Will *Will
}

// Will is a Last Will.
type Will struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// ConnectError is a failure to connect to the broker, or a refusal by it
// (credentials, TLS).
type ConnectError struct {
	Broker string
	// Username is the identity that tried ("" anonymous).
	Username string
	Err      error
}

func (e *ConnectError) Error() string {
	if e.LoginRefused() {
		who := "user " + e.Username
		if e.Username == "" {
			who = "an anonymous client"
		}
		return fmt.Sprintf("connect to broker %s: the broker refused the login of %s (%v): an unknown user or a wrong password (mosquitto_passwd on the broker; the password file here)",
			e.Broker, who, e.Err)
	}
	return fmt.Sprintf("connect to broker %s: %v", e.Broker, e.Err)
}
func (e *ConnectError) Unwrap() error { return e.Err }

// LoginRefused reports whether the broker refused the user name or the
// password (CONNACK 4 or 5), as opposed to not being reached.
func (e *ConnectError) LoginRefused() bool {
	return errors.Is(e.Err, packets.ErrorRefusedNotAuthorised) || errors.Is(e.Err, packets.ErrorRefusedBadUsernameOrPassword)
}

// SubscribeError is a subscription the broker refused: the identity is
// not allowed to read the filter (its ACL).
type SubscribeError struct {
	Filter, Username string
	// Refused lists every filter refused in the same request (Filter is
	// the first of them); the others were granted.
	Refused []string
}

func (e *SubscribeError) Error() string {
	who := e.Username
	if who == "" {
		who = "an anonymous client"
	}
	return fmt.Sprintf("not allowed to read %s as %s: the broker refused the subscription (its ACL: give %s a role in the site file, docs/security.md)",
		strings.Join(e.Refused, ", "), who, who)
}

// ErrClosed is returned by a Client's methods after Close.
var ErrClosed = errors.New("roomclient: client closed")

// Client is a connection to the broker that speaks the rooms' contract. Its
// methods are safe for concurrent use.
type Client struct {
	o    Options
	base string
	cli  mqtt.Client
	log  *slog.Logger
	now  func() time.Time

	connects atomic.Int64
	closed   atomic.Bool

	// raw maps the filters of Subscribe to their handlers; replaced, never
	// changed, so that the receiving goroutine reads it without a lock.
	raw atomic.Pointer[map[string]func(Message)]

	mu       sync.Mutex
	filters  map[string]bool // every filter subscribed, restored on reconnection
	pending  map[string]chan *Reply
	tracker  *Tracker
	registry *Registry
	replyFor map[string]bool // rooms whose replies the client receives

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// Dial connects to the broker and subscribes to the options' streams; it
// returns once the broker granted every subscription, or fails with a
// *ConnectError (broker unreachable or refusing), a *SubscribeError, or
// ctx's error.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	c := &Client{o: o, base: o.Base, now: o.Now, log: o.Logger, filters: map[string]bool{},
		pending: map[string]chan *Reply{}, replyFor: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if o.Streams&RegistryStreams != 0 {
		c.registry = NewRegistry()
	}
	if o.OnRecord != nil {
		c.tracker = NewTracker()
		for room, m := range o.Resume {
			c.tracker.Resume(room, m)
		}
	}
	for _, f := range c.streamFilters() {
		c.filters[f] = true
	}
	if o.Streams&Replies != 0 {
		for _, r := range c.roomList() {
			c.replyFor[r] = true
		}
	}

	reconnect := mqttconn.ReconnectByPaho
	if o.NoReconnect {
		reconnect = mqttconn.ReconnectByCaller
	}
	mo := mqttconn.ClientOptions(mqttconn.Settings{
		Broker: o.Broker, ClientID: o.ClientID, Username: o.Username, Password: o.Password,
		TLS: o.TLS, Keepalive: o.Keepalive, ConnectTimeout: o.ConnectTimeout, Dial: o.Dial,
		CleanSession: o.CleanSession, Reconnect: reconnect, MaxReconnectInterval: o.MaxReconnectInterval,
	}).
		SetDefaultPublishHandler(c.handle).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onLost)
	if w := o.Will; w != nil {
		mo.SetBinaryWill(w.Topic, w.Payload, 1, w.Retained)
	}
	c.cli = mqtt.NewClient(mo)
	if err := c.wait(ctx, c.cli.Connect(), "connect"); err != nil {
		c.cli.Disconnect(0)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to broker %s: %w", o.Broker, ctx.Err())
		}
		return nil, &ConnectError{Broker: o.Broker, Username: o.Username, Err: err}
	}
	if err := c.subscribe(ctx, c.filterList()); err != nil {
		c.cli.Disconnect(0)
		return nil, err
	}
	if c.tracker != nil {
		c.wg.Add(1)
		go c.replayLoop()
		if len(o.Resume) > 0 {
			c.wake()
		}
	}
	return c, nil
}

func (o *Options) check() error {
	if err := mqttconn.CheckBrokerURL(o.Broker); err != nil {
		return fmt.Errorf("roomclient: %w", err)
	}
	if o.ClientID == "" {
		o.ClientID = o.Username
	}
	if o.ClientID == "" {
		if !o.CleanSession {
			return errors.New("roomclient: a persistent session needs a stable client id (Options.ClientID or Username)")
		}
		o.ClientID = NewRequestID("roomclient")
	}
	if o.Base == "" {
		o.Base = contract.DefaultBase
	}
	if err := contract.ValidateBase(o.Base); err != nil {
		return fmt.Errorf("roomclient: %w", err)
	}
	for _, r := range o.Rooms {
		if !contract.ValidRoom(r) {
			return fmt.Errorf("roomclient: room id %q: want 1 to 64 of [a-z0-9_-], starting with a letter or digit", r)
		}
	}
	if o.Operator != "" && !controller.ValidOperatorID(o.Operator) {
		return fmt.Errorf("roomclient: operator %q: want 1 to 64 of A-Z a-z 0-9 . _ : -, not on_site", o.Operator)
	}
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxReconnectInterval <= 0 {
		o.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if o.CommandLife <= 0 {
		o.CommandLife = DefaultCommandLife
	}
	if o.CommandLife > contract.MaxExpiresAhead {
		return fmt.Errorf("roomclient: CommandLife %s is above %s, the most a room accepts", o.CommandLife, contract.MaxExpiresAhead)
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = DefaultRetryEvery
	}
	if o.ReplayDelay <= 0 {
		o.ReplayDelay = DefaultReplayDelay
	}
	if o.RequestPrefix == "" {
		o.RequestPrefix = o.ClientID
	}
	if len(o.RequestPrefix) > 40 {
		o.RequestPrefix = o.RequestPrefix[:40]
	}
	if o.OnRecord != nil {
		o.Streams |= Events | Replies | States
	}
	if o.Now == nil {
		o.Now = wallclock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (c *Client) roomList() []string {
	if len(c.o.Rooms) == 0 {
		return []string{"+"}
	}
	return c.o.Rooms
}

func (c *Client) streamFilters() []string {
	var out []string
	for _, r := range c.roomList() {
		for _, s := range streamSuffix {
			if c.o.Streams&s.s != 0 {
				out = append(out, c.base+"/"+r+"/"+s.suffix)
			}
		}
	}
	return out
}

func (c *Client) filterList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.filters))
	for f := range c.filters {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Base returns the topic base.
func (c *Client) Base() string { return c.base }

// Topics returns the topics of room under the client's base.
func (c *Client) Topics(room string) (contract.Topics, error) {
	return contract.NewTopics(c.base, room)
}

// wait waits for tok, ctx or the connect timeout.
func (c *Client) wait(ctx context.Context, tok mqtt.Token, what string) error {
	t := time.NewTimer(c.o.ConnectTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: no answer from the broker within %s", what, c.o.ConnectTimeout)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// subscribe subscribes to filters at QoS 1 and checks the grants.
func (c *Client) subscribe(ctx context.Context, filters []string) error {
	if len(filters) == 0 {
		return nil
	}
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.cli.SubscribeMultiple(m, nil)
	if err := c.wait(ctx, tok, "subscribe to "+strings.Join(filters, ", ")); err != nil {
		return err
	}
	var refused []string
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code >= 0x80 {
			refused = append(refused, topic)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return &SubscribeError{Filter: refused[0], Username: c.o.Username, Refused: refused}
	}
	return nil
}

// resubscribeEvery is how often a refused or failed resubscription is tried
// again on the same connection.
var resubscribeEvery = time.Second

func (c *Client) onConnect(mqtt.Client) {
	if c.connects.Add(1) == 1 {
		return // Dial's own connection: Dial subscribes
	}
	// Connected but not subscribed is deaf: the client is not "connected
	// again" (no OnConnect) until the broker has granted every stream.
	// paho runs this on a goroutine of its own, so waiting here is fine.
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.o.ConnectTimeout)
		err := c.subscribe(ctx, c.filterList())
		cancel()
		if err == nil {
			break
		}
		c.log.Error("subscribe again after reconnecting failed; nothing is received until it succeeds",
			"attempt", attempt, "err", err)
		select {
		case <-c.stop:
			return
		case <-time.After(resubscribeEvery):
		}
		if !c.cli.IsConnectionOpen() {
			return // the next connection subscribes
		}
	}
	c.log.Info("connected to the broker again", "broker", c.o.Broker)
	c.wake()
	if c.o.OnConnect != nil {
		c.o.OnConnect()
	}
}

func (c *Client) onLost(_ mqtt.Client, err error) {
	c.log.Warn("connection to the broker lost", "err", err)
	if c.o.OnLost != nil {
		c.o.OnLost(err)
	}
}

// Connected reports whether the connection to the broker is up.
func (c *Client) Connected() bool { return c.cli.IsConnectionOpen() }

// Subscribe subscribes to filter, a topic outside the rooms' streams (for
// instance a probe), at QoS 1; h receives its messages (Kind KindOther,
// Arrived taken first) on the receiving goroutine and must not block. The
// subscription is made again after every reconnection.
func (c *Client) Subscribe(ctx context.Context, filter string, h func(Message)) error {
	return c.SubscribeMany(ctx, []string{filter}, h)
}

// SubscribeMany subscribes to several filters in one request, as Subscribe
// does for one. (One request also spares brokers that confuse the packet
// ids of a client's requests with those of the retained messages they are
// still delivering to it, as the embedded broker does.) A *SubscribeError
// names the filters refused; the others are granted.
func (c *Client) SubscribeMany(ctx context.Context, filters []string, h func(Message)) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.mu.Lock()
	raw := map[string]func(Message){}
	if old := c.raw.Load(); old != nil {
		for f, oh := range *old {
			raw[f] = oh
		}
	}
	for _, f := range filters {
		raw[f] = h
		c.filters[f] = true
	}
	c.raw.Store(&raw)
	c.mu.Unlock()
	return c.subscribe(ctx, filters)
}

// Publish publishes payload on topic at QoS 1 and waits for the broker's
// acknowledgement (or ctx, or the connect timeout). Under MQTT 3.1.1 a
// broker acknowledges a publish its ACL denies and drops it.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.wait(ctx, c.cli.Publish(topic, 1, retained, payload), "publish to "+topic)
}

// Close disconnects. Pending Sends end with ErrClosed.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	close(c.stop)
	c.wg.Wait()
	c.cli.Disconnect(250)
}

// handle receives every message (paho's default handler: no per-filter
// routes, so messages queued for a persistent session are never missed).
func (c *Client) handle(_ mqtt.Client, pm mqtt.Message) {
	arrived := c.now()
	m := Message{Topic: pm.Topic(), Retained: pm.Retained(), Arrived: arrived, Payload: pm.Payload()}
	if h := c.rawHandler(m.Topic); h != nil {
		m.Kind = KindOther
		h(m)
		return
	}
	rest, ok := strings.CutPrefix(m.Topic, c.base+"/")
	if !ok {
		return
	}
	room, suffix, _ := strings.Cut(rest, "/")
	if !contract.ValidRoom(room) {
		return
	}
	m.Room = room
	for _, s := range streamSuffix {
		if s.suffix == suffix {
			m.Kind = s.kind
		}
	}
	if m.Kind == 0 {
		return
	}
	decode(&m)
	switch m.Kind {
	case KindReply:
		if m.Reply != nil {
			c.reply(room, m.Reply)
		}
	case KindInfo, KindAvailability, KindState:
		if c.registry != nil && m.Err == nil {
			c.mu.Lock()
			c.registry.Apply(m)
			c.mu.Unlock()
		}
	}
	if c.tracker != nil {
		c.track(m)
	}
	if c.o.OnMessage != nil && c.wants(m.Kind) {
		c.o.OnMessage(m)
	}
}

// wants reports whether kind is one of the streams asked for (replies to
// the client's own commands arrive without the Replies stream).
func (c *Client) wants(k Kind) bool {
	for _, s := range streamSuffix {
		if s.kind == k {
			return c.o.Streams&s.s != 0
		}
	}
	return true
}

func (c *Client) rawHandler(topic string) func(Message) {
	raw := c.raw.Load()
	if raw == nil {
		return nil
	}
	for f, h := range *raw {
		if matches(f, topic) {
			return h
		}
	}
	return nil
}

// matches reports whether topic matches the MQTT filter, without
// allocating (it runs for every message).
func matches(filter, topic string) bool {
	if filter == topic {
		return true
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// decode fills the typed field of m from its payload.
func decode(m *Message) {
	if len(m.Payload) == 0 {
		return
	}
	switch m.Kind {
	case KindEvent, KindAlert:
		var e contract.EventMessage
		if m.Err = json.Unmarshal(m.Payload, &e); m.Err == nil {
			m.Event = &e
		}
	case KindState:
		var s contract.StateMessage
		if m.Err = json.Unmarshal(m.Payload, &s); m.Err == nil {
			m.State = &s
		}
	case KindInfo:
		var i contract.InfoMessage
		if m.Err = json.Unmarshal(m.Payload, &i); m.Err == nil {
			m.Info = &i
		}
	case KindReply:
		var r contract.ReplyMessage
		if m.Err = json.Unmarshal(m.Payload, &r); m.Err == nil {
			m.Reply = &r
		}
	case KindAvailability:
		m.Availability = Availability(strings.TrimSpace(string(m.Payload)))
	}
	if m.Err != nil {
		m.Err = fmt.Errorf("decode %s of room %s: %w", m.Kind, m.Room, m.Err)
	}
}

// Rooms returns the rooms known from the registry streams (info,
// availability, state) at the client's clock, sorted by id; nil without
// those streams.
func (c *Client) Rooms() []Room {
	if c.registry == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registry.Rooms(c.now())
}

// Marks returns where the record consumer stands in every room (see
// Tracker.Marks); nil without OnRecord.
func (c *Client) Marks() map[string]Mark {
	if c.tracker == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracker.Marks()
}
