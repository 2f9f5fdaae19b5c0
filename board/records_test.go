package board

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
)

func ev(room, alert, typ, by string, at time.Time) RecordEvent {
	return RecordEvent{At: contract.T(at), Room: room, Epoch: "e1", Alert: alert, Kind: "panic", Severity: "critical", Type: typ, By: by}
}

func TestRecordsTimesPerRoomAndShift(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRecords(RecordsOptions{Dir: dir, Location: time.UTC})
	require.NoError(t, err)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(h, m, s int) time.Time {
		return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	// room-1, night shift (22:00 the day before): acknowledged in 40 s,
	// reset at the room 5 minutes later.
	require.NoError(t, r.Add(ev("room-1", "panic-1", "raised", "", at(3, 0, 0))))
	require.NoError(t, r.Add(ev("room-1", "panic-1", "repeated", "", at(3, 0, 30))))
	require.NoError(t, r.Add(ev("room-1", "panic-1", "acked", "guard-7", at(3, 0, 40))))
	cl := ev("room-1", "panic-1", "cleared", "on_site", at(3, 5, 40))
	cl.Reset = true
	require.NoError(t, r.Add(cl))
	// room-2, morning: a door bolted and drawn back before anyone acted (a
	// nuisance), and a time_up acknowledged after 2 minutes.
	d := ev("room-2", "door_locked-1", "raised", "", at(9, 0, 0))
	d.Kind = "door_locked"
	require.NoError(t, r.Add(d))
	d.Type, d.At = "cleared", contract.T(at(9, 0, 20))
	require.NoError(t, r.Add(d))
	u := ev("room-2", "time_up-2", "raised", "", at(10, 0, 0))
	u.Kind, u.Severity = "time_up", "warning"
	require.NoError(t, r.Add(u))
	u.Type, u.Severity = "escalated", "critical"
	u.At = contract.T(at(10, 2, 0))
	require.NoError(t, r.Add(u))
	u.Type, u.By, u.At = "acked", "=cmd|'/c calc'!A1", contract.T(at(10, 2, 0))
	require.NoError(t, r.Add(u))
	require.NoError(t, r.Close())

	// Read back from the directory.
	r, err = OpenRecords(RecordsOptions{Dir: dir, Location: time.UTC})
	require.NoError(t, err)
	defer r.Close()
	s := r.Summary(day, day.AddDate(0, 0, 1))
	require.Len(t, s.Alerts, 3)
	p := s.Alerts[0]
	assert.Equal(t, "2026-02-28T22:00", p.Shift)
	assert.Equal(t, 40.0, p.AckS)
	assert.Equal(t, 340.0, p.ClearS)
	assert.Equal(t, "guard-7", p.AckedBy)
	assert.True(t, p.Reset)
	assert.Equal(t, 1, p.Repeats)
	assert.False(t, p.Nuisance)
	assert.True(t, s.Alerts[1].Nuisance, "cleared by itself before anyone acted")
	assert.Equal(t, -1.0, s.Alerts[1].AckS)
	assert.Equal(t, "critical", s.Alerts[2].Severity, "the highest severity reached")
	assert.Equal(t, 120.0, s.Alerts[2].AckS)
	assert.Equal(t, []RoomShift{
		{Shift: "2026-02-28T22:00", Room: "room-1", Alerts: 1, Acked: 1, AckP50S: 40, AckMaxS: 40},
		{Shift: "2026-03-01T06:00", Room: "room-2", Alerts: 2, Acked: 1, Nuisance: 1, AckP50S: 120, AckMaxS: 120},
	}, s.Shifts)
	assert.Equal(t, []RoomTotal{{Room: "room-1", Alerts: 1}, {Room: "room-2", Alerts: 2, Nuisance: 1, Rate: 0.5}}, s.Rooms)

	var buf bytes.Buffer
	require.NoError(t, WriteCSV(&buf, s.Alerts))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4)
	assert.Equal(t, RecordsCSVHeader, rows[0])
	assert.Equal(t, []string{"room-1", "2026-02-28T22:00", "panic-1", "panic", "critical", "2026-03-01T03:00:00.000Z",
		"2026-03-01T03:00:40.000Z", "guard-7", "40.0", "2026-03-01T03:05:40.000Z", "on_site", "true", "340.0", "1", "0", "false"}, rows[1])
	assert.Equal(t, "'=cmd|'/c calc'!A1", rows[3][7], "a spreadsheet never reads a cell as a formula")
	for _, row := range rows {
		assert.NotContains(t, strings.Join(row, ","), "present", "nothing about the occupants")
	}
}

// The file is bounded: past MaxBytes it rotates, and the oldest goes.
func TestRecordsAreBounded(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRecords(RecordsOptions{Dir: dir, MaxBytes: 2000, MaxAlerts: 10, Location: time.UTC})
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, r.Add(ev("room-1", "panic-"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)), "raised", "", t0.Add(time.Duration(i)*time.Minute))))
	}
	require.NoError(t, r.Close())
	var total int64
	for _, n := range []string{"records.jsonl", "records.1.jsonl"} {
		st, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), int64(2000))
		total += st.Size()
	}
	assert.Greater(t, total, int64(2000))
	assert.Len(t, r.Between(t0, t0.Add(24*time.Hour)), 10, "memory keeps MaxAlerts")
	assert.Equal(t, t0.Add(99*time.Minute), r.Between(t0, t0.Add(24*time.Hour))[9].RaisedAt.Time)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "records.jsonl"), []byte("not json\n"), 0o600))
	r, err = OpenRecords(RecordsOptions{Dir: dir})
	require.NoError(t, err, "an unreadable line does not stop the board")
	assert.Equal(t, 1, r.Skipped)
	require.NoError(t, r.Close())
}

func TestParseShifts(t *testing.T) {
	s, err := ParseShifts("22:00, 06:00,14:00")
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{6 * time.Hour, 14 * time.Hour, 22 * time.Hour}, s)
	for _, bad := range []string{"", "6", "25:00", "06:00,06:00"} {
		_, err := ParseShifts(bad)
		assert.Error(t, err, bad)
	}
}
