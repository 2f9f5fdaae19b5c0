// Package room assembles one visit room from its config: the device backend
// (GPIO or the simulator), the journal in the state directory (migrating an
// earlier layout on the first start), the MQTT connection, the publisher that
// follows the journal, the command edge, and the run loop. roomd run, the
// demo, the scenario player and roombench all build their rooms through Open,
// so they run the same code as a room on a Pi.
package room

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/device/gpio"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/journal/migrate"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/link/homeassistant"
	"github.com/roomd/roomd/mqttconn"
	"github.com/roomd/roomd/sim"
)

// JournalDir is the journal's directory inside the state directory.
const JournalDir = "journal"

// Queue sizes between the edge and the loop.
const (
	commandQueue = 256
	faultQueue   = 64
)

// Options configure Open beyond the config.
type Options struct {
	Config *configs.Config
	Logger *slog.Logger // nil: discard
	// Clock is the loop's time; nil means the system's. A compressed replay
	// passes a daemon.FastClock.
	Clock daemon.Clock
	// Notifier talks to systemd; nil: none.
	Notifier daemon.Notifier
	// Watchdog is the interval of the loop's watchdog pings; 0: none.
	Watchdog time.Duration
	// Dial, if set, replaces dialling the broker (an in-process broker).
	Dial func(ctx context.Context) (net.Conn, error)
	// Backend, if set, is used instead of opening the configured one (it is
	// closed with the room).
	Backend device.Backend
	// JournalFS, if set, is the journal's file system (fault injection).
	JournalFS journal.FS
	// PublishTimeout and FaultAfter tune the publisher (0: its defaults).
	PublishTimeout time.Duration
	FaultAfter     time.Duration
	// MinPlausible is the earliest believable wall clock time (0: the
	// daemon's default).
	MinPlausible time.Time
	// Version is roomd's version, for the info topic.
	Version string
	// NoBroker runs the room without MQTT: no connection, no publisher, no
	// edge. Commands go in through Send and what the room announces is read
	// from its journal. The scenario player uses it.
	NoBroker bool
}

// Room is an open room. Run it once; it closes everything when Run returns.
type Room struct {
	cfg     *configs.Config
	log     *slog.Logger
	o       Options
	backend device.Backend
	sim     *sim.Room
	j       *journal.Journal
	axis    *daemon.Axis
	client  *link.Client
	pub     *link.Publisher
	edge    *link.Edge
	cmds    chan controller.Command
	faults  chan controller.Fault
	closers []func()
	spec    device.Spec
	info    contract.InfoMessage
	topics  contract.Topics
	mirror  *simMirror
	// witness receives the room's own retained state, once, at start.
	witness chan contract.StateMessage

	abandoned atomic.Bool
}

