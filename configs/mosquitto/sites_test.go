package mosquitto_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/wallclock"
)

// Two sites of two rooms each. The room ids are the same at both sites:
// they need only be unique per site.
func twoSites() map[string][]string {
	return map[string][]string{"site-a": {"room-1", "room-2"}, "site-b": {"room-1", "room-2"}}
}

// requireCutOff checks what a cut makes certain: every alert raised while
// the site's WAN was down reached the site's guard while it was still down,
// and none of them had reached the centre.
func requireCutOff(t *testing.T, w *world, samples []siteworld.Sample) {
	t.Helper()
	require.NotEmpty(t, samples)
	for _, s := range samples {
		require.True(t, s.Raised.WANDown, "%s: the alert reached the site guard only after the WAN was back", s.Raised.Key)
		_, crossed := w.Booking.AlertArrived(s.Raised.Key)
		require.False(t, crossed, "%s: the alert crossed a cut WAN", s.Raised.Key)
	}
}

// TestSitesWANCutWhileRoomsRaiseAlerts: both sites lose the WAN while
// every room raises and clears panic alerts. The guards see every alert
// while the WAN is down; the centre sees the bridges go down, and then
// every record once the WAN is back.
func TestSitesWANCutWhileRoomsRaiseAlerts(t *testing.T) {
	testtier.Slow(t, "a world of brokers, tunnels and rooms")
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(2, "WAN up", a, b)

	a.WAN.Cut()
	b.WAN.Cut()
	w.AwaitLink("site-a", false)
	w.AwaitLink("site-b", false)
	cut := w.RunCycles(3, "WAN cut", a, b)
	requireCutOff(t, w, cut)

	a.WAN.Resume()
	b.WAN.Resume()
	w.AwaitLink("site-a", true)
	w.AwaitLink("site-b", true)
	samples = append(samples, cut...)
	samples = append(samples, w.RunCycles(1, "WAN back", a, b)...)
	w.verify()
	w.report(samples)
}

// TestSitesBrokerRestartedDuringCut: site-a's broker is restarted (SIGTERM,
// as an upgrade does) while its WAN is down and its rooms raise alerts. The
// bridge's queue survives the restart: the centre receives every record
// without asking for a single replay from site-a.
func TestSitesBrokerRestartedDuringCut(t *testing.T) {
	testtier.Slow(t, "a world of brokers, tunnels and rooms")
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "WAN up", a, b)

	a.WAN.Cut()
	w.AwaitLink("site-a", false)
	cut := w.RunCycles(2, "WAN cut", a)
	require.NoError(t, a.Restart())
	cut = append(cut, w.RunCycles(2, "WAN cut, broker restarted", a)...)
	samples = append(samples, w.RunCycles(2, "other site meanwhile", b)...)
	requireCutOff(t, w, cut)

	a.WAN.Resume()
	w.AwaitLink("site-a", true)
	samples = append(samples, cut...)
	w.verify()
	st := w.Booking.Stats()
	require.Zero(t, st.Recovered, "records recovered by replay: the bridge lost its queue in the restart")
	require.Zero(t, st.Replays, "replays asked for")
	w.report(samples)
}

// TestSitesCentreRestarted: the central broker crashes (SIGKILL) while rooms
// raise alerts and the booking system is away, and comes back. The sites'
// guards keep working throughout. The centre saves once a minute, so the
// records it had queued for the booking system are gone; the booking system
// finds the gap (the rooms' states name their latest seq) and gets them
// again by replay from the rooms' journals.
func TestSitesCentreRestarted(t *testing.T) {
	testtier.Slow(t, "a world of brokers, tunnels and rooms")
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "centre up", a, b)

	w.Booking.Pause()
	samples = append(samples, w.RunCycles(1, "booking system away", a, b)...)
	type result struct {
		samples []siteworld.Sample
		err     error
	}
	done := make(chan result, 1)
	go func() {
		s, err := w.Cycles(context.Background(), 2, "centre crashing", patience, a, b)
		done <- result{s, err}
	}()
	w.centreKilled = true
	require.NoError(t, w.centre.Kill())
	crashing := <-done
	require.NoError(t, crashing.err)
	down := w.RunCycles(2, "centre down", a, b)
	require.NoError(t, w.centre.Restart())
	require.NoError(t, w.Booking.Resume())
	samples = append(samples, crashing.samples...)
	samples = append(samples, down...)
	w.AwaitLink("site-a", true)
	w.AwaitLink("site-b", true)
	samples = append(samples, w.RunCycles(1, "centre back", a, b)...)
	w.verify()
	st := w.Booking.Stats()
	require.Positive(t, st.Replays, "the booking system asked for no replay: did the centre keep its queue after all?")
	require.Positive(t, st.Recovered, "no record came back by replay")
	w.report(samples)
}

