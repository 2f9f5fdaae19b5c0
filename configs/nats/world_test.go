package nats_test

// The world of the clustered centre's tests is internal/siteworld's, as for
// configs/mosquitto, with the shipped centre.conf, node.conf and users.conf
// on three nats-server nodes (siteworld.NATSCentre) in place of
// central.conf's mosquitto: two site mosquittos running the shipped site
// files, each bridged through site-tunnel.conf (one tunnel per node) and a
// cuttable WAN proxy per node, real roomd rooms, a guard console per site,
// and the booking system at the centre that deduplicates records and asks
// the rooms to replay gaps. This file holds it to the test.

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/internal/siteworld/worldtest"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/wallclock"
)

// patience bounds a wait that only a failing test reaches.
const patience = worldtest.Patience

// debugVar, set, makes the nodes log every connection and protocol event
// (debug: true), for a failing test.
const debugVar = "ROOMD_NATS_DEBUG"

// startCentre starts the shipped clustered centre for the sites named.
func startCentre(t *testing.T, sites ...string) *siteworld.NATSCentre {
	t.Helper()
	bin := siteworld.NeedNATS(t)
	c, err := siteworld.StartNATSCentre(t.TempDir(), siteworld.NATSOptions{Bin: bin, Sites: sites, Debug: os.Getenv(debugVar) != ""})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		assert.NoError(t, c.Close())
	})
	return c
}

// world is a clustered centre, its sites and their rooms, held to the test.
type world struct {
	*worldtest.World
	t      *testing.T
	centre *siteworld.NATSCentre
}

func twoSites() map[string][]string {
	return map[string][]string{"site-a": {"room-1", "room-2"}, "site-b": {"room-1", "room-2"}}
}

// newWorld starts the clustered centre, the sites (each with the rooms
// named), the guards and the booking system, and returns once every bridge
// is up and every room has announced controller_started at the centre. As
// configs/mosquitto's world: the italy preset with the panic alert cleared
// by acknowledgement, persistent consoles, a booking system that follows
// the rooms' states and asks for a replay of every gap once a second.
func newWorld(t *testing.T, sites map[string][]string) *world {
	t.Helper()
	testtier.Slow(t, "three nats-server nodes, site brokers, tunnels and rooms")
	siteworld.Need(t)
	var ids []string
	for id := range sites {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	centre := startCentre(t, ids...)
	return &world{World: worldtest.Start(t, centre, sites), t: t, centre: centre}
}

// bridgedNode returns the node that holds the site's bridge (client id: the
// site's id), waiting until one does.
func (w *world) bridgedNode(site string) *siteworld.NATSNode {
	w.t.Helper()
	var n *siteworld.NATSNode
	deadline := wallclock.Now().Add(patience)
	for n == nil {
		var err error
		n, err = w.centre.NodeOf(site)
		require.NoError(w.t, err)
		if n == nil {
			require.True(w.t, wallclock.Now().Before(deadline), "no node holds the bridge of %s", site)
			<-time.After(100 * time.Millisecond)
		}
	}
	return n
}

// during runs n press cycles in every room of the sites while fault runs,
// and returns their samples once both are done.
func (w *world) during(n int, phase string, fault func() error, sites ...*siteworld.Site) []siteworld.Sample {
	w.t.Helper()
	type result struct {
		samples []siteworld.Sample
		err     error
	}
	done := make(chan result, 1)
	go func() {
		s, err := w.Cycles(context.Background(), n, phase, patience, sites...)
		done <- result{s, err}
	}()
	ferr := fault()
	r := <-done
	require.NoError(w.t, ferr)
	require.NoError(w.t, r.err)
	return r.samples
}

// verify waits until the centre holds every record (on events and on
// alerts: nothing the cluster acknowledged may be lost) and the sites'
// retained topics, and checks that no command acted after its expires_at.
func (w *world) verify() { w.VerifyAll(false) }

// guardUnchanged checks that the site guards' alert latency in every phase
// stays as in the baseline phase: the guard's path is the site's LAN, which
// no fault at the centre touches. Bounds are generous (CI runs the race
// detector on two shared cores); a guard that waited for the centre would
// wait seconds.
func (w *world) guardUnchanged(baseline string, samples []siteworld.Sample) {
	w.t.Helper()
	phases := map[string][]time.Duration{}
	var order []string
	for _, s := range samples {
		if _, ok := phases[s.Phase]; !ok {
			order = append(order, s.Phase)
		}
		phases[s.Phase] = append(phases[s.Phase], s.Raised.Arrived.Sub(s.Pressed))
	}
	base := phases[baseline]
	require.NotEmpty(w.t, base, "no samples in the baseline phase %q", baseline)
	bp50, _ := stats(base)
	for _, p := range order {
		guard, centre := siteworld.Latencies(filter(samples, p), w.Booking)
		p50, mx := stats(guard)
		w.t.Logf("%-34s press -> site guard: %s; press -> centre: %s", p, summary(guard), summary(centre))
		assert.LessOrEqual(w.t, p50, 3*bp50+200*time.Millisecond,
			"%s: the site guard's median alert latency %s against %s at baseline", p, p50, bp50)
		assert.Less(w.t, mx, 3*time.Second, "%s: an alert took %s to reach the site guard", p, mx)
	}
}

func filter(samples []siteworld.Sample, phase string) []siteworld.Sample {
	var out []siteworld.Sample
	for _, s := range samples {
		if s.Phase == phase {
			out = append(out, s)
		}
	}
	return out
}

func stats(ds []time.Duration) (p50, maximum time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

var (
	summary   = worldtest.Summary
	waitUntil = worldtest.WaitUntil
)
