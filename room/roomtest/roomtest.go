// Package roomtest runs real rooms (room.Open, the simulator backend) for
// the tests of the packages around them: the tools a guard or an integrator
// uses are tested against the room roomd runs, not a copy of it.
package roomtest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
)

// Options describe a room under test. Zero fields take the defaults below.
type Options struct {
	Broker string // the broker URL (required)
	Base   string // topic base; "" means contract.DefaultBase
	Room   string // room id; "" means "room-1"
	// Dir is the state directory; "" means a new temporary one.
	Dir string
	// Policy is the preset name; "" means "italy".
	Policy string
	// Config, if set, edits the config before the room opens.
	Config func(*configs.Config)
	// Room, if set, edits the room options.
	Options func(*room.Options)
	Logger  *slog.Logger
}

// Room is a running room.
type Room struct {
	*room.Room
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	dir    string
	ended  bool
}

// Start opens and runs the room until Stop or the end of the test.
func Start(t testing.TB, o Options) *Room {
	t.Helper()
	if o.Room == "" {
		o.Room = "room-1"
	}
	if o.Base == "" {
		o.Base = "visitrooms"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Policy == "" {
		o.Policy = "italy"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// keepalive 2s: the embedded broker drops a client silent for
	// keepalive + keepalive/2 whole seconds (1 s at a keepalive of 1 s,
	// before paho's first ping can come), so the room's 2 s heartbeat keeps
	// the connection alive on a loaded machine.
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: %s\nstate_dir: %s\npolicy: {preset: %s}\ndevice: {backend: sim}\nmqtt: {broker: %q, base: %s, heartbeat: 2s, keepalive: 2s}\n",
		o.Room, o.Dir, o.Policy, o.Broker, o.Base), "test config")
	require.NoError(t, err)
	// A room under test takes commands from every operator (the shipped
	// default names none): the tests around it act as whoever they need.
	cfg.Commands.Operators = []string{"*"}
	if o.Config != nil {
		o.Config(cfg)
	}
	ro := room.Options{Config: cfg, Logger: o.Logger.With("room", o.Room)}
	if o.Options != nil {
		o.Options(&ro)
	}
	r, err := room.Open(ro)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Room{Room: r, t: t, cancel: cancel, done: make(chan error, 1), dir: o.Dir}
	go func() { tr.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		if !tr.ended {
			tr.Stop()
		}
	})
	return tr
}

// Sim returns the simulated room.
func (r *Room) Sim() *sim.Room { return r.Room.Sim() }

// Dir returns the state directory.
func (r *Room) Dir() string { return r.dir }

// Stop ends the room cleanly (delivers, publishes offline, closes).
func (r *Room) Stop() {
	r.t.Helper()
	if r.ended {
		return
	}
	r.ended = true
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(r.t, err)
	case <-time.After(30 * time.Second):
		r.t.Error("room did not stop within 30s")
	}
}

// Crash stops the room as a crash would: nothing delivered or closed
// cleanly; the broker publishes the Last Will.
func (r *Room) Crash() {
	r.t.Helper()
	if r.ended {
		return
	}
	r.ended = true
	r.Room.Abandon()
	r.cancel()
	<-r.done
}