// Open builds the room from o.Config: the backend, the journal (migrating an
// earlier layout of the state directory), the publisher, the edge and the
// MQTT connection, which starts connecting in the background.
func Open(o Options) (_ *Room, err error) {
	cfg := o.Config
	if cfg == nil {
		return nil, errors.New("open room: no config")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Room{cfg: cfg, log: log, o: o, cmds: make(chan controller.Command, commandQueue),
		faults: make(chan controller.Fault, faultQueue)}
	defer func() {
		if err != nil {
			r.closeAll()
		}
	}()
	fail := func(err error) (*Room, error) { return nil, fmt.Errorf("open room %s: %w", cfg.Room, err) }

	r.spec = DeviceSpec(cfg)
	if r.backend = o.Backend; r.backend == nil {
		if r.backend, r.sim, err = openBackend(cfg, log); err != nil {
			return fail(err)
		}
	} else if s, ok := o.Backend.(*sim.Room); ok {
		r.sim = s
	}
	r.closers = append(r.closers, func() {
		if err := r.backend.Close(); err != nil {
			log.Error("close device backend", "err", err)
		}
	})

	if r.j, err = openJournal(cfg, o, log); err != nil {
		return fail(err)
	}
	r.closers = append(r.closers, func() {
		if err := r.j.Close(); err != nil {
			log.Error("close journal", "err", err)
		}
	})
	clock := o.Clock
	if clock == nil {
		clock = daemon.SystemClock{}
	}
	min := o.MinPlausible
	if min.IsZero() {
		min = daemon.DefaultMinPlausible
	}
	r.axis = daemon.ResumeAxis(r.j, clock, min)
	if o.NoBroker {
		return r, nil
	}

	m := cfg.MQTT
	topics, err := contract.NewTopics(m.Base, cfg.Room)
	if err != nil {
		return fail(fmt.Errorf("mqtt topics: %w", err))
	}
	password := ""
	if m.PasswordFile != "" {
		if password, err = mqttconn.ReadPasswordFile(m.PasswordFile); err != nil {
			return fail(fmt.Errorf("mqtt: %w", err))
		}
	}
	var tlsConf *tls.Config
	if files := mqttconn.TLSFiles(m.TLS); !files.Empty() {
		if tlsConf, err = files.Config(); err != nil {
			return fail(fmt.Errorf("mqtt tls: %w", err))
		}
	}
	var client *link.Client
	r.pub, err = link.NewPublisher(link.PublisherOptions{
		Room: cfg.Room, Topics: topics, Journal: r.j, Conn: lazyConn{&client}, Now: r.axis.Now,
		Heartbeat: m.Heartbeat, PublishTimeout: o.PublishTimeout, FaultAfter: o.FaultAfter,
		ReplyWindow: cfg.Journal.Retention, Faults: r.fault, Logger: log,
	})
	if err != nil {
		return fail(err)
	}
	edge := link.EdgeOptions{
		Room: cfg.Room, Topics: topics, MaxPayload: m.MaxPayload, Now: r.axis.Now, Publisher: r.pub,
		Submit: r.submit, Faults: r.fault, Authorize: cfg.Commands.Authorize, Logger: log,
	}
	if r.sim != nil {
		s := r.sim
		edge.SimSet = func(p []byte) error {
			c, err := contract.DecodeSimControl(p)
			if err != nil {
				return err
			}
			return s.Apply(c)
		}
	}
	r.edge = link.NewEdge(edge)
	lo := link.Options{
		Broker: m.Broker, ClientID: m.ClientID, Username: m.Username, Password: password, TLS: tlsConf,
		Keepalive: m.Keepalive, ConnectTimeout: m.ConnectTimeout, Topics: topics,
		MaxPayload: m.MaxPayload, SimMode: r.sim != nil, Handler: r.edge.Handle, Dial: o.Dial,
	}
	if ha := cfg.HomeAssistant; ha.Enabled {
		lo.Watch, lo.Handler = homeAssistant(ha.DiscoveryPrefix, topics, o.Version, r.pub, r.edge.Handle, log)
	}
	r.witness = make(chan contract.StateMessage, 1)
	lo.Watch, lo.Handler = watchWitness(topics.State(), lo.Watch, lo.Handler, r.witness)
	client, err = link.New(lo, log)
	if err != nil {
		return fail(fmt.Errorf("mqtt client: %w", err))
	}
	r.client = client
	r.topics = topics
	if r.sim != nil {
		r.mirror = &simMirror{room: r.sim, pub: r.pub, topic: topics.SimOutputs()}
		go r.mirror.run()
	}
	r.info = newInfo(cfg, o.Version, r.spec, r.sim != nil)
	r.publishInfo(clock)
	return r, nil
}

// homeAssistant sets the room's retained Home Assistant discovery message
// and returns the topics to watch and the handler that publishes it again
// whenever Home Assistant announces itself online (it may have lost it).
func homeAssistant(prefix string, t contract.Topics, version string, pub *link.Publisher, next func(link.Message), log *slog.Logger) ([]string, func(link.Message)) {
	if version == "" {
		version = "unknown"
	}
	topic, status := homeassistant.DiscoveryTopic(prefix, t.Room), homeassistant.StatusTopic(prefix)
	pub.SetRetained(topic, homeassistant.Payload(t, version))
	return []string{status}, func(m link.Message) {
		if m.Kind != link.KindWatched {
			next(m)
			return
		}
		if m.Topic == status && strings.TrimSpace(string(m.Payload)) == homeassistant.Online && !pub.Resend(topic) {
			log.Warn("home assistant discovery not sent again: the queue is full; it goes with the next connection", "topic", topic)
		}
	}
}

// infoEvery is how often the room looks whether its info changed (the
// clock's synchronisation, the epoch, the journal's window); it is
// published again only when it did.
const infoEvery = 5 * time.Second

// publishInfo sets the retained info from what the room is now.
func (r *Room) publishInfo(src interface{ Synced() bool }) {
	m := r.info
	m.Epoch = r.j.Epoch().String()
	m.ClockSynced = src.Synced()
	m.WindowS = windowSeconds(r.j.Window(), r.cfg.Journal.Retention)
	if snap, _ := r.j.Latest(); snap != nil && !snap.Tests.LastFull.IsZero() {
		t := contract.T(snap.Tests.LastFull) // the last passed full function test
		m.LastFunctionTest = &t
	}
	r.pub.SetRetained(contract.Topics{Base: r.cfg.MQTT.Base, Room: r.cfg.Room}.Info(), mustJSON(m))
}

// windowSeconds is the window announced in info: the retention, or, when
// the size bound made the journal delete entries inside it, the reach of
// the journal rounded down to a minute (ten seconds below one), so that
// info changes seldom and never promises more than the journal holds.
func windowSeconds(w, retention time.Duration) int64 {
	if w >= retention {
		return int64(retention / time.Second)
	}
	step := time.Minute
	if w < time.Minute {
		step = 10 * time.Second
	}
	return int64(w.Truncate(step) / time.Second)
}

// lazyConn lets the publisher be built before the client it publishes
// through (the client's handler needs the edge, which needs the publisher).
type lazyConn struct{ c **link.Client }

func (l lazyConn) Conn() (uint64, <-chan struct{}, <-chan struct{}, bool) { return (*l.c).Conn() }
func (l lazyConn) Drop(err error)                                         { (*l.c).Drop(err) }
func (l lazyConn) Publish(topic string, payload []byte, retained bool) mqtt.Token {
	return (*l.c).Publish(topic, payload, retained)
}

// submit hands a command to the loop without blocking.
func (r *Room) submit(c controller.Command, operator string) bool {
	select {
	case r.cmds <- withOperator(c, operator):
		return true
	default:
		return false
	}
}

// withOperator returns c sent by operator op ("" on the plain cmd topic).
func withOperator(c controller.Command, op string) controller.Command {
	c.By = op
	return c
}

// fault hands a fault of the link to the loop without blocking; a full
// queue means faults are pending already.
func (r *Room) fault(f controller.Fault) {
	select {
	case r.faults <- f:
	default:
		r.log.Warn("fault queue full; fault not stepped", "source", f.Source, "active", f.Active)
	}
}

// Send hands a command to the room's loop as operator op, waiting while
// its queue is full; for a room run without a broker.
func (r *Room) Send(ctx context.Context, c controller.Command, op string) error {
	select {
	case r.cmds <- withOperator(c, op):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sim returns the simulated room, or nil with the GPIO backend.
func (r *Room) Sim() *sim.Room { return r.sim }

// Journal returns the room's journal.
func (r *Room) Journal() *journal.Journal { return r.j }

// Client returns the room's MQTT connection.
func (r *Room) Client() *link.Client { return r.client }

// Publisher returns the room's publisher.
func (r *Room) Publisher() *link.Publisher { return r.pub }

// Now returns the time on the room's axis.
func (r *Room) Now() time.Time { return r.axis.Now() }

// Run runs the room until ctx ends, then shuts down: outputs safe, what is
// pending delivered within the shutdown timeout, offline published, and
// everything closed. It returns an error only if the room could not start.
func (r *Room) Run(ctx context.Context) error {
	if r.pub != nil {
		r.checkWitness(ctx)
		clock := r.o.Clock
		if clock == nil {
			clock = daemon.SystemClock{}
		}
		r.publishInfo(clock) // the epoch may have changed
		go r.pub.Run()
		stopInfo := make(chan struct{})
		defer close(stopInfo)
		go func() {
			clock := r.o.Clock
			if clock == nil {
				clock = daemon.SystemClock{}
			}
			t := time.NewTicker(infoEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					r.publishInfo(clock)
				case <-stopInfo:
					return
				}
			}
		}()
	}
	err := daemon.Run(ctx, daemon.Options{
		Room: r.cfg.Room, Policy: r.cfg.Policy, Watchdog: r.o.Watchdog, MinPlausible: r.o.MinPlausible,
	}, daemon.Deps{
		Inputs: r.backend, Outputs: r.backend, Journal: r.j, Commands: r.cmds, Faults: r.faults,
		Clock: r.o.Clock, Axis: r.axis, Notifier: r.o.Notifier, Logger: r.log, Healthy: r.healthy(),
	})
	if r.abandoned.Load() {
		return err
	}
	if r.pub != nil {
		if r.mirror != nil {
			// The outputs are safe now and final; their mirror runs on its
			// own and could be late for the flush.
			r.mirror.final()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), daemon.DefaultShutdownTimeout)
		defer cancel()
		if ferr := r.pub.Flush(sctx); ferr != nil {
			r.log.Warn("shutdown: not everything was delivered; the rest stays in the journal", "err", ferr)
		}
		r.pub.Close()
		if cerr := r.client.Close(sctx); cerr != nil {
			r.log.Warn("shutdown: offline not published", "err", cerr)
		}
	}
	r.closeAll()
	return err
}

// healthy is the backend's healthy output, when the config wires one.
func (r *Room) healthy() daemon.Pulser {
	p, ok := r.backend.(daemon.Pulser)
	if !ok || r.cfg.Device.Healthy == nil {
		return nil
	}
	return p
}

// Abandon stops the room as a crash would, for tests of what a restart
// finds: nothing more is delivered, no offline is published (the broker
// publishes the Last Will), the journal's head is not written. Cancel Run's
// context afterwards; Run then returns without its clean shutdown.
func (r *Room) Abandon() {
	r.abandoned.Store(true)
	if r.pub != nil {
		r.pub.Close()
		r.client.Abandon()
	}
	r.j.Abandon()
	if err := r.backend.Close(); err != nil {
		r.log.Error("close device backend", "err", err)
	}
}

func (r *Room) closeAll() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// OpenJournal opens the room's journal in the state directory of cfg, as
// Open does (migrating an earlier layout first), for a program that works
// on the room while roomd is stopped (roomd commission). The journal's
// lock keeps roomd from starting meanwhile; an error wrapping
// journal.ErrLocked means roomd is running.
func OpenJournal(cfg *configs.Config, log *slog.Logger) (*journal.Journal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return openJournal(cfg, Options{}, log)
}

// OpenBackend opens the device backend of cfg as Open does: the GPIO
// lines (an error names a line that is busy or missing), or the
// simulator, then also returned as simRoom.
func OpenBackend(cfg *configs.Config, log *slog.Logger) (backend device.Backend, simRoom *sim.Room, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return openBackend(cfg, log)
}

// openJournal opens the journal in the state directory, first migrating an
// earlier layout (state.json, outbox/, replies.json) into it.
func openJournal(cfg *configs.Config, o Options, log *slog.Logger) (*journal.Journal, error) {
	dir := filepath.Join(cfg.StateDir, JournalDir)
	jo := journal.Options{FS: o.JournalFS, MaxBytes: cfg.Journal.MaxBytes, Retention: cfg.Journal.Retention,
		Logger: log.With("component", "journal")}
	rep, err := migrate.Run(cfg.StateDir, dir, cfg.Room, jo, log)
	if err != nil {
		return nil, fmt.Errorf("migrate the state directory: %w", err)
	}
	if rep.Migrated {
		log.Warn("state directory migrated to the journal", "visit", rep.VisitRunning, "seq", rep.Seq,
			"pending_messages", rep.Messages, "unsent_records", rep.Records, "replies", rep.Replies)
	}
	j, err := journal.Open(dir, jo)
	if err != nil {
		return nil, err
	}
	rec := j.Recovered()
	log.Info("journal open", "entries", rec.Entries, "epoch", j.Epoch(), "took", rec.Took)
	return j, nil
}

// simMirror publishes the simulated outputs, retained, on sim/outputs
// until the simulated room closes.
type simMirror struct {
	room  *sim.Room
	pub   *link.Publisher
	topic string

	mu   sync.Mutex
	done bool // final has set the last outputs; later changes are stale
}

func (m *simMirror) run() {
	w := m.room.Watch()
	m.set(m.room.Outputs())
	for ch := range w {
		m.set(ch.Outputs)
	}
}

func (m *simMirror) set(o map[controller.Output]controller.Mode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.done {
		m.pub.SetRetained(m.topic, contract.EncodeSimOutputs(o))
	}
}

// final sets the outputs as they are now, once the loop has stopped and
// left them safe, and ignores whatever the watch still delivers (older).
func (m *simMirror) final() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	m.pub.SetRetained(m.topic, contract.EncodeSimOutputs(m.room.Outputs()))
}

