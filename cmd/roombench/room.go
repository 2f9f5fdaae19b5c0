package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/link/outbox"
	"github.com/roomd/roomd/sim"
)

// roomConfig is what every in-process room of a run shares.
type roomConfig struct {
	Broker    string
	Base      string
	Dir       string // each room gets Dir/<room>/{state,outbox}
	Policy    controller.Policy
	Spec      device.Spec
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// room is one roomd in-process: its own simulated backend, controller loop,
// state directory, outbox and MQTT client, as a separate Pi would have.
type room struct {
	ID     string
	Sim    *sim.Room
	client *link.Client
	ob     *outbox.Outbox
	cancel context.CancelFunc
	done   chan error
	pumped chan struct{}
}

// startRoom starts room id and returns at once; the link connects in the
// background (the room's controller_started record says it is up).
func startRoom(id string, c roomConfig) (*room, error) {
	log := c.Logger.With("room", id)
	dir := filepath.Join(c.Dir, id)
	stateDir := filepath.Join(dir, "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("room %s: create state dir: %w", id, err)
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Limits{})
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	topics, err := link.NewTopics(c.Base, id)
	if err != nil {
		_ = ob.Close()
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	cli, err := link.New(link.Options{
		Broker:   c.Broker,
		ClientID: "roomd-" + id,
		Username: id,
		Topics:   topics,
		Outbox:   ob,
		SimMode:  true,
	}, log)
	if err != nil {
		_ = ob.Close()
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	s, err := sim.New(c.Spec, log)
	if err != nil {
		_ = cli.Close(context.Background())
		_ = ob.Close()
		return nil, fmt.Errorf("room %s: %w", id, err)
	}
	r := &room{ID: id, Sim: s, client: cli, ob: ob, done: make(chan error, 1), pumped: make(chan struct{})}
	// The adapter, reply cache and sim/outputs mirror are wired as roomd run
	// wires them (cmd/roomd/link.go).
	replies, err := link.OpenReplies(filepath.Join(stateDir, "replies.json"), 0)
	if err != nil {
		log.Error("reply cache unusable", "err", err)
	}
	ad := daemon.NewMQTTLink(cli, daemon.MQTTLinkOptions{Room: id, Replies: replies, Logger: log,
		SimSet: func(p []byte) error { return applySimSet(s, p) }})
	go func() { defer close(r.pumped); ad.Run() }()
	go func() {
		w := s.Watch()
		cli.PublishSimOutputs(sim.EncodeOutputs(s.Outputs()))
		for ch := range w {
			cli.PublishSimOutputs(sim.EncodeOutputs(ch.Outputs))
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- daemon.Run(ctx, daemon.Options{
			Room: id, Policy: c.Policy, StateDir: stateDir, Heartbeat: c.Heartbeat,
		}, daemon.Deps{Inputs: s, Outputs: s, Link: ad, Faults: ad.Faults(), Logger: log})
	}()
	return r, nil
}

// Stop ends the room's loop (which closes its link) and releases the rest.
func (r *room) Stop() error {
	r.cancel()
	err := <-r.done
	<-r.pumped
	return errors.Join(err, r.Sim.Close(), r.ob.Close())
}

// applySimSet applies a sim/set payload to the simulated room.
func applySimSet(s *sim.Room, payload []byte) error {
	c, err := sim.ParseControl(payload)
	if err != nil {
		return err
	}
	return s.Apply(c)
}
