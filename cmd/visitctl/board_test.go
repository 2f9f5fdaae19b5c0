package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)

func stateJSON(room string, seq int, at time.Time, phase, visit, alerts string) []byte {
	if visit == "" {
		visit = "null"
	}
	return fmt.Appendf(nil, `{"version":1,"room":%q,"seq":%d,"at":%q,"phase":%q,"visit":%s,"door":"closed","lock":"unlocked","alerts":[%s],"service_reason":"","outputs":{}}`,
		room, seq, at.Format(time.RFC3339Nano), phase, visit, alerts)
}

func visitJSON(started, ends time.Time) string {
	return fmt.Sprintf(`{"id":"v-1","started_at":%q,"ends_at":%q,"remaining_s":0,"max_s":7200}`, started.Format(time.RFC3339), ends.Format(time.RFC3339))
}

func alertJSON(id, kind, severity string, raised time.Time, acked bool, announcements int) string {
	return fmt.Sprintf(`{"id":%q,"kind":%q,"severity":%q,"raised_at":%q,"acked":%t,"announcements":%d}`,
		id, kind, severity, raised.Format(time.RFC3339), acked, announcements)
}

func alertEvent(room string, seq int, typ, alert string) []byte {
	return fmt.Appendf(nil, `{"room":%q,"seq":%d,"at":%q,"type":%q,"alert":%s}`, room, seq, t0.Format(time.RFC3339), typ, alert)
}

func msg(topic string, payload []byte) inbound { return inbound{topic: topic, payload: payload} }

func TestRenderGolden(t *testing.T) {
	b := newBoard("visitrooms", 30*time.Second)
	b.apply(msg("visitrooms/room-b/availability", []byte("online")), t0)
	b.apply(msg("visitrooms/room-b/state", stateJSON("room-b", 5, t0, "in_visit", visitJSON(t0.Add(-30*time.Minute), t0.Add(90*time.Minute)), "")), t0)
	b.apply(msg("visitrooms/room-a/availability", []byte("offline")), t0)
	b.apply(msg("visitrooms/room-a/state", stateJSON("room-a", 9, t0, "overtime", visitJSON(t0.Add(-2*time.Hour), t0.Add(-5*time.Minute-12*time.Second)),
		alertJSON("time_up-9", "time_up", "critical", t0.Add(-5*time.Minute-12*time.Second), false, 3)+","+
			alertJSON("door_locked-8", "door_locked", "warning", t0.Add(-45*time.Second), true, 1))), t0)
	b.apply(msg("visitrooms/room-c/availability", []byte("online")), t0)
	b.apply(msg("visitrooms/room-c/state", stateJSON("room-c", 2, t0.Add(-61*time.Second), "idle", "", "")), t0.Add(-61*time.Second))
	b.apply(msg("visitrooms/room-d/availability", []byte("online")), t0)

	got := render(b, t0.Add(time.Second), 0)
	want := `visitrooms  2026-03-04 14:00:01 UTC  4 rooms
ROOM    LINK     PHASE           VISIT           DOOR     BOLT      LAST STATE     ALERTS
room-a  OFFLINE  OVERTIME        0:05:13 over    closed   unlocked  1s ago         time_up-9 critical 5m13s x3, door_locked-8 warning 46s acked
room-b  online   in_visit        1:29:59 left    closed   unlocked  1s ago         -
room-c  online   idle            -               closed   unlocked  STALE 1m02s    -
room-d  online   -               -               -        -         never          -
`
	assert.Equal(t, want, got)

	// The countdown moves with the clock alone.
	assert.Contains(t, render(b, t0.Add(89*time.Minute+59*time.Second+800*time.Millisecond), 0), "0:00:01 left")
	assert.Contains(t, render(b, t0.Add(90*time.Minute+500*time.Millisecond), 0), "0:00:00 over")

	// Lines are cut to the terminal width.
	for _, l := range strings.Split(strings.TrimSuffix(render(b, t0, 40), "\n"), "\n") {
		assert.LessOrEqual(t, len([]rune(l)), 40, l)
	}
}

