package board

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func state(room, phase string, seq uint64, alerts ...contract.AlertMessage) *contract.StateMessage {
	s := &contract.StateMessage{Version: 2, Room: room, Epoch: "00000000000000aa", Seq: seq, At: contract.T(t0), Phase: phase,
		Door: "closed", Lock: "unlocked", Presence: "present", Alerts: alerts}
	if phase == "in_visit" || phase == "overtime" {
		s.Visit = &contract.VisitMessage{ID: "v-1", StartedAt: contract.T(t0), EndsAt: contract.T(t0.Add(time.Hour)), MaxS: 7200}
	}
	return s
}

func alert(id, kind, severity string, acked bool, raised time.Time) contract.AlertMessage {
	return contract.AlertMessage{ID: id, Kind: kind, Severity: severity, Acked: acked, RaisedAt: contract.T(raised), Announcements: 1}
}

func online(ids ...string) []roomclient.Room {
	var out []roomclient.Room
	for _, id := range ids {
		out = append(out, roomclient.Room{ID: id, Availability: roomclient.Online})
	}
	return out
}

func TestPresenceNeverShownDuringAVisitOrAnInspection(t *testing.T) {
	for phase, shown := range map[string]bool{"idle": true, "out_of_service": true, "in_visit": false,
		"overtime": false, "inspection": false, "": false, "some_future_phase": false} {
		m := NewModel()
		require.True(t, m.ApplyState("room-1", state("room-1", phase, 1)))
		v, ok := m.View("room-1")
		require.True(t, ok)
		if shown {
			assert.Equal(t, "present", v.Presence, phase)
		} else {
			assert.Empty(t, v.Presence, phase)
			b, err := json.Marshal(v)
			require.NoError(t, err)
			assert.NotContains(t, string(b), "presence", "phase %q: the tile's JSON names no presence", phase)
			assert.NotContains(t, string(b), "present", phase)
		}
	}
}

func TestTilesSortedByUrgency(t *testing.T) {
	m := NewModel()
	m.ApplyState("a-idle", state("a-idle", "idle", 1))
	m.ApplyState("b-visit", state("b-visit", "in_visit", 1))
	m.ApplyState("c-over", state("c-over", "overtime", 1))
	m.ApplyState("d-oos", state("d-oos", "out_of_service", 1))
	m.ApplyState("e-warn", state("e-warn", "overtime", 1, alert("time_up-1", "time_up", "warning", false, t0)))
	m.ApplyState("f-crit-new", state("f-crit-new", "in_visit", 1, alert("panic-2", "panic", "critical", false, t0.Add(time.Minute))))
	m.ApplyState("g-crit-old", state("g-crit-old", "in_visit", 1, alert("panic-1", "panic", "critical", false, t0)))
	m.ApplyState("h-acked", state("h-acked", "in_visit", 1, alert("panic-1", "panic", "critical", true, t0)))
	m.ApplyState("i-offline", state("i-offline", "in_visit", 1))
	m.ApplyState("j-offline-crit", state("j-offline-crit", "idle", 1, alert("panic-1", "panic", "critical", false, t0.Add(2*time.Minute))))
	m.ApplyState("k-stale", state("k-stale", "idle", 1))
	reg := online("a-idle", "b-visit", "c-over", "d-oos", "e-warn", "f-crit-new", "g-crit-old", "h-acked")
	reg = append(reg, roomclient.Room{ID: "i-offline", Availability: roomclient.Offline},
		roomclient.Room{ID: "j-offline-crit", Availability: roomclient.Offline},
		roomclient.Room{ID: "k-stale", Availability: roomclient.Online, Stale: true})
	m.ApplyRegistry(reg)
	m.ApplyState("l-unknown", state("l-unknown", "idle", 1)) // never in the registry

	var order []string
	var cats []Category
	for _, v := range m.Views() {
		order = append(order, v.Room)
		cats = append(cats, v.Category)
	}
	assert.Equal(t, []string{
		"g-crit-old", "f-crit-new", "j-offline-crit", // unacknowledged critical, oldest first, offline or not
		"e-warn",             // an unacknowledged warning
		"c-over",             // overtime
		"b-visit", "h-acked", // visits (an acknowledged alert no longer lifts a room)
		"a-idle", "d-oos", // idle, out of service
		"i-offline", "k-stale", "l-unknown", // offline, stale, never heard of
	}, order)
	assert.Equal(t, []Category{CatCritical, CatCritical, CatCritical, CatWarning, CatOvertime, CatVisit, CatVisit,
		CatIdle, CatOutOfService, CatOffline, CatOffline, CatOffline}, cats)
	v, _ := m.View("k-stale")
	assert.Equal(t, LinkStale, v.Link)
	v, _ = m.View("l-unknown")
	assert.Equal(t, LinkUnknown, v.Link)
}

