package nats_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/wallclock"
)

// TestCentreNodeOfTheBridgesKilled: the node that holds the sites' bridges
// is killed (SIGKILL, as a machine losing power) while every room raises and
// clears panic alerts. The bridges go on to another node, which resumes
// their sessions from JetStream; the centre ends up with every record, on
// events and on alerts, and the sites' retained topics.
func TestCentreNodeOfTheBridgesKilled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "three nodes", a, b)

	victim := w.bridgedNode("site-a")
	killed := w.during(3, "node of the bridges killed", victim.Kill, a, b)
	samples = append(samples, killed...)
	w.AwaitLink("site-a", true)
	w.AwaitLink("site-b", true)
	require.NotSame(t, victim, w.bridgedNode("site-a"), "site-a's bridge is still on the killed node")
	samples = append(samples, w.RunCycles(1, "two nodes", a, b)...)
	w.verify()

	require.NoError(t, victim.Restart())
	require.NoError(t, w.centre.AwaitHealthy(patience))
	samples = append(samples, w.RunCycles(1, "node back", a, b)...)
	w.verify()
	w.guardUnchanged("three nodes", samples)
}

// TestCentreSecondNodeKilled: one node is killed, then a second: the one
// left has no quorum, so the centre stops acknowledging and the sites
// queue, while their guards see every alert at LAN speed. When the two come
// back the sites' queues cross and the booking system replays any gap: the
// centre ends up with every record.
func TestCentreSecondNodeKilled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "three nodes", a, b)

	nodes := w.centre.NATSNodes()
	first := w.bridgedNode("site-a")
	samples = append(samples, w.during(2, "first node killed", first.Kill, a, b)...)
	var second *siteworld.NATSNode
	for _, n := range nodes {
		if n != first {
			second = n
			break
		}
	}
	samples = append(samples, w.during(2, "second node killed", second.Kill, a, b)...)
	samples = append(samples, w.RunCycles(2, "one node of three", a, b)...)

	require.NoError(t, first.Restart())
	require.NoError(t, second.Restart())
	require.NoError(t, w.centre.AwaitHealthy(patience))
	w.AwaitLink("site-a", true)
	w.AwaitLink("site-b", true)
	samples = append(samples, w.RunCycles(1, "three nodes again", a, b)...)
	w.verify()
	w.guardUnchanged("three nodes", samples)
}

// TestCentreAllNodesRestarted: all three nodes are stopped (SIGTERM, as
// for an upgrade of the whole centre) while the rooms raise alerts, and
// started again. Sessions, their queues and the retained messages are on
// every node's disk: the bridges resume, and the centre ends up with every
// record and the sites' retained topics.
func TestCentreAllNodesRestarted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "three nodes", a, b)

	stopAll := func() error {
		for _, n := range w.centre.NATSNodes() {
			if err := n.Stop(); err != nil {
				return err
			}
		}
		return nil
	}
	samples = append(samples, w.during(2, "all nodes stopping", stopAll, a, b)...)
	samples = append(samples, w.RunCycles(2, "centre down", a, b)...)
	for _, n := range w.centre.NATSNodes() {
		require.NoError(t, n.Restart())
	}
	require.NoError(t, w.centre.AwaitHealthy(patience))
	w.AwaitLink("site-a", true)
	w.AwaitLink("site-b", true)
	samples = append(samples, w.RunCycles(1, "centre back", a, b)...)
	w.verify()
	w.guardUnchanged("three nodes", samples)
}

// TestCentreWANCutWhileNodeDown: a node is down when site-a's WAN is cut.
// The booking system starts a visit at both sites with expires_at 2 s
// ahead: site-b's acts, site-a's waits at the centre (in the bridge's
// session, on the two nodes left), reaches the room after its expiry and
// is refused. When the WAN is back, then the node, the centre holds every
// record of both sites.
func TestCentreWANCutWhileNodeDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, twoSites())
	a, b := w.MustSite("site-a"), w.MustSite("site-b")
	samples := w.RunCycles(1, "three nodes", a, b)

	down := w.bridgedNode("site-a")
	ups := w.Booking.LinkUps("site-a")
	require.NoError(t, down.Kill())
	// The cut must find the bridge connected to a node that is up: a Last
	// Will dies with the node that held the connection
	// (TestLimitWillDiesWithItsNode).
	w.Await("site-a's bridge on another node", func() bool { return w.Booking.LinkUps("site-a") > ups })
	a.WAN.Cut()
	w.AwaitLink("site-a", false)

	expires := wallclock.Now().Add(2 * time.Second)
	start := func(id string) controller.Command {
		return controller.Command{RequestID: id, Action: controller.ActionStartVisit, VisitID: "v-" + id, Duration: time.Hour}
	}
	require.NoError(t, w.Booking.Send("site-a", "room-1", start("book-a"), expires))
	require.NoError(t, w.Booking.Send("site-b", "room-1", start("book-b"), expires))
	var rb contract.ReplyMessage
	w.Await("site-b's reply", func() (ok bool) { rb, ok = w.Booking.Reply("book-b"); return ok })
	require.True(t, rb.OK, "site-b: %+v", rb)

	samples = append(samples, w.RunCycles(2, "WAN cut, a node down", a, b)...)
	waitUntil(expires.Add(100 * time.Millisecond))
	a.WAN.Resume()
	var ra contract.ReplyMessage
	w.Await("site-a's refusal", func() (ok bool) { ra, ok = w.Booking.Reply("book-a"); return ok })
	require.False(t, ra.OK)
	require.NotNil(t, ra.Error)
	require.Equal(t, string(contract.CodeExpired), ra.Error.Code, "site-a: %+v", ra)
	samples = append(samples, w.RunCycles(1, "WAN back, a node down", a, b)...)

	require.NoError(t, down.Restart())
	require.NoError(t, w.centre.AwaitHealthy(patience))
	samples = append(samples, w.RunCycles(1, "three nodes again", a, b)...)
	w.verify()
	require.False(t, w.Booking.HasType("site-a", "room-1", "visit_started"), "the expired command started a visit")
	require.True(t, w.Booking.HasType("site-b", "room-1", "visit_started"))
	w.guardUnchanged("three nodes", samples)
}