// openBackend opens the configured backend; simRoom is set in simulator mode.
func openBackend(cfg *configs.Config, log *slog.Logger) (backend device.Backend, simRoom *sim.Room, err error) {
	spec := DeviceSpec(cfg)
	base, err := device.LoadBaselines(cfg.StateDir)
	if err != nil {
		// Drift is then judged against the bands alone: louder, not quieter.
		log.Error("loop baselines unreadable; drift is judged against the bands alone", "err", err)
	}
	spec = spec.WithBaselines(base)
	switch cfg.Device.Backend {
	case configs.BackendGPIO:
		b, err := gpio.Open(spec, log.With("component", "gpio"))
		if err != nil {
			return nil, nil, fmt.Errorf("open GPIO backend: %w", err)
		}
		return b, nil, nil
	case configs.BackendSim:
		if len(spec.Inputs) == 0 {
			spec.Inputs = sim.DefaultSpec().Inputs
		}
		if len(spec.Outputs) == 0 {
			spec.Outputs = sim.DefaultSpec().Outputs
		}
		// The simulated hardware is wired as docs/wiring.md recommends: a
		// config's active_low that says otherwise reads inverted, as on a Pi.
		r, err := sim.NewWired(spec, sim.RecommendedWiring(spec), log.With("component", "sim"))
		if err != nil {
			return nil, nil, fmt.Errorf("open simulator backend: %w", err)
		}
		log.Warn("SIMULATOR BACKEND: no hardware is read or driven, and anyone who may publish to sim/set can fake the room's sensors; never use this on a real room",
			"control_topic", cfg.MQTT.Base+"/"+cfg.Room+"/sim/set")
		return r, r, nil
	default:
		return nil, nil, fmt.Errorf("unknown device backend %s", cfg.Device.Backend)
	}
}

