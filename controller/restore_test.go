package controller_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

// snapshotV1 is a snapshot as version 1 wrote it (one panic line, under the
// input panic): a visit in overtime with an escalated time_up, a pressed
// panic and a fault of the panic line.
const snapshotV1 = `{
  "Version": 1,
  "Now": "2026-01-01T09:05:00Z",
  "Phase": 2,
  "Visit": {"ID": "v1", "StartedAt": "2026-01-01T08:00:00Z", "EndsAt": "2026-01-01T09:00:00Z", "Max": 7200000000000,
            "WarningsDone": 2, "Shown": 2, "DoorOpenedAt": "0001-01-01T00:00:00Z", "Armed": false, "WelfareDue": "0001-01-01T00:00:00Z"},
  "ServiceReason": "",
  "Levels": {"1": 1, "2": 1, "3": 2, "4": 2, "5": 1},
  "Seen": {"1": true, "2": true, "3": true, "4": true, "5": true},
  "Since": {"1": "2026-01-01T08:00:00Z", "2": "2026-01-01T08:00:00Z", "3": "2026-01-01T08:00:00Z", "4": "2026-01-01T09:04:00Z", "5": "2026-01-01T08:00:00Z"},
  "Alerts": [
    {"ID": "time_up-1", "Kind": 1, "Severity": 2, "RaisedAt": "2026-01-01T09:00:00Z", "Acked": false, "AckedAt": "0001-01-01T00:00:00Z",
     "ClearedAt": "0001-01-01T00:00:00Z", "Input": 0, "Source": "", "Detail": "", "Announcements": 5, "Next": "2026-01-01T09:06:00Z", "Reset": false, "ClearOnAck": false},
    {"ID": "panic-2", "Kind": 3, "Severity": 2, "RaisedAt": "2026-01-01T09:04:00Z", "Acked": false, "AckedAt": "0001-01-01T00:00:00Z",
     "ClearedAt": "0001-01-01T00:00:00Z", "Input": 0, "Source": "", "Detail": "", "Announcements": 1, "Next": "0001-01-01T00:00:00Z", "Reset": false, "ClearOnAck": false}
  ],
  "Seq": 12,
  "NextAlert": 2,
  "VacateSince": "0001-01-01T00:00:00Z",
  "HeldFaults": {},
  "Outputs": {"1": {"Output": 1, "Mode": 1, "Pulses": 0}, "2": {"Output": 2, "Mode": 2, "Pulses": 0}, "3": {"Output": 3, "Mode": 2, "Pulses": 0}}
}`

// TestRestoreVersion1 restores a room saved by the previous layout: the
// visit, the seq and the alerts go on; the panic line is the point "panic".
func TestRestoreVersion1(t *testing.T) {
	var snap controller.Snapshot
	require.NoError(t, json.Unmarshal([]byte(snapshotV1), &snap))
	p := testPolicy(t, "v1", nil)
	at := time.Date(2026, 1, 1, 9, 5, 30, 0, time.UTC)
	c, acts, err := controller.Restore(p, snap, at)
	require.NoError(t, err)
	require.NotEmpty(t, acts.Records)
	first := acts.Records[0]
	assert.Equal(t, uint64(13), first.Seq, "seq continues")
	assert.True(t, first.Resumed)

	st := c.State()
	assert.Equal(t, controller.PhaseOvertime, st.Phase)
	require.Len(t, st.Alerts, 2)
	assert.Equal(t, controller.DefaultPanicPoint, st.Alerts[1].Point, "the one panic line is the point panic")
	assert.True(t, st.Alerts[0].Escalates, "time_up escalates")
	assert.Equal(t, controller.ModePanic, st.Outputs[controller.OutputAlarmLight].Mode)
	assert.Equal(t, controller.ModeBlink, st.Outputs[controller.OutputReassurance].Mode)
	assert.Equal(t, 2, c.Snapshot().Version, "migrated")
	_, ok := c.Snapshot().Levels[controller.InputPanic]
	assert.False(t, ok, "the panic level moved to the points")

	// The point is still pressed. Released, acknowledged and reset on site
	// (the test policy's panic_reset is on_site), the panic clears.
	acts = c.Step(controller.InputChanged{At: at, Input: controller.InputPanic, Level: controller.LevelInactive})
	assert.Empty(t, records(flat(acts)), "a release records nothing")
	c.Step(controller.Command{At: at, RequestID: "a", Action: controller.ActionAckAlert, AlertID: "panic-2"})
	acts = c.Step(controller.InputChanged{At: at, Input: controller.InputStaff, Level: controller.LevelActive})
	recs := records(flat(acts))
	require.Len(t, recs, 1)
	require.Equal(t, controller.EventAlertCleared, recs[0].Type)
	assert.Equal(t, "panic-2", recs[0].Alert.ID)

	snap.Version = 7
	_, _, err = controller.Restore(p, snap, at)
	assert.ErrorContains(t, err, "snapshot version 7, want 2")
}

func records(acts []any) []controller.Record {
	var out []controller.Record
	for _, a := range acts {
		if r, ok := a.(controller.Record); ok {
			out = append(out, r)
		}
	}
	return out
}

// TestRestoreBeforeFunctionTests restores a version 2 snapshot written
// before rule 16 (no Tests): the room's first start counts from the
// restart, so no function_test_due is raised for time before it.
func TestRestoreBeforeFunctionTests(t *testing.T) {
	c, _, err := controller.New(testPolicy(t, "v2", nil), t0)
	require.NoError(t, err)
	data, err := json.Marshal(c.Snapshot())
	require.NoError(t, err)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &raw))
	require.Contains(t, raw, "Tests")
	delete(raw, "Tests")
	data, err = json.Marshal(raw)
	require.NoError(t, err)
	var snap controller.Snapshot
	require.NoError(t, json.Unmarshal(data, &snap))
	require.Equal(t, 2, snap.Version)

	p := testPolicy(t, "v2", []string{"function_test_every=720h"})
	at := t0.Add(1000 * time.Hour) // past t0 + 720h
	r, acts, err := controller.Restore(p, snap, at)
	require.NoError(t, err)
	for _, rec := range records(flat(acts)) {
		assert.NotEqual(t, controller.EventAlertRaised, rec.Type, "nothing fell due before the restart: %+v", rec)
	}
	assert.Equal(t, at, r.Snapshot().Tests.Since)
	d, ok := r.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, at.Add(720*time.Hour), d)
}