// TestSitesCommandExpiresDuringCut: the booking system starts a visit at
// both sites with expires_at 2 s ahead while site-a's WAN is down. site-b
// starts its visit; site-a's command waits at the centre, reaches the room
// after its expiry and is refused as expired: it never acts.
func TestSitesCommandExpiresDuringCut(t *testing.T) {
	testtier.Slow(t, "a world of brokers, tunnels and rooms")
	t.Parallel()
	w := newWorld(t, twoSites())
	a := w.MustSite("site-a")

	a.WAN.Cut()
	w.AwaitLink("site-a", false)
	expires := wallclock.Now().Add(2 * time.Second)
	start := func(id string) controller.Command {
		return controller.Command{RequestID: id, Action: controller.ActionStartVisit, VisitID: "v-" + id, Duration: time.Hour}
	}
	w.send("site-a", "room-1", start("book-a"), expires)
	w.send("site-b", "room-1", start("book-b"), expires)
	rb := w.reply("site-b's reply", "book-b")
	require.True(t, rb.OK, "site-b: %+v", rb)
	require.True(t, w.Booking.HasType("site-b", "room-1", "visit_started"))

	samples := w.RunCycles(1, "WAN cut", a)
	requireCutOff(t, w, samples)
	waitUntil(expires.Add(100 * time.Millisecond))
	a.WAN.Resume()

	ra := w.reply("site-a's refusal", "book-a")
	require.False(t, ra.OK)
	require.NotNil(t, ra.Error)
	require.Equal(t, string(contract.CodeExpired), ra.Error.Code, "site-a: %+v", ra)
	w.verify()
	require.False(t, w.Booking.HasType("site-a", "room-1", "visit_started"), "the expired command started a visit")
	var st contract.StateMessage
	state := w.centreRetained("visitrooms/site-a/room-1/state")["visitrooms/site-a/room-1/state"]
	require.NoError(t, json.Unmarshal([]byte(state), &st), "site-a/room-1's state at the centre: %q", state)
	require.Equal(t, "idle", st.Phase)
	require.Nil(t, st.Visit)
	w.report(samples)
}

// TestSitesRoomDecommissionedDuringCut: site-a's room-2 is retired while the
// WAN is down: roomd stops, and its retained topics are cleared on the site
// broker. When the WAN is back the centre holds nothing of the room but its
// records; the other rooms carry on.
func TestSitesRoomDecommissionedDuringCut(t *testing.T) {
	testtier.Slow(t, "a world of brokers, tunnels and rooms")
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "WAN up", a, b)
	before := w.centreRetained("visitrooms/site-a/room-2/")
	require.Contains(t, before, "visitrooms/site-a/room-2/state")
	require.Contains(t, before, "visitrooms/site-a/room-2/availability")

	a.WAN.Cut()
	w.AwaitLink("site-a", false)
	require.NoError(t, a.Decommission("room-2"))
	cut := w.RunCycles(2, "WAN cut", a)
	requireCutOff(t, w, cut)
	a.WAN.Resume()
	w.AwaitLink("site-a", true)

	w.verify()
	require.Empty(t, w.siteRetained(a, "visitrooms/room-2/"), "site keeps a retained topic of room-2")
	require.Empty(t, w.centreRetained("visitrooms/site-a/room-2/"), "centre keeps a retained topic of room-2")
	require.Contains(t, w.centreRetained("visitrooms/site-b/room-2/"), "visitrooms/site-b/room-2/state",
		"site-b's room of the same id is untouched")
	w.report(append(samples, cut...))
}
