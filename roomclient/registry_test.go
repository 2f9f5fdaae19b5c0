package roomclient

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)

func infoMsg(room string, heartbeatS int, retained bool, at time.Time) Message {
	p := fmt.Appendf(nil, `{"version":2,"room":%q,"roomd":"1.4.0","backend":"gpio","epoch":"00000000000000a1","policy":{"name":"italy","max_duration_s":7200,"extension":"up_to_max","warnings_s":[600,120]},"heartbeat_s":%d,"keepalive_s":5,"retention_s":86400,"max_command_bytes":4096,"inputs":["door"],"panic_points":[],"outputs":[],"supervised":[],"config_hash":"ab","clock_synced":true,"last_function_test":null}`, room, heartbeatS)
	return Message{Kind: KindInfo, Room: room, Retained: retained, Arrived: at, Payload: p}
}

func availMsg(room, v string, retained bool, at time.Time) Message {
	return Message{Kind: KindAvailability, Room: room, Retained: retained, Arrived: at, Payload: []byte(v)}
}

func stateMsg(room string, seq int, stateAt time.Time, retained bool, at time.Time) Message {
	p := fmt.Appendf(nil, `{"version":2,"room":%q,"epoch":"00000000000000a1","seq":%d,"at":%q,"phase":"idle","visit":null,"door":"closed","lock":"unlocked","alerts":[],"service_reason":"","outputs":{}}`,
		room, seq, stateAt.Format(time.RFC3339Nano))
	return Message{Kind: KindState, Room: room, Retained: retained, Arrived: at, Payload: p}
}

func TestRegistryRoomsFromRetainedTopics(t *testing.T) {
	g := NewRegistry()
	// What a new subscriber gets: the retained topics, some old.
	g.Apply(infoMsg("room-b", 30, true, t0))
	g.Apply(availMsg("room-b", "online", true, t0))
	g.Apply(stateMsg("room-b", 7, t0.Add(-10*time.Second), true, t0))
	g.Apply(infoMsg("room-a", 10, true, t0))
	g.Apply(availMsg("room-a", "offline", true, t0))
	g.Apply(stateMsg("room-a", 3, t0.Add(-3*time.Hour), true, t0))
	g.Apply(availMsg("room-c", "online", true, t0))
	g.Apply(Message{Kind: KindEvent, Room: "room-d", Arrived: t0, Payload: []byte(`{}`)}) // not a registry topic

	rooms := g.Rooms(t0)
	require.Len(t, rooms, 3)
	a, b, c := rooms[0], rooms[1], rooms[2]
	assert.Equal(t, "room-a", a.ID)
	assert.Equal(t, Offline, a.Availability)
	assert.False(t, a.Stale, "an offline room is offline, not stale")
	assert.Equal(t, t0.Add(-3*time.Hour), a.LastState, "a retained state is judged by its own time")
	assert.Equal(t, t0.Add(-3*time.Hour), a.LastSeen)
	require.NotNil(t, a.Info)
	assert.Equal(t, "1.4.0", a.Info.Roomd)
	assert.Equal(t, int64(7200), a.Info.Policy.MaxDurationS)
	assert.Equal(t, 10*time.Second, a.Heartbeat())

	assert.Equal(t, Online, b.Availability)
	assert.Equal(t, "idle", b.Phase)
	assert.Equal(t, uint64(7), b.Seq)
	assert.False(t, b.Stale)
	assert.Equal(t, Online, c.Availability)
	assert.Nil(t, c.Info)
	assert.Equal(t, contract.DefaultHeartbeat, c.Heartbeat())
	assert.True(t, c.LastSeen.IsZero(), "nothing live heard yet")

	// room-b: stale once no state came for StaleFactor heartbeats.
	b, _ = g.Room("room-b", t0.Add(-10*time.Second+StaleFactor*30*time.Second))
	assert.False(t, b.Stale)
	b, _ = g.Room("room-b", t0.Add(-10*time.Second+StaleFactor*30*time.Second+time.Millisecond))
	assert.True(t, b.Stale)
	// A live state makes it current again; an older one delivered late
	// changes nothing.
	g.Apply(stateMsg("room-b", 8, t0.Add(-time.Hour), false, t0.Add(time.Minute)))
	b, _ = g.Room("room-b", t0.Add(90*time.Second))
	assert.False(t, b.Stale, "a live state is current whatever the room's clock says")
	assert.Equal(t, t0.Add(time.Minute), b.LastState)
	g.Apply(stateMsg("room-b", 6, t0.Add(2*time.Minute), false, t0.Add(2*time.Minute)))
	b, _ = g.Room("room-b", t0.Add(2*time.Minute))
	assert.Equal(t, uint64(8), b.Seq)

	// A live availability counts as seen.
	g.Apply(availMsg("room-c", "offline", false, t0.Add(5*time.Minute)))
	c, _ = g.Room("room-c", t0.Add(6*time.Minute))
	assert.Equal(t, Offline, c.Availability)
	assert.Equal(t, t0.Add(5*time.Minute), c.LastSeen)
}

