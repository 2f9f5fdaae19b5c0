package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

func TestRenderRoomsGolden(t *testing.T) {
	info := &contract.InfoMessage{Version: 2, Roomd: "1.4.0", HeartbeatS: 30,
		Policy: contract.PolicyInfo{Name: "italy", MaxDurationS: 7200, Extension: "up_to_max"}}
	rooms := []roomclient.Room{
		{ID: "room-a", Availability: roomclient.Offline, Info: info, LastSeen: t0.Add(-3 * time.Hour)},
		{ID: "room-b", Availability: roomclient.Online, Info: info, LastSeen: t0.Add(-11 * time.Second)},
		{ID: "room-c", Availability: roomclient.Online, Stale: true, LastSeen: t0.Add(-2 * time.Minute)},
		{ID: "room-d"},
	}
	want := `visitrooms  2026-03-04 14:00:00 UTC  4 rooms
ROOM    LINK     ROOMD             CONTRACT  POLICY    MAX      EXTENSION  HEARTBEAT  LAST SEEN
room-a  OFFLINE  1.4.0             2         italy     2h0m0s   up_to_max  30s        2026-03-04 11:00:00 UTC (3h00m ago)
room-b  online   1.4.0             2         italy     2h0m0s   up_to_max  30s        2026-03-04 13:59:49 UTC (11s ago)
room-c  STALE    ?                 ?         ?         ?        ?          30s        2026-03-04 13:58:00 UTC (2m00s ago)
room-d  ?        ?                 ?         ?         ?        ?          30s        never
`
	assert.Equal(t, want, renderRooms("visitrooms", "", rooms, t0))
	// Times in the reader's zone, shown with it.
	rome := time.FixedZone("CET", 3600)
	assert.Contains(t, renderRooms("visitrooms", "", rooms, t0.In(rome)), "2026-03-04 12:00:00 CET (3h00m ago)")
	assert.Contains(t, renderRooms("prison-a", "guard-console", nil, t0),
		"(nothing under prison-a/ reached guard-console: no room has published there yet, or guard-console is not allowed to read prison-a/+/{info,availability,state};")
	assert.Contains(t, renderRooms("prison-a", "", nil, t0), "or an anonymous client is not allowed to read")
}

func TestRoomsJSONListsAreNeverNull(t *testing.T) {
	b, err := json.Marshal(roomsJSON(nil))
	require.NoError(t, err)
	assert.Equal(t, "[]", string(b))
	b, err = json.Marshal(roomsJSON([]roomclient.Room{{ID: "room-a"}, {ID: "room-b", Info: &contract.InfoMessage{Roomd: "1.3.0"}}}))
	require.NoError(t, err)
	var got []map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Len(t, got, 2)
	assert.Nil(t, got[0]["info"])
	assert.Nil(t, got[0]["last_seen"])
	info, ok := got[1]["info"].(map[string]any)
	require.True(t, ok, "info is an object: %v", got[1]["info"])
	for _, k := range []string{"inputs", "panic_points", "outputs", "supervised"} {
		assert.Equal(t, []any{}, info[k], k)
	}
	assert.Equal(t, []any{}, info["policy"].(map[string]any)["warnings_s"])
}

func TestWatchOnceJSONAlertsNeverNull(t *testing.T) {
	url := mqtttest.Embedded(t)
	states := watchTopic(t, url, "visitrooms/room-n/state")
	startRoom(t, url, "visitrooms", "room-n")
	waitState(t, states, "the first state", func(contract.StateMessage) bool { return true })
	out, _, err := cli(t, url, "--json", "watch", "--once", "--settle", "300ms")
	require.NoError(t, err)
	assert.Contains(t, out, `"alerts":[]`)
	assert.NotContains(t, out, `"alerts":null`)
	var snap []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &snap), out)
	require.Len(t, snap, 1)
	assert.Equal(t, []any{}, snap[0]["alerts"])
}