func record(room string, seq uint64, typ, by string, a contract.AlertMessage, verdict roomclient.Verdict) roomclient.Record {
	return roomclient.Record{Room: room, Verdict: verdict, EventMessage: contract.EventMessage{Room: room,
		Epoch: "00000000000000aa", Seq: seq, At: contract.T(t0), Type: typ, By: by, Alert: &a}}
}

func TestAlertRecordsUpdateTheTileAndNameWhoAcknowledged(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry(online("room-1"))
	m.ApplyState("room-1", state("room-1", "in_visit", 4))

	// A panic raised: the record shows before the state that carries it.
	p := alert("panic-5", "panic", "critical", false, t0)
	p.Point = "bed"
	le := m.ApplyRecord(record("room-1", 5, "alert_raised", "", p, roomclient.New))
	require.NotNil(t, le)
	require.Equal(t, "alert_raised", le.Type)
	assert.Equal(t, "bed", le.Alert.Point)
	v, _ := m.View("room-1")
	require.Len(t, v.Alerts, 1)
	assert.Equal(t, CatCritical, v.Category)

	// Acknowledged by guard-7: the tile says so, before and after the state.
	p.Acked, p.AckedAt = true, contract.T(t0.Add(time.Minute))
	le = m.ApplyRecord(record("room-1", 6, "alert_acked", "guard-7", p, roomclient.New))
	assert.Equal(t, "guard-7", le.By)
	v, _ = m.View("room-1")
	require.Len(t, v.Alerts, 1)
	assert.True(t, v.Alerts[0].Acked)
	assert.Equal(t, "guard-7", v.Alerts[0].AckedBy)
	assert.True(t, v.Alerts[0].AckedBySeen)
	assert.Equal(t, CatVisit, v.Category)
	m.ApplyState("room-1", state("room-1", "in_visit", 6, p))
	v, _ = m.View("room-1")
	assert.Equal(t, "guard-7", v.Alerts[0].AckedBy)

	// Reannounced: unacknowledged again, and nobody's acknowledgement.
	p.Acked, p.AckedAt = false, contract.Time{}
	m.ApplyRecord(record("room-1", 7, "alert_reannounced", "", p, roomclient.New))
	v, _ = m.View("room-1")
	assert.False(t, v.Alerts[0].Acked)
	assert.Empty(t, v.Alerts[0].AckedBy)
	assert.Equal(t, CatCritical, v.Category)
	m.ApplyState("room-1", state("room-1", "in_visit", 7, p))

	// An acknowledgement this board never saw is told apart.
	q := alert("door_locked-8", "door_locked", "critical", true, t0)
	m.ApplyState("room-1", state("room-1", "in_visit", 9, p, q))
	v, _ = m.View("room-1")
	require.Len(t, v.Alerts, 2)
	for _, a := range v.Alerts {
		if a.ID == "door_locked-8" {
			assert.False(t, a.AckedBySeen)
		}
	}

	// A record older than the state (a replay) goes to the log only.
	old := alert("panic-5", "panic", "critical", false, t0)
	le = m.ApplyRecord(record("room-1", 5, "alert_cleared", "", old, roomclient.Filled))
	require.NotNil(t, le)
	assert.True(t, le.Late)
	v, _ = m.View("room-1")
	assert.Len(t, v.Alerts, 2, "an old cleared record does not remove a live alert")

	// A late state of the same epoch is ignored.
	assert.False(t, m.ApplyState("room-1", state("room-1", "idle", 3)))
	v, _ = m.View("room-1")
	assert.Equal(t, "in_visit", v.Phase)
}

func TestLinkChangesAreReported(t *testing.T) {
	m := NewModel()
	assert.Equal(t, map[string]LinkState{"room-1": LinkUnknown}, m.ApplyRegistry(online("room-1")))
	assert.Empty(t, m.ApplyRegistry(online("room-1")))
	assert.Equal(t, map[string]LinkState{"room-1": LinkOnline},
		m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}))
	assert.Equal(t, LinkStale, m.Link("room-1"))
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Offline, Stale: true}})
	assert.Equal(t, LinkOffline, m.Link("room-1"), "offline says more than stale")
}