func TestRegistryDecommissionedRoomLeaves(t *testing.T) {
	g := NewRegistry()
	g.Apply(infoMsg("room-a", 30, true, t0))
	g.Apply(availMsg("room-a", "offline", true, t0))
	g.Apply(stateMsg("room-a", 3, t0, true, t0))
	clear := func(k Kind) { g.Apply(Message{Kind: k, Room: "room-a", Arrived: t0}) }
	clear(KindInfo)
	r, ok := g.Room("room-a", t0)
	require.True(t, ok)
	assert.Nil(t, r.Info)
	clear(KindState)
	clear(KindAvailability)
	_, ok = g.Room("room-a", t0)
	assert.False(t, ok)
	assert.NotNil(t, g.Rooms(t0), "never nil")
	assert.Empty(t, g.Rooms(t0))
	// Clearing a topic of an unknown room does not create it.
	clear(KindInfo)
	assert.Empty(t, g.Rooms(t0))
}

func TestRegistryCountsUnreadable(t *testing.T) {
	g := NewRegistry()
	g.Apply(Message{Kind: KindInfo, Room: "room-a", Arrived: t0, Payload: []byte("{broken")})
	g.Apply(Message{Kind: KindState, Room: "room-a", Arrived: t0, Payload: []byte(`{"seq":"x"}`)})
	assert.Equal(t, 2, g.Unreadable)
	assert.Empty(t, g.Rooms(t0), "an unreadable message alone makes no room")
}

func TestAlertBeforeCriticalThenWarningThenOldest(t *testing.T) {
	assert.True(t, AlertBefore("critical", t0.Add(time.Hour), "warning", t0), "critical before an older warning")
	assert.True(t, AlertBefore("warning", t0.Add(time.Hour), "info", t0), "warning before an older info")
	assert.True(t, AlertBefore("warning", t0, "warning", t0.Add(time.Second)), "the older first")
	assert.False(t, AlertBefore("warning", t0.Add(time.Second), "warning", t0))
	assert.False(t, AlertBefore("info", t0, "critical", t0.Add(time.Hour)))
}

func TestActiveAlertsStateUpdatedByLaterRecords(t *testing.T) {
	at := func(d time.Duration) contract.Time { return contract.T(t0.Add(d)) }
	state := &contract.StateMessage{Alerts: []contract.AlertMessage{
		{ID: "time_up-1", Kind: "time_up", Severity: "warning", RaisedAt: at(0)},
		{ID: "panic-1", Kind: "panic", Severity: "critical", RaisedAt: at(time.Minute)},
	}}
	later := []contract.EventMessage{
		{Type: "alert_acked", Alert: &contract.AlertMessage{ID: "panic-1", Kind: "panic", Severity: "critical", RaisedAt: at(time.Minute), Acked: true}},
		{Type: "alert_raised", Alert: &contract.AlertMessage{ID: "door_locked-1", Kind: "door_locked", Severity: "critical", RaisedAt: at(2 * time.Minute)}},
		{Type: "alert_cleared", Alert: &contract.AlertMessage{ID: "time_up-1", Kind: "time_up", Severity: "warning", RaisedAt: at(0)}},
		{Type: "visit_extended"},
	}
	got := ActiveAlerts(state, later)
	ids := make([]string, 0, len(got))
	for _, a := range got {
		ids = append(ids, a.ID)
	}
	require.Equal(t, []string{"panic-1", "door_locked-1"}, ids, "cleared gone, critical oldest first")
	assert.True(t, got[0].Acked, "the later record replaces the state's")
	assert.NotNil(t, ActiveAlerts(nil, nil), "never nil")
}
