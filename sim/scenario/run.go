package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/sim"
)

// Clock is a time source for the roomd loop (daemon.Deps.Clock) whose
// time axis runs Speed times faster than real time, from the real time at
// which it was made. Under testing/synctest it runs on the bubble's clock.
type Clock struct {
	start time.Time // with its monotonic reading
	base  time.Time
	speed float64
}

// NewClock returns a clock running speed times faster than real time (0 means 1).
func NewClock(speed float64) *Clock {
	if speed <= 0 {
		speed = 1
	}
	now := time.Now()
	return &Clock{start: now, base: now.Round(0), speed: speed}
}

// Speed returns the clock's speed.
func (c *Clock) Speed() float64 { return c.speed }

func (c *Clock) elapsed() time.Duration {
	return time.Duration(float64(time.Since(c.start)) * c.speed)
}

// Now returns the time on the compressed axis; the loop's axis reads the same.
func (c *Clock) Now() time.Time { return c.base.Add(c.elapsed()) }

// Wall returns Now: the axis is anchored to it at the loop's start.
func (c *Clock) Wall() time.Time { return c.Now() }

// Boot returns the compressed time since the clock was made, plus an hour.
func (c *Clock) Boot() time.Duration { return time.Hour + c.elapsed() }

// BootID returns a fixed id: a replay is one boot.
func (c *Clock) BootID() (string, error) { return "scenario-replay", nil }

// LoopOptions returns the roomd loop's options for a replay of room under
// policy with its state in dir, on clock.
func LoopOptions(room string, policy controller.Policy, dir string, clock *Clock) daemon.Options {
	return daemon.Options{
		Room:      room,
		Policy:    policy,
		StateDir:  dir,
		Heartbeat: 30 * time.Second,
		// The clock starts at the real (or, under synctest, the bubble's)
		// time, which is plausible by construction.
		MinPlausible: clock.Now().Add(-time.Hour),
	}
}

// Options configure Run.
type Options struct {
	// Speed compresses time (0 means 1). Under testing/synctest leave it 0:
	// fake time already makes a two-hour visit take milliseconds.
	Speed  float64
	Logger *slog.Logger // the loop's and the simulator's logs; nil discards
	// Observe, if set, sees every transcript entry as it is added.
	Observe func(Entry)
}

// Run plays sc against a simulated room (sim.DefaultSpec) run by the real
// roomd loop, with an in-memory link: the events are the records the loop
// published, in wire form. The error is for a room that could not run;
// unmet expectations are in the result.
func Run(ctx context.Context, sc *Scenario, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	room, err := sim.New(sim.DefaultSpec(), log.With("component", "sim"))
	if err != nil {
		return nil, fmt.Errorf("run scenario %q: %w", sc.Name, err)
	}
	defer room.Close()
	dir, err := os.MkdirTemp("", "roomd-scenario-*")
	if err != nil {
		return nil, fmt.Errorf("run scenario %q: state dir: %w", sc.Name, err)
	}
	defer os.RemoveAll(dir)

	clock := NewClock(opts.Speed)
	ml := newMemLink(sc.Room)
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(loopCtx, LoopOptions(sc.Room, sc.Policy, dir, clock), daemon.Deps{
			Inputs: room, Outputs: room, Link: ml, Clock: clock, Speed: clock.Speed(), Logger: log,
		})
	}()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-ml.ready:
	case err := <-done:
		done <- err // for the deferred wait
		return nil, fmt.Errorf("run scenario %q: the room did not start: %w", sc.Name, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("run scenario %q: waiting for the room to start: %w", sc.Name, ctx.Err())
	}
	send := func(c controller.Command) error {
		select {
		case ml.cmds <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return Play(ctx, sc, Env{
		Now: clock.Now, Speed: clock.Speed(), Control: room.Apply, Send: send,
		Events: ml.events, Replies: ml.replies, Observe: opts.Observe,
	}), nil
}

// memQueue bounds what the in-memory link holds for the player; a full
// queue makes Publish refuse like a full outbox.
const memQueue = 1 << 14

// memLink is daemon.Link in memory: records and replies go out in their
// wire form, commands come in from the player.
type memLink struct {
	room    string
	cmds    chan controller.Command
	events  chan link.EventMessage
	replies chan link.ReplyMessage

	once  sync.Once
	ready chan struct{} // closed when a state shows door, lock and presence read
}

func newMemLink(room string) *memLink {
	return &memLink{room: room, cmds: make(chan controller.Command), events: make(chan link.EventMessage, memQueue),
		replies: make(chan link.ReplyMessage, memQueue), ready: make(chan struct{})}
}

func (m *memLink) Commands() <-chan controller.Command { return m.cmds }

func (m *memLink) Publish(rec controller.Record) error {
	select {
	case m.events <- link.EventMessageOf(m.room, rec):
		return nil
	default:
		return fmt.Errorf("in-memory link: %d events unread: %w", memQueue, daemon.ErrOutboxFull)
	}
}

func (m *memLink) PublishState(st controller.State) error {
	if st.Door != controller.LevelUnknown && st.Lock != controller.LevelUnknown &&
		st.Presence != nil && *st.Presence != controller.LevelUnknown {
		m.once.Do(func() { close(m.ready) })
	}
	return nil
}

func (m *memLink) Reply(rep controller.Reply, st controller.State) error {
	var msg link.ReplyMessage
	if err := json.Unmarshal(link.EncodeReply(m.room, rep, st), &msg); err != nil {
		return fmt.Errorf("in-memory link: reply: %w", err)
	}
	select {
	case m.replies <- msg:
		return nil
	default:
		return errors.New("in-memory link: too many replies unread")
	}
}

func (m *memLink) Close(context.Context) error { return nil }
