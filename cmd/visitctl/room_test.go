package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
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
	// The same adapter "roomd run" uses, with the sim's own control parser.
	rl := daemon.NewMQTTLink(client, daemon.MQTTLinkOptions{Room: room, SimSet: func(p []byte) error {
		c, err := sim.ParseControl(p)
		if err != nil {
			return err
		}
		return backend.Apply(c)
	}})
	go rl.Run()

	ctx, cancel := context.WithCancel(context.Background())
	tr := &testRoom{sim: backend, done: make(chan error, 1)}
	go func() {
		tr.done <- daemon.Run(ctx, daemon.Options{Room: room, Policy: policy, StateDir: dir, Heartbeat: 2 * time.Second},
			daemon.Deps{Inputs: backend, Outputs: backend, Link: rl, Faults: rl.Faults(), Logger: slog.New(slog.DiscardHandler)})
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