func TestHumanTimesShowTheirZone(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("CET", 3600)
	defer func() { time.Local = local }()
	var sb strings.Builder
	at := contract.T(t0)
	writeState(&sb, &contract.StateMessage{Seq: 3, At: at, Phase: "in_visit", Door: "closed", Lock: "unlocked",
		Visit: &contract.VisitMessage{ID: "v-1", StartedAt: at, EndsAt: contract.T(t0.Add(time.Hour))}}, t0)
	out := sb.String()
	assert.Contains(t, out, "started 15:00:00 CET, ends 16:00:00 CET (1:00:00 left)")
	assert.Contains(t, out, "seq       3 at 2026-03-04 15:00:00 CET")
	assert.Contains(t, render(newBoard("visitrooms", time.Minute), t0.In(time.Local), 0), "visitrooms  2026-03-04 15:00:00 CET  0 rooms")
}

func TestRoomsAndDecommission(t *testing.T) {
	t.Parallel() // mostly waits for retained messages to settle
	url := mqtttest.Embedded(t)
	a := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-a", Options: func(o *room.Options) { o.Version = "1.4.0" }})
	b := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-b", Options: func(o *room.Options) {
		o.Version = "1.4.0"
		o.Config.HomeAssistant = configs.HomeAssistant{Enabled: true, DiscoveryPrefix: "homeassistant"}
	}})
	// Both up: their get_state answered after their info went out.
	for _, r := range []string{"room-a", "room-b"} {
		_, _, err := cli(t, url, "state", r)
		require.NoError(t, err)
	}
	b.Stop()

	out, _, err := cli(t, url, "rooms", "--settle", "300ms")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^room-a\s+online\s+1\.4\.0\s+2\s+italy\s+2h0m0s\s+up_to_max\s+2s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(\d+s ago\)$`, out)
	assert.Regexp(t, `(?m)^room-b\s+OFFLINE\s+1\.4\.0\s`, out)
	out, _, err = cli(t, url, "--json", "rooms", "--settle", "300ms")
	require.NoError(t, err)
	var rooms []roomJSON
	require.NoError(t, json.Unmarshal([]byte(out), &rooms), out)
	require.Len(t, rooms, 2)
	assert.Equal(t, "online", rooms[0].Availability)
	assert.Equal(t, "offline", rooms[1].Availability)
	require.NotNil(t, rooms[1].Info)
	assert.Equal(t, int64(7200), rooms[1].Info.Policy.MaxDurationS)
	assert.Equal(t, []string{"door", "lock", "presence", "panic", "staff"}, rooms[1].Info.Inputs)

	// A room that reports online is not cleared without --force.
	_, _, err = cliIn(t, url, "yes\n", "decommission", "room-a")
	require.Error(t, err)
	assert.Equal(t, ExitFailed, exitCode(err))
	assert.Contains(t, err.Error(), "room room-a reports online")

	// Not confirmed: nothing cleared.
	out, _, err = cliIn(t, url, "no\n", "decommission", "room-b")
	assert.ErrorContains(t, err, "not confirmed; nothing cleared")
	for _, topic := range []string{"visitrooms/room-b/availability", "visitrooms/room-b/state", "visitrooms/room-b/info",
		"visitrooms/room-b/sim/outputs", "homeassistant/device/roomd_room-b/config"} {
		assert.Contains(t, out, "  "+topic+"\n", "the question lists what goes")
	}
	_, _, err = cliIn(t, url, "", "decommission", "room-b")
	assert.ErrorContains(t, err, "no answer on stdin (use --yes in scripts)")

	out, _, err = cliIn(t, url, "yes\n", "decommission", "room-b")
	require.NoError(t, err)
	assert.Contains(t, out, "room room-b: cleared 5 retained topics")
	out, _, err = cli(t, url, "--json", "rooms", "--settle", "300ms")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &rooms), out)
	require.Len(t, rooms, 1)
	assert.Equal(t, "room-a", rooms[0].Room)
	_, _, err = cli(t, url, "decommission", "room-b", "--yes")
	assert.ErrorContains(t, err, "room room-b: nothing retained under visitrooms/room-b/")

	// --force --yes: a script clears a room that still says online.
	out, _, err = cli(t, url, "--json", "decommission", "room-a", "--force", "--yes")
	require.NoError(t, err)
	var res struct {
		Room    string   `json:"room"`
		Cleared []string `json:"cleared"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "room-a", res.Room)
	assert.Contains(t, res.Cleared, "visitrooms/room-a/state")
	a.Stop()
}

