package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link/broker"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/sim/scenario"
	"github.com/roomd/roomd/wallclock"
)

// guardID is the demo guard console's operator id (and MQTT client id).
const guardID = "guard-console"

// replayConfig is the config of a replayed room: the simulator, the broker
// given, and re-reads often enough that a sensor fault shows within a few
// visit seconds while time runs fast.
const replayConfig = `room: %s
state_dir: %s
policy: {preset: italy}
device:
  backend: sim
  reread_every: 100ms
mqtt:
  broker: %s
  base: visitrooms
  heartbeat: 1s
commands: {operators: [guard-console]}
`

// commandLife is how long, on the room's clock, a replayed command stays
// valid (its expires_at).
const commandLife = 30 * time.Minute

// replayStartTimeout bounds the start of the room (broker connection and
// the first reading of every input), in real time.
const replayStartTimeout = 20 * time.Second

// replayRoom is a simulated room run by the production loop and MQTT link
// against an embedded broker, on a compressed clock, with a guard console
// subscribed to everything under the topic base.
type replayRoom struct {
	cfg    *configs.Config
	broker *broker.Broker
	clock  *daemon.FastClock
	sim    *sim.Room
	dir    string
	log    *slog.Logger

	room *room.Room
	stop context.CancelFunc
	done chan error

	guard   paho.Client
	events  chan contract.EventMessage
	replies chan contract.ReplyMessage
	ready   chan struct{}
	once    sync.Once

	mu      sync.Mutex
	onEvent func(contract.EventMessage) // the console printer; called in arrival order
}

// replayOptions configure startReplay.
type replayOptions struct {
	Room   string
	Policy controller.Policy
	Listen string  // broker address; "" for a free loopback port
	Speed  float64 // how many times faster than real time the room's clock runs
	// Lead starts the room's clock that long before the wall clock, so that
	// a replay kept running after its script (--keep) can join the wall
	// clock without a jump (daemon.FastClock.JoinWall).
	Lead   time.Duration
	Logger *slog.Logger
}

