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
	m.ApplyRegistry(reg, t0)
	m.ApplyState("l-unknown", state("l-unknown", "idle", 1)) // never in the registry

	var order []string
	var cats []Category
	for _, v := range m.Views() {
		order = append(order, v.Room)
		cats = append(cats, v.Category)
	}
	assert.Equal(t, []string{
		"g-crit-old", "i-offline", "f-crit-new", "j-offline-crit", // unacknowledged critical, oldest first, offline or not; out of reach in a visit
		"e-warn",          // an unacknowledged warning
		"h-acked",         // an acknowledged critical alert still standing
		"c-over",          // overtime
		"b-visit",         // visits
		"a-idle", "d-oos", // idle, out of service
		"k-stale", "l-unknown", // stale, never heard of
	}, order)
	assert.Equal(t, []Category{CatCritical, CatCritical, CatCritical, CatCritical, CatWarning, CatAcked, CatOvertime, CatVisit,
		CatIdle, CatOutOfService, CatOffline, CatOffline}, cats)
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
	m.ApplyRegistry(online("room-1"), t0)
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
	assert.Equal(t, CatAcked, v.Category)
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
	assert.Equal(t, []LinkChange{{Room: "room-1", Before: LinkUnknown, After: LinkOnline}}, m.ApplyRegistry(online("room-1"), t0))
	assert.Empty(t, m.ApplyRegistry(online("room-1"), t0))
	assert.Equal(t, []LinkChange{{Room: "room-1", Before: LinkOnline, After: LinkStale}},
		m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}, t0))
	assert.Equal(t, LinkStale, m.Link("room-1"))
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Offline, Stale: true}}, t0)
	assert.Equal(t, LinkOffline, m.Link("room-1"), "offline says more than stale")
}

// A room out of reach during a visit is an alarm of the board's own: its
// panic points no longer reach the board. Critical on top until a guard
// acknowledges it, then above every calm room until the room is back.
func TestNoContactDuringAVisitIsCritical(t *testing.T) {
	for _, phase := range []string{"in_visit", "overtime", "inspection"} {
		m := NewModel()
		m.ApplyRegistry(online("room-1", "room-2"), t0)
		m.ApplyState("room-1", state("room-1", phase, 3))
		m.ApplyState("room-2", state("room-2", "idle", 3, alert("time_up-1", "time_up", "warning", false, t0)))
		lost := t0.Add(time.Minute)
		ch := m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Offline, LastState: t0.Add(10 * time.Second)},
			{ID: "room-2", Availability: roomclient.Online}}, lost)
		require.Equal(t, []LinkChange{{Room: "room-1", Before: LinkOnline, After: LinkOffline, Contact: ContactLost}}, ch, phase)
		v, _ := m.View("room-1")
		assert.Equal(t, CatCritical, v.Category, phase)
		require.NotNil(t, v.NoContact)
		assert.Equal(t, t0.Add(10*time.Second), v.NoContact.Since.Time, "since when the room was last heard of")
		assert.Equal(t, "room-1", m.Views()[0].Room, "%s: on top, above a warning", phase)

		assert.True(t, m.AckContact("room-1", "guard-7", lost.Add(time.Minute)))
		assert.False(t, m.AckContact("room-1", "guard-8", lost.Add(time.Minute)), "once")
		v, _ = m.View("room-1")
		assert.Equal(t, CatNoContact, v.Category)
		assert.Equal(t, "guard-7", v.NoContact.AckedBy)
		assert.Equal(t, []string{"room-2", "room-1"}, []string{m.Views()[0].Room, m.Views()[1].Room}, "an unacknowledged warning first")

		ch = m.ApplyRegistry(online("room-1", "room-2"), lost.Add(2*time.Minute))
		require.Equal(t, []LinkChange{{Room: "room-1", Before: LinkOffline, After: LinkOnline, Contact: ContactBack}}, ch)
		v, _ = m.View("room-1")
		assert.Nil(t, v.NoContact)
	}
	// While the board itself has lost the broker every room is silent: its
	// banner says so, and no room raises the alarm for it.
	m := NewModel()
	m.ApplyRegistry(online("room-1"), t0)
	m.ApplyState("room-1", state("room-1", "in_visit", 3))
	m.BrokerLost(true, t0)
	ch := m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}, t0)
	assert.Equal(t, ContactSame, ch[0].Contact)
	m.BrokerLost(false, t0.Add(time.Minute))
	assert.Empty(t, m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}, t0.Add(61*time.Second)),
		"just back: its next state is on its way")
	ch = m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}, t0.Add(2*time.Minute+time.Second))
	assert.Equal(t, ContactLost, ch[0].Contact, "still silent a stale period after the board is back: out of reach")

	// Outside a visit an offline room is no alarm.
	m = NewModel()
	m.ApplyRegistry(online("room-1"), t0)
	m.ApplyState("room-1", state("room-1", "idle", 3))
	ch = m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true}}, t0)
	assert.Equal(t, ContactSame, ch[0].Contact)
	v, _ := m.View("room-1")
	assert.Equal(t, CatOffline, v.Category)
	assert.Nil(t, v.NoContact)
}

