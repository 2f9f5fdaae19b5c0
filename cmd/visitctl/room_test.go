package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/link/outbox"
	"github.com/roomd/roomd/sim"
)

// testRoom is a real room run in-process: the simulator backend, the
// daemon loop and the MQTT link client, joined by roomLink (the part of
// "roomd run" that turns link messages into loop commands and sim inputs).
type testRoom struct {
	sim  *sim.Room
	done chan error
}

// startRoom runs room under base against the broker at url until the test ends.
func startRoom(t *testing.T, url, base, room string) *testRoom {
	t.Helper()
	policy, err := configs.Preset("italy")
	require.NoError(t, err)
	backend, err := sim.New(sim.DefaultSpec(), nil)
	require.NoError(t, err)
	dir := t.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Limits{})
	require.NoError(t, err)
	topics, err := link.NewTopics(base, room)
	require.NoError(t, err)
	client, err := link.New(link.Options{
		Broker: url, ClientID: "roomd-" + room, Topics: topics, Outbox: ob, SimMode: true,
		Keepalive: time.Second,
	}, nil)
	require.NoError(t, err)
	replies, err := link.OpenReplies("", 0)
	require.NoError(t, err)
	rl := &roomLink{c: client, room: room, sim: backend, replies: replies, cmds: make(chan controller.Command, 16)}
	go rl.pump()

	ctx, cancel := context.WithCancel(context.Background())
	tr := &testRoom{sim: backend, done: make(chan error, 1)}
	go func() {
		tr.done <- daemon.Run(ctx, daemon.Options{Room: room, Policy: policy, StateDir: dir, Heartbeat: 2 * time.Second},
			daemon.Deps{Inputs: backend, Outputs: backend, Link: rl, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-tr.done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("room did not stop")
		}
		require.NoError(t, backend.Close())
		require.NoError(t, ob.Close())
	})
	return tr
}

// roomLink adapts link.Client to daemon.Link.
type roomLink struct {
	c       *link.Client
	room    string
	sim     *sim.Room
	replies *link.Replies
	cmds    chan controller.Command
}

func (l *roomLink) pump() {
	defer close(l.cmds)
	for m := range l.c.Incoming() {
		switch m.Kind {
		case link.KindCommand:
			id := link.PeekRequestID(m.Payload, 0)
			if r, ok := l.replies.Lookup(id); ok {
				_ = l.c.Reply(id, r)
				continue
			}
			cmd, cerr := link.DecodeCommand(m.Payload, 0, time.Now())
			if cerr != nil {
				r := link.EncodeRefusal(cerr)
				_ = l.replies.Store(id, r)
				_ = l.c.Reply(id, r)
				continue
			}
			l.cmds <- cmd
		case link.KindSimSet:
			_ = applySim(l.sim, m.Payload)
		}
	}
}

// applySim applies a sim/set object to the simulated room.
func applySim(r *sim.Room, payload []byte) error {
	var set map[string]json.RawMessage
	if err := json.Unmarshal(payload, &set); err != nil {
		return err
	}
	for k, raw := range set {
		in, err := controller.ParseInput(k)
		var s string
		var b bool
		switch {
		case k == "fault" || k == "heal":
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			in, err := controller.ParseInput(s)
			if err != nil {
				return err
			}
			if k == "fault" {
				err = r.Fault(in)
			} else {
				err = r.Heal(in)
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case json.Unmarshal(raw, &s) == nil:
			lv, err := in.ParseLevel(s)
			if err != nil {
				return err
			}
			if err := r.SetInput(in, lv); err != nil {
				return err
			}
		case json.Unmarshal(raw, &b) == nil:
			lv := controller.LevelInactive
			if b {
				lv = controller.LevelActive
			}
			if err := r.SetInput(in, lv); err != nil {
				return err
			}
		default:
			return fmt.Errorf("sim key %s: bad value %s", k, raw)
		}
	}
	return nil
}

func (l *roomLink) Commands() <-chan controller.Command { return l.cmds }
func (l *roomLink) Publish(rec controller.Record) error { return l.c.Publish(rec) }
func (l *roomLink) PublishState(st controller.State) error {
	l.c.PublishState(link.EncodeState(l.room, st))
	return nil
}
func (l *roomLink) Reply(rep controller.Reply, st controller.State) error {
	payload := link.EncodeReply(l.room, rep, st)
	if err := l.replies.Store(rep.RequestID, payload); err != nil {
		return err
	}
	return l.c.Reply(rep.RequestID, payload)
}
func (l *roomLink) Close(ctx context.Context) error { return l.c.Close(ctx) }