// aclWithDecommission is the shipped ACL with its decommission block
// enabled for room.
func aclWithDecommission(t *testing.T, room string) string {
	t.Helper()
	return mqtttest.SiteACL(t, func(s *access.Site) {
		s.Decommission = &access.Decommission{Identity: "decommission", Rooms: []string{room}}
	})
}

// TestDecommissionUnderTheShippedACL runs decommission against mosquitto
// with the ACL of the shipped site file and its decommission identity for room-a: the
// booking system's identity may read a room's retained topics but not clear
// them, and decommission says so instead of reporting success (the broker
// acknowledges a denied publish); the decommission identity clears room-a,
// its Home Assistant discovery too, and nothing of room-b.
func TestDecommissionUnderTheShippedACL(t *testing.T) {
	testtier.Slow(t, "a mosquitto with the shipped ACL, for seconds of settle waits")
	t.Parallel() // mostly waits for retained messages to settle
	users := map[string]string{"room-a": "pw-room-a", "room-b": "pw-room-b", "booking": "pw-booking", "decommission": "pw-dec"}
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, Users: users, ACLFile: aclWithDecommission(t, "room-a")})
	dir := t.TempDir()
	pw := func(user string) string {
		p := filepath.Join(dir, user)
		require.NoError(t, os.WriteFile(p, []byte(users[user]+"\n"), 0o600))
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, room := range []string{"room-a", "room-b"} {
		c, err := roomclient.Dial(ctx, roomclient.Options{Broker: mq.URL(), Username: room, Password: users[room],
			TLS: mq.TLSConfig(), CleanSession: true})
		require.NoError(t, err)
		for topic, payload := range map[string]string{
			"visitrooms/" + room + "/availability":           "offline",
			"visitrooms/" + room + "/state":                  `{"version":2}`,
			"visitrooms/" + room + "/info":                   `{"version":2}`,
			"homeassistant/device/roomd_" + room + "/config": `{"dev":{}}`,
		} {
			require.NoError(t, c.Publish(ctx, topic, []byte(payload), true))
		}
		c.Close()
	}
	as := func(user, input string, args ...string) (string, string, error) {
		var out, errOut strings.Builder
		env := map[string]string{"VISITCTL_BROKER": mq.URL(), "VISITCTL_CA_FILE": mq.CA.CertFile,
			"VISITCTL_USERNAME": user, "VISITCTL_PASSWORD_FILE": pw(user), "VISITCTL_TIMEOUT": "10s"}
		err := run(ctx, append([]string{"visitctl"}, args...), func(k string) string { return env[k] },
			strings.NewReader(input), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, _, err := as("booking", "", "rooms", "--settle", "300ms")
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`(?m)^room-a\s+OFFLINE\s`), out)
	// (mosquitto grants booking's subscription to the discovery topic and
	// sends it nothing: booking does not see it.)
	_, _, err = as("booking", "", "decommission", "room-a", "--yes", "--settle", "300ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `still retained after clearing (did the broker's ACL refuse user "booking"?)`)
	assert.Contains(t, err.Error(), "visitrooms/room-a/state")

	_, _, err = as("decommission", "", "decommission", "room-b", "--yes", "--settle", "300ms")
	assert.ErrorContains(t, err, "or user decommission is not allowed to read visitrooms/room-b/#", "enabled for room-a only")
	out, _, err = as("decommission", "y\n", "decommission", "room-a", "--settle", "300ms")
	require.NoError(t, err)
	assert.Contains(t, out, "homeassistant/device/roomd_room-a/config")
	assert.Contains(t, out, "room room-a: cleared 4 retained topics")
	out, _, err = as("booking", "", "--json", "rooms", "--settle", "300ms")
	require.NoError(t, err)
	var rooms []roomJSON
	require.NoError(t, json.Unmarshal([]byte(out), &rooms), out)
	require.Len(t, rooms, 1)
	assert.Equal(t, "room-b", rooms[0].Room)
}
