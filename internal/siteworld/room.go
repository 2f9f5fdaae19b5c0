package siteworld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
)

// RoomOptions say how a world's rooms run.
type RoomOptions struct {
	// Dir holds each room's state directory, Dir/<site>/<room>; "" means
	// under its site's directory.
	Dir string
	// Config, if set, edits each room's config after the world has set what
	// its site decides: the broker (TLS, the site's CA), the room's
	// username and password file, its state directory and the simulator
	// backend. The policy and the timings are the caller's.
	Config func(*configs.Config)
	// Backend, if set, opens each room's simulator instead of the one its
	// config describes.
	Backend func(cfg *configs.Config, log *slog.Logger) (*sim.Room, error)
	// Logger receives the rooms' logs; nil discards them.
	Logger *slog.Logger
}

// Room is a roomd room at a site: room.Open on the simulator backend, with
// its own journal and TLS connection to its site's broker, as a Pi would
// run it.
type Room struct {
	*room.Room
	Site, ID string

	dir    string
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error
}

// Dir returns the room's state directory.
func (r *Room) Dir() string { return r.dir }

// Stop ends the room cleanly (it delivers what it can, publishes offline
// and closes) and returns what its run returned. Later calls return the
// same.
func (r *Room) Stop() error {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			r.err = fmt.Errorf("room %s/%s: %w", r.Site, r.ID, err)
		}
	})
	return r.err
}

// StartRoom starts room id at the site and returns at once; its link
// connects in the background.
func (s *Site) StartRoom(id string, o RoomOptions) (*Room, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("site", s.ID, "room", id)
	stateDir := filepath.Join(s.dir, "rooms", id)
	if o.Dir != "" {
		stateDir = filepath.Join(o.Dir, s.ID, id)
	}
	pwDir := filepath.Join(s.dir, "passwords")
	for _, d := range []string{stateDir, pwDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("%s/%s: create %s: %w", s.ID, id, d, err)
		}
	}
	pwFile := filepath.Join(pwDir, id)
	if err := os.WriteFile(pwFile, []byte(Password(id)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", s.ID, id, err)
	}
	cfg := configs.Default()
	cfg.Room, cfg.StateDir = id, stateDir
	cfg.Device.Backend = configs.BackendSim
	cfg.MQTT.Broker, cfg.MQTT.ClientID, cfg.MQTT.Username = s.URL(), "roomd-"+id, id
	cfg.MQTT.PasswordFile, cfg.MQTT.TLS.CAFile = pwFile, s.Broker.CA.CertFile
	cfg.Commands.Operators = []string{GuardOperator}
	if o.Config != nil {
		o.Config(&cfg)
	}
	ro := room.Options{Config: &cfg, Logger: log}
	var sm *sim.Room
	if o.Backend != nil {
		var err error
		if sm, err = o.Backend(&cfg, log); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", s.ID, id, err)
		}
		ro.Backend = sm
	}
	rr, err := room.Open(ro)
	if err != nil {
		if sm != nil {
			_ = sm.Close()
		}
		return nil, fmt.Errorf("%s/%s: %w", s.ID, id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Room{Room: rr, Site: s.ID, ID: id, dir: stateDir, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rr.Run(ctx) }()
	s.mu.Lock()
	s.rooms[id] = r
	s.mu.Unlock()
	return r, nil
}

// stopRooms stops every running room of the site at once.
func (s *Site) stopRooms() error {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	errs := make([]error, len(rooms))
	var wg sync.WaitGroup
	for i, r := range rooms {
		wg.Go(func() { errs[i] = r.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Decommission retires a room as an installer would: roomd is stopped, and
// every retained topic of the room is cleared on the site broker with an
// empty retained publish, under the room's own identity (the only one the
// shipped ACL lets write them). Its records stay expected at the centre.
func (s *Site) Decommission(id string) error {
	r := s.Room(id)
	if r == nil {
		return fmt.Errorf("decommission %s/%s: no such room running", s.ID, id)
	}
	if err := r.Stop(); err != nil {
		return fmt.Errorf("decommission: %w", err)
	}
	j, err := journal.Open(filepath.Join(r.Dir(), room.JournalDir), journal.Options{})
	if err != nil {
		return fmt.Errorf("decommission %s/%s: %w", s.ID, id, err)
	}
	all, _ := journalRecords(s.ID, id, j)
	if err := j.Close(); err != nil {
		return fmt.Errorf("decommission %s/%s: %w", s.ID, id, err)
	}
	s.mu.Lock()
	delete(s.rooms, id)
	s.retired[id] = all
	s.mu.Unlock()

	tc, err := s.Broker.CA.ClientConfig("", "")
	if err != nil {
		return err
	}
	o := paho.NewClientOptions().AddBroker(s.URL()).SetClientID(id).SetUsername(id).
		SetPassword(Password(id)).SetTLSConfig(tc).SetCleanSession(true)
	c := paho.NewClient(o)
	if err := waitToken(s.patience, c.Connect(), "decommission %s/%s: connect", s.ID, id); err != nil {
		return err
	}
	defer c.Disconnect(100)
	for _, sub := range []string{"availability", "state", "info", "sim/outputs"} {
		if err := waitToken(s.patience, c.Publish("visitrooms/"+id+"/"+sub, 1, true, []byte{}), "decommission %s/%s: clear %s", s.ID, id, sub); err != nil {
			return err
		}
	}
	return nil
}
