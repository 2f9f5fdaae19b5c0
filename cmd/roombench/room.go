package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
	roomd "github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
)

// roomConfig is what every in-process room of a run shares.
type roomConfig struct {
	Broker    string
	Base      string
	Dir       string // each room gets Dir/<room> as its state directory
	Policy    controller.Policy
	Spec      device.Spec
	Heartbeat time.Duration
	Logger    *slog.Logger
	// JournalFS, if set, is the rooms' journal file system (sync latency
	// injected with journal.DelayFS).
	JournalFS journal.FS
}

// room is one roomd in-process, assembled as roomd run assembles one
// (room.Open): its own simulated backend, journal, MQTT connection and
// loop, as a separate Pi would have.
type room struct {
	ID   string
	Sim  *sim.Room
	r    *roomd.Room
	done chan error
	stop context.CancelFunc
}

// startRoom starts room id and returns at once; the link connects in the
// background (the room's controller_started record says it is up).
func startRoom(id string, c roomConfig) (*room, error) {
	log := c.Logger.With("room", id)
	stateDir := filepath.Join(c.Dir, id)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("room %s: create state dir: %w", id, err)
	}
	cfg := configs.Default()
	cfg.Room, cfg.StateDir, cfg.Policy = id, stateDir, c.Policy
	cfg.Device.Backend = configs.BackendSim
	cfg.MQTT.Broker, cfg.MQTT.Base, cfg.MQTT.ClientID, cfg.MQTT.Username = c.Broker, c.Base, "roomd-"+id, id
	cfg.MQTT.Heartbeat = c.Heartbeat
	s, err := sim.New(c.Spec, log)
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	rr, err := roomd.Open(roomd.Options{Config: &cfg, Logger: log, Backend: s, JournalFS: c.JournalFS})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &room{ID: id, Sim: s, r: rr, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- rr.Run(ctx) }()
	return r, nil
}

// Queued returns how many journal entries wait for the broker.
func (r *room) Queued() int {
	n, _ := r.r.Journal().Unacked()
	return n
}

// Stop ends the room (it delivers what it can, publishes offline and
// closes everything).
func (r *room) Stop() error {
	r.stop()
	return <-r.done
}
