package board_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

// runBoard runs a board until the returned stop is called.
func runBoard(t *testing.T, o board.Options) (*board.Board, func()) {
	t.Helper()
	b := board.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return b, stop
}

// logOf returns the board's alert log as it would reach a fresh page.
func logOf(t *testing.T, b *board.Board) []board.LogEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, _, err := b.Snapshot(ctx)
	require.NoError(t, err)
	var snap struct {
		Log []board.LogEntry `json:"log"`
	}
	require.NoError(t, json.Unmarshal(data, &snap))
	return snap.Log
}

func has(log []board.LogEntry, f func(board.LogEntry) bool) bool {
	for _, e := range log {
		if f(e) {
			return true
		}
	}
	return false
}

// A board that comes back with its state file asks the rooms to replay
// what the broker did not keep for it: an alert raised and acknowledged
// while it was away reaches its log (marked late) with who acknowledged it.
func TestBoardResumesFromItsMarksAfterARestart(t *testing.T) {
	url := mqtttest.Embedded(t)
	state := filepath.Join(t.TempDir(), "marks.json")
	r := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-1", Policy: "italy"})
	guard, err := roomclient.Dial(context.Background(), roomclient.Options{Broker: url, ClientID: "guard-7", Operator: "guard-7", CleanSession: true})
	require.NoError(t, err)
	defer guard.Close()
	send := func(cmd roomclient.Command) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		reply, err := guard.Send(ctx, "room-1", cmd)
		require.NoError(t, err)
		require.NoError(t, reply.Err())
	}

	// The first board sees the room start and a visit.
	first, stop := runBoard(t, board.Options{Broker: url, Username: "station-a", StateFile: state})
	send(roomclient.StartVisit("v-1", time.Hour))
	require.Eventually(t, func() bool {
		v, ok := first.View(context.Background(), "room-1")
		return ok && v.Phase == "in_visit"
	}, 20*time.Second, 20*time.Millisecond)
	stop()
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"room-1":{"epoch":"`)

	// While no board runs: a panic, acknowledged by guard-7.
	require.NoError(t, r.Sim().SetPoint("panic", controller.LevelActive))
	var id string
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reply, err := guard.Send(ctx, "room-1", roomclient.GetState())
		if err != nil || reply.State == nil {
			return false
		}
		for _, a := range reply.State.Alerts {
			if a.Kind == "panic" {
				id = a.ID
			}
		}
		return id != ""
	}, 20*time.Second, 50*time.Millisecond)
	send(roomclient.AckAlert(id))

	// A board under another broker identity has no session queue: only the
	// marks can bring the records back.
	second, _ := runBoard(t, board.Options{Broker: url, Username: "station-b", StateFile: state})
	require.Eventually(t, func() bool {
		return has(logOf(t, second), func(e board.LogEntry) bool {
			return e.Type == "alert_acked" && e.Alert != nil && e.Alert.ID == id && e.By == "guard-7" && e.Late
		})
	}, 30*time.Second, 50*time.Millisecond, "the acknowledgement made while the board was away, replayed")
	log := logOf(t, second)
	assert.True(t, has(log, func(e board.LogEntry) bool { return e.Type == "alert_raised" && e.Alert.ID == id && e.Late }))
	v, ok := second.View(context.Background(), "room-1")
	require.True(t, ok)
	require.NotEmpty(t, v.Alerts)
	assert.Equal(t, "guard-7", v.Alerts[0].AckedBy, "who acknowledged is known after the restart")

	// Without the state file the same board has nothing to go on.
	third, _ := runBoard(t, board.Options{Broker: url, Username: "station-c"})
	require.Eventually(t, func() bool {
		v, ok := third.View(context.Background(), "room-1")
		return ok && len(v.Alerts) > 0
	}, 20*time.Second, 20*time.Millisecond)
	v, _ = third.View(context.Background(), "room-1")
	assert.False(t, v.Alerts[0].AckedBySeen, "the control: no marks, no replay, no name")
}

// An unreadable state file does not keep the board from running: it says so.
func TestBoardRunsWithAnUnreadableStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "marks.json")
	require.NoError(t, os.WriteFile(state, []byte("{half a file"), 0o600))
	b, _ := runBoard(t, board.Options{Broker: "tcp://127.0.0.1:1", StateFile: state})
	log := logOf(t, b)
	require.Len(t, log, 1)
	assert.Equal(t, "state_lost", log[0].Type)
	assert.True(t, strings.Contains(log[0].Detail, "may be missing"))
}
