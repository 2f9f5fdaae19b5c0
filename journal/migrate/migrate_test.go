package migrate_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/journal/migrate"
)

// The fixture's times, from its state.json: the controller's last step and
// the time axis when the room was killed.
var (
	legacyStep = time.Date(2026, 11, 28, 21, 20, 40, 425372101, time.UTC)
	legacyAxis = time.Date(2026, 11, 28, 21, 20, 40, 425614149, time.UTC)
)

// The outbox entries the broker never acknowledged, as roomd wrote them
// before the journal (seq 1 and 2 were acknowledged).
var legacyUnacked = []struct {
	topic   string
	seq     uint64
	payload string
}{
	{"visitrooms/room-1/events", 3, `{"room":"room-1","seq":3,"at":"2026-11-28T21:20:10.424Z","type":"visit_warning","visit_id":"v-2026-0042","remaining_s":30,"warning":1}`},
	{"visitrooms/room-1/events", 4, `{"room":"room-1","seq":4,"at":"2026-11-28T21:20:40.424Z","type":"alert_raised","alert":{"id":"time_up-1","kind":"time_up","severity":"warning","raised_at":"2026-11-28T21:20:40.424Z","acked":false,"announcements":1}}`},
	{"visitrooms/room-1/alerts", 4, `{"room":"room-1","seq":4,"at":"2026-11-28T21:20:40.424Z","type":"alert_raised","alert":{"id":"time_up-1","kind":"time_up","severity":"warning","raised_at":"2026-11-28T21:20:40.424Z","acked":false,"announcements":1}}`},
}

// The reply to book-1 in the fixture's replies.json.
const legacyBook1 = `{"request_id":"book-1","action":"start_visit","ok":true,"state":{"version":1,"room":"room-1","seq":2,"at":"2026-11-28T21:20:00.424Z","phase":"in_visit","visit":{"id":"v-2026-0042","started_at":"2026-11-28T21:20:00.424Z","ends_at":"2026-11-28T21:20:40.424Z","remaining_s":40,"max_s":7200},"door":"closed","lock":"unlocked","alerts":[],"service_reason":"","outputs":{"alarm":"off","in_use":"on","warning":"off"}}}`

// TestRunTakesOverTheEarlierLayout migrates testdata/legacy-6c65459, a state
// directory written by roomd before the journal, and reads the journal it
// produced: the undelivered messages in order with the journal's epoch, the
// visit and seq of state.json, the reply to book-1, the old files set aside.
// The journal runs on the fixture's own time, so the test passes on any date.
func TestRunTakesOverTheEarlierLayout(t *testing.T) {
	src := filepath.Join("testdata", "legacy-6c65459")
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
	require.NoError(t, os.Remove(filepath.Join(dir, "README.md"))) // not part of the layout
	jdir := filepath.Join(dir, "journal")
	opt := journal.Options{Now: func() time.Time { return legacyAxis.Add(30 * time.Second) }}

	rep, err := migrate.Run(dir, jdir, "room-1", opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, migrate.Report{Migrated: true, VisitRunning: true, Seq: 4, Messages: 3, Records: 0, Replies: 1}, rep,
		"seq 4 of state.json's unsent records is already among the outbox's messages")

	// The old files: state.json and replies.json set aside unchanged, the
	// outbox gone, no migration left half done.
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, n := range names {
		got = append(got, n.Name())
	}
	assert.Equal(t, []string{"journal", "replies.json.migrated", "state.json.migrated"}, got)
	for _, f := range []string{"state.json", "replies.json"} {
		want, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		kept, err := os.ReadFile(filepath.Join(dir, f+".migrated"))
		require.NoError(t, err)
		assert.Equal(t, want, kept, f)
	}

	j, err := journal.Open(jdir, opt)
	require.NoError(t, err)
	defer j.Close()
	rec := j.Recovered()
	assert.False(t, rec.Fresh)
	assert.False(t, rec.NewEpoch, rec.Reason)
	assert.False(t, rec.Damaged(), "%v", rec.Damage)
	assert.Equal(t, 2, rec.Entries)
	assert.Equal(t, uint64(1), j.First())
	assert.Equal(t, uint64(2), j.Last())
	assert.Equal(t, journal.Pos{LSN: 1}, j.Acked(), "nothing taken over is acknowledged yet")
	ep := j.Epoch()

	// Entry 1: the undelivered messages, verbatim but for the epoch.
	e1, err := j.Get(1)
	require.NoError(t, err)
	assert.Equal(t, ep, e1.Epoch)
	assert.True(t, e1.At.Equal(legacyStep), "%v", e1.At)
	assert.Empty(t, e1.Records)
	assert.Nil(t, e1.Snapshot)
	require.Len(t, e1.Messages, len(legacyUnacked))
	for i, want := range legacyUnacked {
		m := e1.Messages[i]
		assert.Equal(t, want.topic, m.Topic, "message %d", i)
		assert.Equal(t, want.seq, m.Seq, "message %d", i)
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(m.Payload, &fields), "message %d", i)
		assert.JSONEq(t, `"`+ep.String()+`"`, string(fields["epoch"]), "message %d", i)
		delete(fields, "epoch")
		rest, err := json.Marshal(fields)
		require.NoError(t, err)
		assert.JSONEq(t, want.payload, string(rest), "message %d", i)
	}

	// Entry 2: state.json's state, and the reply to book-1 kept to answer
	// a redelivery.
	e2, err := j.Get(2)
	require.NoError(t, err)
	assert.Equal(t, ep, e2.Epoch)
	assert.True(t, e2.At.Equal(legacyStep), "%v", e2.At)
	assert.Empty(t, e2.Records, "the unsent time_up record went out with the outbox's")
	assert.Empty(t, e2.Messages)
	require.NotNil(t, e2.Snapshot)
	snap := e2.Snapshot
	assert.Equal(t, uint64(4), snap.Seq)
	assert.Equal(t, controller.PhaseOvertime, snap.Phase)
	assert.True(t, snap.Now.Equal(legacyStep), "%v", snap.Now)
	require.NotNil(t, snap.Visit)
	assert.Equal(t, "v-2026-0042", snap.Visit.ID)
	require.Len(t, snap.Alerts, 1)
	assert.Equal(t, controller.AlertTimeUp, snap.Alerts[0].Kind)
	require.Len(t, e2.Cached, 1)
	assert.Equal(t, "book-1", e2.Cached[0].RequestID)
	assert.Empty(t, e2.Cached[0].Operator, "the booking system's command")
	assert.JSONEq(t, legacyBook1, string(e2.Cached[0].Payload))

	latest, at := j.Latest()
	require.NotNil(t, latest)
	assert.Equal(t, uint64(4), latest.Seq)
	assert.True(t, at.Equal(legacyStep), "%v", at)
	first, last, ok := j.SeqRange(ep)
	assert.True(t, ok)
	assert.Equal(t, [2]uint64{3, 4}, [2]uint64{first, last})

	// The head carries the room and its time axis.
	var blob timebase.HeadBlob
	require.NoError(t, json.Unmarshal(j.Blob(), &blob))
	assert.Equal(t, "room-1", blob.Room)
	assert.True(t, blob.Clock.Axis.Equal(legacyAxis), "%v", blob.Clock.Axis)

	// Once the journal exists, Run leaves the directory alone.
	again, err := migrate.Run(dir, jdir, "room-1", opt, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, migrate.Report{}, again)
}