func TestRenderEmptyAndDisconnected(t *testing.T) {
	b := newBoard("prison-a", time.Minute)
	b.user = "guard-console"
	b.connected = false
	b.apply(msg("prison-a/room-1/state", []byte("{broken")), t0)
	want := `prison-a  2026-03-04 14:00:00 UTC  0 rooms  BROKER CONNECTION LOST - reconnecting  1 unreadable messages
ROOM  LINK     PHASE           VISIT           DOOR     BOLT      LAST STATE     ALERTS
(nothing under prison-a/ reached guard-console: no room has published there yet, or guard-console is not allowed to read prison-a/+/{availability,state,alerts}; the broker withholds what an identity may not read without saying so: docs/security.md)
`
	assert.Equal(t, want, render(b, t0, 0))
}

func TestBoardAlertEventsAndBell(t *testing.T) {
	b := newBoard("visitrooms", 30*time.Second)
	assert.False(t, b.apply(msg("visitrooms/r1/state", stateJSON("r1", 3, t0, "in_visit", visitJSON(t0, t0.Add(time.Hour)), "")), t0))

	// A warning is no bell; its escalation to critical is.
	warn := alertJSON("a-4", "time_up", "warning", t0, false, 1)
	assert.False(t, b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 4, "alert_raised", warn)), t0))
	crit := alertJSON("a-4", "time_up", "critical", t0, false, 2)
	assert.True(t, b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 5, "alert_escalated", crit)), t0))
	// The same critical alert again (a state or a repeat) rings no more.
	assert.False(t, b.apply(msg("visitrooms/r1/state", stateJSON("r1", 5, t0, "overtime", visitJSON(t0, t0.Add(time.Hour)), crit)), t0))
	assert.Contains(t, render(b, t0.Add(time.Minute), 0), "time_up a-4 critical 1m00s x2")

	// A new critical alert rings; an acked one does not.
	panicAlert := alertJSON("a-6", "panic", "critical", t0, false, 1)
	assert.True(t, b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 6, "alert_raised", panicAlert)), t0))
	acked := alertJSON("a-7", "panic", "critical", t0, true, 1)
	assert.False(t, b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 7, "alert_raised", acked)), t0))

	// An event older than the state is already in it; cleared alerts leave.
	assert.False(t, b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 5, "alert_cleared", crit)), t0))
	assert.Len(t, b.rooms["r1"].alerts(), 3)
	b.apply(msg("visitrooms/r1/alerts", alertEvent("r1", 8, "alert_cleared", crit)), t0)
	as := b.rooms["r1"].alerts()
	require.Len(t, as, 2)
	assert.Equal(t, "a-6", as[0].ID)

	// An older state delivered late is ignored.
	b.apply(msg("visitrooms/r1/state", stateJSON("r1", 2, t0, "idle", "", "")), t0)
	assert.Equal(t, "overtime", b.rooms["r1"].state.Phase)

	// Topics outside the board are ignored.
	b.apply(msg("visitrooms/Bad Room/state", stateJSON("x", 1, t0, "idle", "", "")), t0)
	b.apply(msg("other/r2/state", stateJSON("r2", 1, t0, "idle", "", "")), t0)
	b.apply(msg("visitrooms/r3/events", []byte("{}")), t0)
	assert.Len(t, b.rooms, 1)
}

func TestRetainedStateJudgedByItsTime(t *testing.T) {
	b := newBoard("visitrooms", 30*time.Second)
	old := inbound{topic: "visitrooms/r1/state", payload: stateJSON("r1", 1, t0.Add(-10*time.Minute), "idle", "", ""), retained: true}
	b.apply(old, t0)
	assert.True(t, b.stale(b.rooms["r1"], t0))
	b.apply(msg("visitrooms/r1/state", stateJSON("r1", 1, t0.Add(-10*time.Minute), "idle", "", "")), t0)
	assert.False(t, b.stale(b.rooms["r1"], t0), "a live message is current whatever the room's clock says")
	assert.True(t, b.stale(b.rooms["r1"], t0.Add(61*time.Second)))
}

func TestAgeAndCountdown(t *testing.T) {
	assert.Equal(t, "0s", age(-time.Second))
	assert.Equal(t, "59s", age(59*time.Second+900*time.Millisecond))
	assert.Equal(t, "2m03s", age(123*time.Second))
	assert.Equal(t, "1h02m", age(62*time.Minute+59*time.Second))
	assert.Equal(t, "2:00:00 left", countdown(t0.Add(2*time.Hour), t0))
	assert.Equal(t, "0:00:01 left", countdown(t0.Add(time.Millisecond), t0))
	assert.Equal(t, "0:00:00 over", countdown(t0, t0))
	assert.Equal(t, "1:00:01 over", countdown(t0, t0.Add(time.Hour+time.Second+500*time.Millisecond)))
}