// DeviceSpec translates the config's device section.
func DeviceSpec(cfg *configs.Config) device.Spec {
	line := func(l configs.Line) device.LineSpec {
		ls := device.LineSpec{Pin: l.Pin, Chip: l.Chip, Line: l.Line, ActiveLow: l.ActiveLow, Debounce: l.Debounce, Name: l.Point}
		switch l.Pull {
		case configs.PullUp:
			ls.Pull = device.PullUp
		case configs.PullDown:
			ls.Pull = device.PullDown
		default:
			ls.Pull = device.PullNone
		}
		return ls
	}
	spec := device.Spec{
		Inputs:        map[controller.Input][]device.LineSpec{},
		Outputs:       map[controller.Output]device.LineSpec{},
		RereadEvery:   cfg.Device.RereadEvery,
		Flap:          device.Flap{MaxChanges: cfg.Device.Flap.MaxChanges, Window: cfg.Device.Flap.Window},
		BlinkPeriod:   cfg.Device.BlinkPeriod,
		FeedbackGrace: cfg.Device.FeedbackGrace,
	}
	for role, lines := range cfg.Device.Inputs.ByRole() {
		for _, l := range lines {
			ls := line(l)
			if e := l.EOL; e != nil {
				ls = device.LineSpec{Name: l.Point, Loop: &device.Loop{
					ADC:     device.ADCChannel{Bus: e.Bus, Address: uint16(e.Address), Channel: e.Channel},
					Table:   e.Table(),
					Divider: eol.Divider{PullUp: float64(e.PullUp), Supply: float64(e.SupplyMV) / 1000},
					Hold:    e.Hold,
				}}
			}
			spec.Inputs[role] = append(spec.Inputs[role], ls)
		}
	}
	for p, l := range map[device.Power]*configs.Line{device.PowerMains: cfg.Device.MainsFail, device.PowerBattery: cfg.Device.BatteryLow} {
		if l != nil {
			if spec.Power == nil {
				spec.Power = map[device.Power]device.LineSpec{}
			}
			spec.Power[p] = line(*l)
		}
	}
	if l := cfg.Device.Healthy; l != nil {
		h := line(*l)
		spec.Healthy = &h
	}
	for o, l := range cfg.Device.Outputs {
		spec.Outputs[o] = line(l)
	}
	for o, l := range cfg.Device.Feedback {
		if spec.Feedback == nil {
			spec.Feedback = map[controller.Output]device.LineSpec{}
		}
		spec.Feedback[o] = line(l)
	}
	return spec
}