// The board ignores any id that is not one of the site's rooms: an
// operator's identity may publish a retained state under its own name.
func TestRoomsOfAnotherIdAreNeverTiles(t *testing.T) {
	m := NewModel()
	rooms, err := ParseRooms("room-*, visit-a")
	require.NoError(t, err)
	m.Allow(RoomMatcher(rooms))
	forged := state("guard-7", "in_visit", 1, alert("panic-1", "panic", "critical", false, t0))
	assert.False(t, m.ApplyState("guard-7", forged))
	assert.Nil(t, m.ApplyRecord(record("guard-7", 2, "alert_raised", "", alert("panic-1", "panic", "critical", false, t0), roomclient.New)))
	assert.Empty(t, m.ApplyRegistry([]roomclient.Room{{ID: "guard-7", Availability: roomclient.Online}}, t0))
	assert.True(t, m.ApplyState("room-3", state("room-3", "idle", 1)))
	assert.True(t, m.ApplyState("visit-a", state("visit-a", "idle", 1)))
	_, ok := m.View("guard-7")
	assert.False(t, ok)
	var ids []string
	for _, v := range m.Views() {
		ids = append(ids, v.Room)
	}
	assert.Equal(t, []string{"room-3", "visit-a"}, ids)
	assert.Equal(t, []string{"guard-7"}, m.Unknown())
	assert.False(t, m.Known("guard-7"))

	for _, bad := range []string{"", "Room-1", "room/1", "room-[", "*/x", ","} {
		_, err := ParseRooms(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// Every state of an alert is told apart: raised, repeating (also after a
// reannouncement, naming who had acknowledged it), acknowledged and still
// active (with when it signals again), and a panic waiting for its reset.
func TestAlertStates(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry(online("room-1"), t0)
	m.ApplyInfo("room-1", &contract.InfoMessage{Room: "room-1", Policy: contract.PolicyInfo{PanicReset: "on_site", ReannounceAfterS: 300}})
	p := alert("panic-1", "panic", "critical", false, t0)
	d := alert("door_locked-2", "door_locked", "critical", false, t0)
	m.ApplyState("room-1", state("room-1", "in_visit", 2, p, d))
	states := func() map[string]AlertView {
		v, _ := m.View("room-1")
		out := map[string]AlertView{}
		for _, a := range v.Alerts {
			out[a.ID] = a
		}
		return out
	}
	assert.Equal(t, AlertRaised, states()["panic-1"].State)
	d.Announcements = 2
	m.ApplyState("room-1", state("room-1", "in_visit", 3, p, d))
	assert.Equal(t, AlertRepeating, states()["door_locked-2"].State)

	p.Acked, p.AckedAt = true, contract.T(t0.Add(time.Minute))
	d.Acked, d.AckedAt = true, contract.T(t0.Add(time.Minute))
	m.ApplyRecord(record("room-1", 4, "alert_acked", "guard-7", p, roomclient.New))
	m.ApplyRecord(record("room-1", 5, "alert_acked", "guard-7", d, roomclient.New))
	m.ApplyState("room-1", state("room-1", "in_visit", 5, p, d))
	s := states()
	assert.Equal(t, AlertAwaitingReset, s["panic-1"].State, "only the staff key at the room clears it")
	assert.Equal(t, AlertAcked, s["door_locked-2"].State)
	assert.Equal(t, t0.Add(6*time.Minute), s["door_locked-2"].ResignalAt.Time, "signals again reannounce_after after the acknowledgement")
	v, _ := m.View("room-1")
	assert.Equal(t, CatAcked, v.Category, "an acknowledged critical alert still standing does not look calm")

	d.Acked, d.AckedAt = false, contract.Time{}
	m.ApplyRecord(record("room-1", 6, "alert_reannounced", "", d, roomclient.New))
	s = states()
	assert.Equal(t, AlertRepeating, s["door_locked-2"].State)
	assert.True(t, s["door_locked-2"].Reannounced)
	assert.Equal(t, "guard-7", s["door_locked-2"].PrevAckedBy)
	m.ApplyState("room-1", state("room-1", "in_visit", 6, p, d))
	assert.True(t, states()["door_locked-2"].Reannounced, "the state that follows keeps it")

	weird := alert("x-1", "<img src=x>", "<b>", false, t0)
	m.ApplyState("room-1", state("room-1", "in_visit", 7, weird))
	assert.Equal(t, "critical", states()["x-1"].Severity, "a severity the board does not know counts as critical")
}

func TestStaffAtTheRoomAndTheRoomsClock(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry(online("room-1"), t0)
	s := state("room-1", "in_visit", 2)
	s.Staff = "pressed"
	m.ApplyState("room-1", s)
	v, _ := m.View("room-1")
	assert.True(t, v.Staff)
	assert.Empty(t, v.Presence, "staff, never the occupants")

	assert.False(t, m.NoteClock("room-1", t0.Add(2*time.Second), t0), "within the tolerance")
	assert.True(t, m.NoteClock("room-1", t0.Add(2*time.Hour), t0.Add(time.Second)))
	v, _ = m.View("room-1")
	assert.EqualValues(t, 2*3600-1, v.ClockOffsetS)
	assert.False(t, m.NoteClock("room-1", t0.Add(2*time.Hour+31*time.Second), t0.Add(31*time.Second+300*time.Millisecond)),
		"jitter does not change the tile")
	assert.True(t, m.NoteClock("room-1", t0.Add(time.Minute), t0.Add(time.Minute)), "a corrected clock")
	v, _ = m.View("room-1")
	assert.Zero(t, v.ClockOffsetS)
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
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, LastState: t0}}, t0)
	m.ApplyState("room-1", state("room-1", "idle", 3))
	before, _ := m.View("room-1")
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, LastState: t0.Add(30 * time.Second)}}, t0)
	again := state("room-1", "in_visit", 3)
	again.Phase, again.Visit = "idle", nil
	again.At = contract.T(t0.Add(30 * time.Second))
	m.ApplyState("room-1", again)
	after, _ := m.View("room-1")
	assert.Equal(t, before, after)
	m.ApplyRegistry([]roomclient.Room{{ID: "room-1", Availability: roomclient.Online, Stale: true, LastState: t0.Add(30 * time.Second)}}, t0)
	stale, _ := m.View("room-1")
	assert.Equal(t, t0.Add(30*time.Second), stale.LastState.Time, "a stale tile says when it was last current")
}

func TestHeartbeatDuringAVisitChangesNothing(t *testing.T) {
	m := NewModel()
	m.ApplyRegistry(online("room-1"), t0)
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