func TestLampsOnlyForSimulatedRooms(t *testing.T) {
	m := NewModel()
	m.ApplyInfo("room-1", &contract.InfoMessage{Room: "room-1", Backend: "gpio", HeartbeatS: 30})
	require.True(t, m.ApplyLamps("room-1", []byte(`{"in_use":"on"}`)))
	v, _ := m.View("room-1")
	assert.Nil(t, v.Lamps)
	assert.EqualValues(t, 30, v.HeartbeatS)
	m.ApplyInfo("room-1", &contract.InfoMessage{Room: "room-1", Backend: "sim", HeartbeatS: 2})
	v, _ = m.View("room-1")
	assert.Equal(t, map[string]string{"in_use": "on"}, v.Lamps)
	assert.False(t, m.ApplyLamps("room-1", []byte(`not json`)))
}

// A heartbeat (the same state again, later) changes nothing on the tile of
// an online room, so the board sends the browsers nothing for it.
func TestHeartbeatOfAnOnlineRoomChangesNothing(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, LastState: t0}})
	m.ApplyState("room-1", state("room-1", "idle", 3))
	before, _ := m.View("room-1")
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, LastState: t0.Add(30 * time.Second)}})
	again := state("room-1", "in_visit", 3)
	again.Phase, again.Visit = "idle", nil
	again.At = contract.T(t0.Add(30 * time.Second))
	m.ApplyState("room-1", again)
	after, _ := m.View("room-1")
	assert.Equal(t, before, after)
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true, LastState: t0.Add(30 * time.Second)}})
	stale, _ := m.View("room-1")
	assert.Equal(t, t0.Add(30*time.Second), stale.LastState.Time, "a stale tile says when it was last current")
}

func TestHeartbeatDuringAVisitChangesNothing(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry(online("room-1"))
	s1 := state("room-1", "in_visit", 3)
	s1.Visit.RemainingS = 3600
	m.ApplyState("room-1", s1)
	before, _ := m.View("room-1")
	s2 := state("room-1", "in_visit", 3)
	s2.Visit.RemainingS = 3570
	s2.At = contract.T(t0.Add(30 * time.Second))
	m.ApplyState("room-1", s2)
	after, _ := m.View("room-1")
	assert.Equal(t, before, after, "the browser counts down from ends_at")
	require.NotNil(t, after.Visit)
	assert.Equal(t, t0.Add(time.Hour), after.Visit.EndsAt.Time)
}

func TestPagersNotReachable(t *testing.T) {
	m := NewModel()
	assert.Empty(t, m.Pagers())
	assert.True(t, m.ApplyPagerStatus("pager-1", []byte(`{"version":1,"gateway":"pager-1","state":"ok","since":"2031-05-06T09:00:00.000Z","queued":0}`)))
	assert.False(t, m.ApplyPagerStatus("pager-1", []byte(`{"version":1,"gateway":"pager-1","state":"ok","since":"2031-05-06T09:00:00.000Z","queued":0}`)), "the same status again changes nothing")
	require.Len(t, m.Pagers(), 1)
	assert.False(t, m.Pagers()[0].Down)

	assert.True(t, m.ApplyPagerStatus("pager-1", []byte(`{"version":1,"gateway":"pager-1","state":"paging_down","detail":"no answer within 1s","queued":2}`)))
	assert.True(t, m.ApplyPagerStatus("pager-0", []byte(`{"version":1,"gateway":"pager-0","state":"offline","queued":0}`)), "the Last Will")
	assert.True(t, m.ApplyPagerStatus("pager-2", []byte(`not json`)))
	p := m.Pagers()
	require.Len(t, p, 3)
	assert.Equal(t, []string{"pager-0", "pager-1", "pager-2"}, []string{p[0].Gateway, p[1].Gateway, p[2].Gateway})
	for _, v := range p {
		assert.True(t, v.Down, "%s %s is not reachable", v.Gateway, v.State)
	}
	assert.Equal(t, "no answer within 1s", p[1].Detail)
	assert.Equal(t, "unreadable", p[2].State, "a status the board cannot read counts as down")

	assert.True(t, m.ApplyPagerStatus("pager-2", nil), "a cleared status forgets the gateway")
	assert.Len(t, m.Pagers(), 2)
}
