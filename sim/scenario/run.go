package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
)

// offlineConfig is the config of a room the player runs without a broker:
// the simulator, its state in dir. The broker is never dialled.
const offlineConfig = `room: %s
state_dir: %s
policy: {max_duration: 1h}
device: {backend: sim}
mqtt: {broker: "tcp://127.0.0.1:1"}
`

// Options configure Run.
type Options struct {
	// Speed compresses time (0 means 1). Under testing/synctest leave it 0:
	// fake time already makes a two-hour visit take milliseconds.
	Speed  float64
	Logger *slog.Logger // the loop's and the simulator's logs; nil discards
	// Observe, if set, sees every transcript entry as it is added.
	Observe func(Entry)
}

// Run plays sc against a simulated room (sim.DefaultSpec) assembled as roomd
// run assembles one (room.Open), without a broker: commands go into the
// room's loop and the events are the records of its journal, in wire form.
// The error is for a room that could not run; unmet expectations are in the
// result.
func Run(ctx context.Context, sc *Scenario, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	simRoom, err := sim.New(sim.DefaultSpec(), log.With("component", "sim"))
	if err != nil {
		return nil, fmt.Errorf("run scenario %q: %w", sc.Name, err)
	}
	dir, err := os.MkdirTemp("", "roomd-scenario-*")
	if err != nil {
		_ = simRoom.Close()
		return nil, fmt.Errorf("run scenario %q: state dir: %w", sc.Name, err)
	}
	defer os.RemoveAll(dir)
	cfg, err := configs.Parse(fmt.Appendf(nil, offlineConfig, sc.Room, dir), "scenario config")
	if err != nil {
		_ = simRoom.Close()
		return nil, fmt.Errorf("run scenario %q: %w", sc.Name, err)
	}
	cfg.Policy = sc.Policy
	clock := daemon.NewFastClock(opts.Speed)
	r, err := room.Open(room.Options{Config: cfg, Logger: log, Clock: clock, Backend: simRoom, NoBroker: true,
		MinPlausible: clock.Now().Add(-time.Hour)})
	if err != nil {
		_ = simRoom.Close()
		return nil, fmt.Errorf("run scenario %q: %w", sc.Name, err)
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- r.Run(loopCtx) }()
	defer func() {
		stop()
		<-done
	}()

	f := newFollower(sc.Room, r.Journal())
	go f.run()
	select {
	case <-f.ready:
	case err := <-done:
		done <- err // for the deferred wait
		return nil, fmt.Errorf("run scenario %q: the room did not start: %w", sc.Name, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("run scenario %q: waiting for the room to start: %w", sc.Name, ctx.Err())
	}
	send := func(c controller.Command) error { return r.Send(ctx, c, "") }
	return Play(ctx, sc, Env{
		Now: clock.Now, Speed: clock.Speed(), Control: simRoom.Apply, Send: send,
		Events: f.events, Replies: f.replies, Observe: opts.Observe,
	}), nil
}

// followQueue bounds what the follower holds for the player.
const followQueue = 1 << 14

// follower reads the room's journal as a consumer reads the room's topics:
// records as events, replies as replies, in wire form.
type follower struct {
	room    string
	j       *journal.Journal
	events  chan contract.EventMessage
	replies chan contract.ReplyMessage
	ready   chan struct{} // closed when a state shows door, lock and presence read
}

func newFollower(room string, j *journal.Journal) *follower {
	return &follower{room: room, j: j, events: make(chan contract.EventMessage, followQueue),
		replies: make(chan contract.ReplyMessage, followQueue), ready: make(chan struct{})}
}

func (f *follower) run() {
	next := f.j.First()
	isReady := false
	var snap *controller.Snapshot
	for {
		changed := f.j.Changed()
		for ; next <= f.j.Last(); next++ {
			e, err := f.j.Get(next)
			if errors.Is(err, journal.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			for _, r := range e.Records {
				select {
				case f.events <- contract.EventMessageOf(f.room, e.Epoch, r):
				default: // nobody reads any more
				}
			}
			if e.Snapshot != nil {
				snap = e.Snapshot
			}
			for _, rep := range e.Replies {
				var st controller.State
				if snap != nil {
					st = snap.StateAt(e.At)
				}
				var msg contract.ReplyMessage
				if json.Unmarshal(contract.EncodeReply(f.room, e.Epoch, rep.Operator, rep.Reply, st), &msg) == nil {
					select {
					case f.replies <- msg:
					default:
					}
				}
			}
			if !isReady && snap != nil {
				st := snap.StateAt(e.At)
				if st.Door != controller.LevelUnknown && st.Lock != controller.LevelUnknown &&
					st.Presence != nil && *st.Presence != controller.LevelUnknown {
					isReady = true
					close(f.ready)
				}
			}
		}
		select {
		case <-changed:
		case <-f.j.Done():
			return
		}
	}
}