// startReplay starts the broker, the room and the guard console, and waits
// until the room is online with every input read.
func startReplay(ctx context.Context, o replayOptions) (_ *replayRoom, err error) {
	b, err := broker.Start(broker.Options{Addr: o.Listen, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	r := &replayRoom{broker: b, log: o.Logger, clock: daemon.NewClockAt(wallclock.Now().Add(-o.Lead), o.Speed),
		events: make(chan contract.EventMessage, 4096), replies: make(chan contract.ReplyMessage, 256), ready: make(chan struct{})}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.dir, err = os.MkdirTemp("", "roomd-demo-*"); err != nil {
		return nil, fmt.Errorf("demo state dir: %w", err)
	}
	r.cfg, err = configs.Parse(fmt.Appendf(nil, replayConfig, o.Room, r.dir, b.URL()), "demo config")
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	r.cfg.Policy = o.Policy

	if err := r.startGuard(); err != nil {
		return nil, err
	}
	if r.room, err = room.Open(room.Options{Config: r.cfg, Logger: r.log, Clock: r.clock,
		MinPlausible: r.clock.Now().Add(-time.Hour)}); err != nil {
		return nil, fmt.Errorf("demo room: %w", err)
	}
	r.sim = r.room.Sim()
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = stop, make(chan error, 1)
	go func() { r.done <- r.room.Run(loopCtx) }()
	timer := time.NewTimer(replayStartTimeout)
	defer timer.Stop()
	select {
	case <-r.ready:
		return r, nil
	case err := <-r.done:
		r.done <- err
		return nil, fmt.Errorf("demo room did not start: %w", err)
	case <-timer.C:
		return nil, fmt.Errorf("demo room did not come online within %s", replayStartTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startGuard connects the guard console and subscribes to {base}/#.
func (r *replayRoom) startGuard() error {
	base := r.cfg.MQTT.Base
	topics, err := contract.NewTopics(base, r.cfg.Room)
	if err != nil {
		return fmt.Errorf("demo topics: %w", err)
	}
	opts := paho.NewClientOptions().AddBroker(r.broker.URL()).SetClientID(guardID).
		SetCleanSession(true).SetOrderMatters(true).SetConnectTimeout(10 * time.Second)
	r.guard = paho.NewClient(opts)
	if err := waitToken(r.guard.Connect()); err != nil {
		return fmt.Errorf("guard console: connect to %s: %w", r.broker.URL(), err)
	}
	handle := func(_ paho.Client, m paho.Message) {
		switch m.Topic() {
		case topics.Events():
			var ev contract.EventMessage
			if err := json.Unmarshal(m.Payload(), &ev); err != nil {
				r.log.Error("guard console: unreadable event", "err", err)
				return
			}
			r.mu.Lock()
			if r.onEvent != nil {
				r.onEvent(ev)
			}
			r.mu.Unlock()
			select {
			case r.events <- ev:
			default: // nobody plays a scenario any more (keep mode)
			}
		case topics.Reply():
			var rep contract.ReplyMessage
			if err := json.Unmarshal(m.Payload(), &rep); err == nil {
				select {
				case r.replies <- rep:
				default:
				}
			}
		case topics.State():
			var st contract.StateMessage
			if err := json.Unmarshal(m.Payload(), &st); err == nil && st.Door != "unknown" && st.Lock != "unknown" &&
				st.Presence != "" && st.Presence != "unknown" {
				r.once.Do(func() { close(r.ready) })
			}
		}
	}
	if err := waitToken(r.guard.Subscribe(base+"/#", 1, handle)); err != nil {
		return fmt.Errorf("guard console: subscribe %s/#: %w", base, err)
	}
	return nil
}

// setConsole sets the function that prints each event as it arrives.
func (r *replayRoom) setConsole(f func(contract.EventMessage)) {
	r.mu.Lock()
	r.onEvent = f
	r.mu.Unlock()
}

// send publishes a command on the room's cmd topic, as a guard console or
// the booking system does.
func (r *replayRoom) send(c controller.Command) error {
	topics, _ := contract.NewTopics(r.cfg.MQTT.Base, r.cfg.Room)
	payload := contract.EncodeCommand(c, r.clock.Now().Add(commandLife))
	if err := waitToken(r.guard.Publish(topics.OperatorCommand(guardID), 1, false, payload)); err != nil {
		return fmt.Errorf("publish %s command: %w", c.Action, err)
	}
	return nil
}

// env is the room as a scenario sees it.
func (r *replayRoom) env() scenario.Env {
	return scenario.Env{
		Now: r.clock.Now, Speed: r.clock.Speed(),
		// Messages cross a broker and sensors settle in real time while
		// the clock runs fast: widen timing windows by that much.
		Slack:   time.Duration(r.clock.Speed() * float64(75*time.Millisecond)),
		Control: r.sim.Apply, Send: r.send, Events: r.events, Replies: r.replies,
	}
}

// close stops the room, the console and the broker, and removes the state.
func (r *replayRoom) close() {
	if r.stop != nil {
		r.stop()
		if err := <-r.done; err != nil {
			r.log.Error("demo room", "err", err)
		}
	}
	if r.guard != nil {
		r.guard.Disconnect(100)
	}
	if err := r.broker.Close(); err != nil {
		r.log.Error("close demo broker", "err", err)
	}
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

func waitToken(t paho.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("no answer from the broker within 10s")
	}
	return t.Error()
}

// parseSpeed reads a --speed value.
func parseSpeed(s string) (float64, error) {
	var v float64
	if _, err := fmt.Sscan(strings.TrimSuffix(s, "x"), &v); err != nil || !(v >= 1 && v <= 100000) {
		return 0, fmt.Errorf("--speed %q: want a number from 1 to 100000 (how many times faster than real time)", s)
	}
	return v, nil
}