// newInfo is the part of the info topic that the config fixes.
func newInfo(cfg *configs.Config, version string, spec device.Spec, simulated bool) contract.InfoMessage {
	if version == "" {
		version = "unknown"
	}
	m := contract.InfoMessage{
		Version: contract.ContractVersion, Room: cfg.Room, Roomd: version, Backend: cfg.Device.Backend.String(),
		Policy:     contract.PolicyInfoOf(cfg.Policy),
		HeartbeatS: int64(cfg.MQTT.Heartbeat / time.Second), KeepaliveS: int64(cfg.MQTT.Keepalive / time.Second),
		RetentionS: int64(cfg.Journal.Retention / time.Second), MaxCommandBytes: cfg.MQTT.MaxPayload,
		CommandRate: &link.DefaultRateLimit,
		Inputs:      []string{}, PanicPoints: []string{}, Outputs: []string{}, Supervised: []string{},
	}
	if simulated && len(spec.Inputs) == 0 {
		spec.Inputs = sim.DefaultSpec().Inputs
		spec.Outputs = sim.DefaultSpec().Outputs
	}
	for _, in := range controller.Inputs {
		if len(spec.Inputs[in]) > 0 {
			m.Inputs = append(m.Inputs, in.String())
		}
	}
	for i := range spec.Inputs[controller.InputPanic] {
		m.PanicPoints = append(m.PanicPoints, spec.PanicPoint(i))
	}
	for _, o := range controller.Outputs {
		if _, ok := spec.Outputs[o]; ok {
			m.Outputs = append(m.Outputs, o.String())
		}
		if _, ok := spec.Feedback[o]; ok {
			m.Supervised = append(m.Supervised, o.String())
		}
	}
	if y, err := cfg.YAML(); err == nil {
		sum := sha256.Sum256(y)
		m.ConfigHash = hex.EncodeToString(sum[:8])
	}
	return m
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("room: encode %T: %v", v, err))
	}
	return b
}
