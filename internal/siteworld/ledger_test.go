package siteworld

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
)

// at is a fixed instant: the ledger reads no clock.
var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func key(site, room string, seq uint64) Key {
	return Key{Site: site, Room: room, Epoch: "e1", Seq: seq}
}

func TestLedgerKeepsTheFirstCopyOnEachStream(t *testing.T) {
	l := newLedger()
	k := key("site-a", "room-1", 1)
	assert.True(t, l.add(onEvents, k, "alert_raised", at))
	assert.False(t, l.add(onEvents, k, "alert_raised", at.Add(time.Second)), "a second copy on events")
	assert.True(t, l.add(onAlerts, k, "alert_raised", at.Add(2*time.Second)), "the first copy on alerts")
	assert.False(t, l.add(onAlerts, k, "alert_raised", at.Add(3*time.Second)))
	// The same room id at another site is another room.
	assert.True(t, l.add(onEvents, key("site-b", "room-1", 1), "visit_started", at))
	assert.Equal(t, 2, l.dups)
	assert.Equal(t, at, l.events[k], "the first arrival is kept")
	assert.Equal(t, at.Add(2*time.Second), l.alerts[k])
	events, alerts := l.missing([]Key{k, key("site-a", "room-1", 2)}, []Key{k, key("site-b", "room-1", 1)})
	assert.Equal(t, []Key{key("site-a", "room-1", 2)}, events)
	assert.Equal(t, []Key{key("site-b", "room-1", 1)}, alerts)
}

func TestLedgerAsksForEveryGapOnceUntilItIsLate(t *testing.T) {
	l := newLedger()
	for _, seq := range []uint64{1, 2, 5} {
		l.add(onEvents, key("site-a", "room-1", seq), "t", at)
	}
	l.known(key("site-a", "room-1", 7)) // a state names seq 7
	l.add(onEvents, key("site-b", "room-1", 2), "t", at)
	up := map[string]bool{"site-a": true}
	isUp := func(site string) bool { return up[site] }

	room := key("site-a", "room-1", 0)
	require.Equal(t, []gap{{Room: room, From: 3, To: 4}, {Room: room, From: 6, To: 7}}, l.gaps(at, isUp),
		"site-b's bridge is down: its gap waits")
	assert.Empty(t, l.gaps(at.Add(resendAfter-time.Millisecond), isUp), "asked a moment ago")
	l.add(onEvents, key("site-a", "room-1", 3), "t", at.Add(time.Second))
	assert.Equal(t, 1, l.recovered, "seq 3 came after a replay asked for it")

	up["site-b"] = true
	assert.Equal(t, []gap{{Room: room, From: 4, To: 4}, {Room: room, From: 6, To: 7}, {Room: key("site-b", "room-1", 0), From: 1, To: 1}},
		l.gaps(at.Add(resendAfter), isUp), "unanswered for 5 s: asked again")
	assert.Equal(t, 5, l.replays)
}

func TestLedgerSplitsAGapAtTheReplayLimit(t *testing.T) {
	l := newLedger()
	l.known(key("site-a", "room-1", contract.MaxReplay+10))
	gaps := l.gaps(at, func(string) bool { return true })
	room := key("site-a", "room-1", 0)
	assert.Equal(t, []gap{{Room: room, From: 1, To: contract.MaxReplay}, {Room: room, From: contract.MaxReplay + 1, To: contract.MaxReplay + 10}}, gaps)
}

func TestLedgerCatchUp(t *testing.T) {
	l := newLedger()
	l.add(onEvents, key("site-a", "room-1", 1), "t", at)
	l.expect([]Key{key("site-a", "room-1", 1), key("site-a", "room-1", 2), key("site-a", "room-1", 3), key("site-b", "room-1", 1)})
	assert.Equal(t, 2, l.behind)
	l.add(onEvents, key("site-a", "room-1", 3), "t", at.Add(time.Second))
	l.add(onAlerts, key("site-a", "room-1", 3), "t", at.Add(1100*time.Millisecond))
	assert.Equal(t, 2, l.behind, "seq 2 is still missing")
	l.add(onEvents, key("site-a", "room-1", 2), "t", at.Add(1500*time.Millisecond))
	assert.Equal(t, 1, l.behind)
	assert.True(t, l.caught.IsZero())
	l.add(onEvents, key("site-b", "room-1", 1), "t", at.Add(2500*time.Millisecond))
	assert.Zero(t, l.behind)
	assert.Equal(t, at.Add(time.Second), l.first)
	assert.Equal(t, at.Add(2500*time.Millisecond), l.caught)
	l.add(onEvents, key("site-b", "room-1", 2), "t", at.Add(3*time.Second))
	median, busiest := l.drainRate()
	assert.Equal(t, 3, busiest, "three records in the first second, none counted after the catch-up")
	assert.Equal(t, 3, median)
}

// TestQuietLogsKeepErrorsAndWarnings: the tuning of a benchmark's brokers
// keeps the shipped files' errors and warnings and drops the rest.
func TestQuietLogsKeepErrorsAndWarnings(t *testing.T) {
	o, err := CentralOptions(Tuning{QuietLogs: true, Autosave: AutosaveOnChanges})
	require.NoError(t, err)
	for _, name := range []string{"central.conf", "mosquitto.conf"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(o.ACLFile), name))
		require.NoError(t, err)
		out, err := mqtttest.Rewrite(string(data), o.Set)
		require.NoError(t, err, name)
		var types []string
		for _, ln := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(ln, "log_type "); ok {
				types = append(types, v)
			}
		}
		assert.Equal(t, []string{"error", "warning"}, types, name)
	}
	assert.Equal(t, "autosave_on_changes true\nautosave_interval 1", o.ExtraConfig)
	o, err = CentralOptions(Tuning{Autosave: 60 * time.Second})
	require.NoError(t, err)
	assert.Empty(t, o.Set)
	assert.Equal(t, "autosave_on_changes false\nautosave_interval 60", o.ExtraConfig)
}
