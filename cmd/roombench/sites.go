package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/wallclock"
)

// autosaveOnChanges, as --sites-autosave, makes every broker save its
// database after every change (mosquitto.conf's setting for a single site).
const autosaveOnChanges = siteworld.AutosaveOnChanges

// runSites runs N sites of M rooms each, bridged to a centre with the
// shipped files (internal/siteworld's world), for each N of --sites. Every
// room presses its panic button once per --sites-period (random phase), the
// site's guard console sees the alert, acknowledges it, and it clears. It measures press
// -> alert_raised at the site's guard and at the centre's booking system
// for --sites-window with the WAN up, each beside its floor from the same
// run (a bare publisher at the site to the site's guard, and through the
// bridge to the centre); then cuts every site's WAN for --cut while the
// rooms go on, measuring the site's guard again; then restores the WAN and
// measures how long the centre takes to hold every record the rooms had
// announced, with nothing lost (a record the centre never gets is asked
// for again by replay, and counted).
func runSites(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	res.Params = map[string]string{"sites": fmt.Sprint(e.cfg.Sites), "rooms_per_site": fmt.Sprint(e.cfg.SiteRooms),
		"window": e.cfg.SitesWindow.String(), "period": e.cfg.SitesPeriod.String(), "cut": e.cfg.Cut.String(),
		"wan_rtt": e.cfg.WANRTT.String(), "open_files_limit": fmt.Sprint(fileLimit()), "autosave": "as shipped", "centre": e.cfg.Centre}
	if e.cfg.BridgeInflight > 0 {
		res.Params["site_max_inflight_messages"] = fmt.Sprint(e.cfg.BridgeInflight)
	}
	switch a := e.cfg.SitesAutosave; {
	case a == autosaveOnChanges:
		res.Params["autosave"] = "after every change, on every broker"
	case a > 0:
		res.Params["autosave"] = "every " + a.String() + ", on every broker"
	}
	if _, err := mqtttest.LookStunnel(); err != nil {
		res.Error = fmt.Sprintf("%v (a site's TLS tunnel to its centre)", err)
		return res
	}
	if e.cfg.Centre == centreNATS {
		bin, err := siteworld.NATSServer()
		if err != nil {
			res.Error = err.Error()
			return res
		}
		res.Params["nats_server"] = bin
	}
	for _, n := range e.cfg.Sites {
		if ctx.Err() != nil {
			break
		}
		if err := sitesStep(ctx, e, n, res); err != nil {
			res.Error = fmt.Sprintf("%d sites: %v", n, err)
			return res
		}
	}
	res.note("every process on the same %d cores: %d rooms (full roomds in this process: loop, sim backend, journal, TLS client), every broker, tunnel and console; separate sites would not share the CPU", runtime.NumCPU(), e.cfg.SiteRooms*e.cfg.Sites[len(e.cfg.Sites)-1])
	if e.cfg.Centre == centreNATS {
		res.note("the centre is configs/nats (centre.conf, node.conf, users.conf) on three nats-server nodes on this machine (JetStream, stream_replicas 3, mutual TLS between nodes), with only ports, paths and certificates rewritten; each site's bridge lists the three nodes, each through a tunnel and a WAN link of its own")
		res.note("sites run the shipped configs/mosquitto files (mosquitto.conf, acl, site-bridge.conf, site-tunnel.conf), with only ports, paths and certificates rewritten and logging cut to errors and warnings; room journals on %s", sitesStateDir(e))
	} else {
		res.note("brokers and tunnels run the shipped configs/mosquitto files (central.conf, central.acl, mosquitto.conf, acl, site-bridge.conf, site-tunnel.conf), with only ports, paths and certificates rewritten and logging cut to errors and warnings; room journals on %s", sitesStateDir(e))
	}
	res.note("the catch-up starts with the bridge's own reconnection backoff (restart_timeout 2 30, as shipped): resume -> first message at the centre is that delay")
	return res
}

func sitesStateDir(e *env) string {
	if e.cfg.FleetDir != "" {
		return e.cfg.FleetDir
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// sitesWorld is one step's world and what the suite measures in it.
type sitesWorld struct {
	e   *env
	w   *siteworld.World
	col sitesCollector
}

func sitesStep(ctx context.Context, e *env, n int, res *SuiteResult) error {
	m := e.cfg.SiteRooms
	sites := map[string][]string{}
	for i := range n {
		ids := make([]string, m)
		for j := range ids {
			ids[j] = fmt.Sprintf("room-%d", j+1)
		}
		sites[fmt.Sprintf("site-%c", 'a'+i)] = ids
	}
	e.logf("sites: starting %d brokers, tunnels and WAN links for %d sites", n+1, n)
	dir := filepath.Join(e.dir, fmt.Sprintf("sites-%d", n))
	defer func() { _ = os.RemoveAll(dir) }()
	stateRoot, err := os.MkdirTemp(sitesStateDir(e), "roombench-sites-")
	if err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(stateRoot) }()

	// The shipped files, with logging cut to errors and warnings.
	tuning := siteworld.Tuning{QuietLogs: true, Autosave: e.cfg.SitesAutosave}
	var centre siteworld.Centre
	var nats *siteworld.NATSCentre
	if e.cfg.Centre == centreNATS {
		ids := slices.Sorted(maps.Keys(sites))
		if nats, err = siteworld.StartNATSCentre(filepath.Join(dir, "centre"), siteworld.NATSOptions{Sites: ids}); err != nil {
			return err
		}
		centre = nats
	} else if centre, err = siteworld.StartCentralMosquitto(filepath.Join(dir, "centre"), tuning); err != nil {
		return err
	}
	rc := e.roomConfig(stateRoot)
	sw, err := siteworld.Start(siteworld.Options{
		Dir: dir, Centre: centre, Sites: sites,
		Site: siteworld.SiteOptions{Tuning: tuning, BridgeInflight: e.cfg.BridgeInflight, WANDelay: e.cfg.WANRTT / 2},
		// The bench policy (panic cleared by an acknowledgement after
		// release), the bench's simulated room (flap limit raised: a room
		// presses its button often), roomd's default heartbeat.
		Rooms: siteworld.RoomOptions{Dir: stateRoot, Logger: rc.Logger,
			Config:  func(c *configs.Config) { c.Policy, c.MQTT.Heartbeat = rc.Policy, contract.DefaultHeartbeat },
			Backend: func(_ *configs.Config, log *slog.Logger) (*sim.Room, error) { return sim.New(rc.Spec, log) }},
		Consoles: siteworld.Consoles{FloorProbes: true},
		Patience: 60 * time.Second,
	})
	if err != nil {
		return err
	}
	defer func() { _ = sw.Close() }()
	w := &sitesWorld{e: e, w: sw}

	// Rooms, 32 starting at once, each until it answers a command.
	begin := wallclock.Now()
	if err := sw.StartRooms(ctx, 32, 60*time.Second); err != nil {
		return err
	}
	e.logf("sites: %d x %d rooms up in %s", n, m, wallclock.Since(begin).Round(time.Millisecond))

	// Every room presses its button once per period until the WAN is back.
	rng := rand.New(rand.NewPCG(uint64(e.cfg.Seed), 14))
	stopCycles := w.startCycles(ctx, rng)
	defer func() { stopCycles() }()
	if !sleepCtx(ctx, e.cfg.SitesPeriod) { // warm up: every room has pressed once
		return ctx.Err()
	}

	// WAN up.
	label := fmt.Sprintf("%d x %d rooms", n, m)
	w.col.open("up")
	floorsUp := w.probeFloors(ctx, e.cfg.SitesWindow, true)
	w.col.open("")

	// WAN cut.
	e.logf("sites: cutting the WAN of every site for %s", e.cfg.Cut)
	for _, s := range sw.Sites() {
		s.WAN.Cut()
	}
	if err := sw.AwaitLinks(false, 60*time.Second); err != nil {
		return err
	}
	cpuCut := w.cpu()
	w.col.open("cut")
	floorsCut := w.probeFloors(ctx, e.cfg.Cut, false)
	w.col.open("")
	stopCycles()
	// Let the last presses settle (debounce, ack, clear) before counting.
	sleepCtx(ctx, time.Second)
	cpuCutEnd := w.cpu()
	all, _ := sw.Expected() // ground truth: every record of every room's journal
	raisedInCut := w.col.count("cut")
	before := sw.Booking.Messages()

	// WAN back: how long until the centre holds every record.
	e.logf("sites: WAN back; %d alerts were raised while it was cut", raisedInCut)
	resumed := wallclock.Now()
	sw.Booking.Expect(all)
	for _, s := range sw.Sites() {
		s.WAN.Resume()
	}
	cpuResume := w.cpu()
	cu, err := sw.Booking.CatchUp(ctx, resumed, 10*time.Minute, 10*time.Second)
	cpuCaught := w.cpu()
	crossed := sw.Booking.Messages() - before
	if err != nil {
		res.problem("%s: %v", label, err)
	}

	// Figures.
	guardUp, centreUp := siteworld.Latencies(w.col.samples("up"), sw.Booking)
	guardCut, _ := siteworld.Latencies(w.col.samples("cut"), sw.Booking)
	siteFloorUp, centreFloorUp, siteFloorCut := floorsUp.site, floorsUp.centre, floorsCut.site
	res.row(label+", WAN up: press -> alert_raised at the site's guard", summarize(guardUp), &siteFloorUp)
	res.row(label+", WAN up: press -> alert_raised at the centre", summarize(centreUp), &centreFloorUp)
	res.row(label+", WAN cut: press -> alert_raised at the site's guard", summarize(guardCut), &siteFloorCut)
	res.check(label+": alerts raised while the WAN was cut", fmt.Sprintf("%d in %s", raisedInCut, e.cfg.Cut), "", nil)
	res.check(label+": messages that crossed to the centre after the cut", fmt.Sprint(crossed), "", nil)
	if !cu.First.IsZero() {
		res.check(label+": WAN back -> first message at the centre (bridge reconnection)", cu.First.Sub(resumed).Round(time.Millisecond).String(), "", nil)
	}
	if !cu.Caught.IsZero() {
		res.check(label+": WAN back -> the centre holds every record", cu.Caught.Sub(resumed).Round(time.Millisecond).String(), "", nil)
		if d := cu.Caught.Sub(cu.First); d > 0 && !cu.First.IsZero() {
			med, top := sw.Booking.DrainRate()
			res.check(label+": catch-up rate (after the reconnection)", fmt.Sprintf("%.0f messages/s on average; %d in the median second, %d in the busiest",
				float64(crossed)/d.Seconds(), med, top), "", nil)
		}
	}
	res.check(label+": CPU while cut (% of a core)", cpuCut.share(cpuCutEnd), "", nil)
	res.check(label+": CPU during the catch-up (% of a core)", cpuResume.share(cpuCaught), "", nil)
	missing, _ := sw.Booking.Missing(all, nil)
	lost, dups := len(missing), sw.Booking.Stats().Duplicates
	res.check(label+": records checked (every seq of every room)", fmt.Sprint(len(all)), "", nil)
	res.check(label+": records lost", fmt.Sprint(lost), "0", boolp(lost == 0))
	res.check(label+": records that arrived only after a replay was asked for", fmt.Sprint(cu.Recovered), "", nil)
	res.check(label+": duplicates dropped at the centre (at-least-once)", fmt.Sprint(dups), "", nil)
	if f := w.col.failures.Load(); f > 0 {
		res.problem("%s: %d press cycles had a record late by more than %s or lost at the site's guard", label, f, sitesRecordTimeout)
	}
	if lost > 0 {
		res.problem("%s: %d records never reached the centre", label, lost)
	}
	if nats != nil {
		stopCycles = w.startCycles(ctx, rng)
		return w.failover(ctx, nats, label, res, stopCycles)
	}
	return nil
}

// startCycles makes every room press its button once per period (random
// phase) until the returned function is called, which waits for the
// cycles under way.
func (w *sitesWorld) startCycles(ctx context.Context, rng *rand.Rand) (stop func()) {
	done := make(chan struct{})
	var cyclers sync.WaitGroup
	for _, s := range w.w.Sites() {
		for _, room := range s.RoomIDs() {
			phase := time.Duration(rng.Int64N(int64(w.e.cfg.SitesPeriod)))
			cyclers.Go(func() { w.cycles(ctx, s, room, phase, done) })
		}
	}
	return func() {
		select {
		case <-done:
		default:
			close(done)
		}
		cyclers.Wait()
	}
}

// failover kills (SIGKILL) the node of a clustered centre that holds the
// first site's bridge while every room goes on pressing its button, and
// measures how long until every site's bridge is connected to another node,
// and until alerts reach the centre again: the first alert pressed after
// the kill and the alerts of the window after it, at the site's guard and
// at the centre. Then it stops the rooms and checks that the centre holds
// every record.
func (w *sitesWorld) failover(ctx context.Context, c *siteworld.NATSCentre, label string, res *SuiteResult, stopCycles func()) error {
	sw := w.w
	defer stopCycles()
	if !sleepCtx(ctx, w.e.cfg.SitesPeriod) { // every room pressing again
		return ctx.Err()
	}
	first := sw.Sites()[0].ID
	victim, err := c.NodeOf(first)
	if err != nil || victim == nil {
		return fmt.Errorf("failover: which node holds %s's bridge: %v", first, err)
	}
	on := 0
	for _, s := range sw.Sites() {
		if n, err := c.NodeOf(s.ID); err == nil && n == victim {
			on++
		}
	}
	w.e.logf("sites: killing %s, which holds the bridges of %d of %d sites", victim.Name, on, len(sw.Sites()))
	w.col.open("failover")
	killed := wallclock.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	// Which node holds each bridge, from the nodes' monitoring, every
	// 100 ms: the booking system may be reconnecting itself and miss the
	// bridges' announcements.
	reconnected := map[string]time.Duration{}
	deadline := killed.Add(5 * time.Minute)
	for len(reconnected) < len(sw.Sites()) && wallclock.Now().Before(deadline) && ctx.Err() == nil {
		for _, s := range sw.Sites() {
			if _, ok := reconnected[s.ID]; ok {
				continue
			}
			if n, err := c.NodeOf(s.ID); err == nil && n != nil && n != victim {
				reconnected[s.ID] = wallclock.Since(killed)
			}
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	if len(reconnected) < len(sw.Sites()) {
		res.problem("%s: failover: only %d of %d sites' bridges on another node within 5 minutes", label, len(reconnected), len(sw.Sites()))
	}
	sleepCtx(ctx, w.e.cfg.SitesWindow)
	w.col.open("")
	stopCycles()
	sleepCtx(ctx, time.Second)
	samples := w.col.samples("failover")
	// The first alert pressed after the kill, and when it reached the
	// centre.
	var firstAt time.Duration
	for _, smp := range samples {
		if at, ok := sw.Booking.AlertArrived(smp.Raised.Key); ok && smp.Pressed.After(killed) {
			if d := at.Sub(killed); firstAt == 0 || d < firstAt {
				firstAt = d
			}
		}
	}
	var slowest time.Duration
	moved := 0
	for _, s := range sw.Sites() {
		if d, ok := reconnected[s.ID]; ok {
			moved++
			slowest = max(slowest, d)
		}
	}
	res.check(label+": failover: node killed (SIGKILL) while it held bridges", fmt.Sprintf("%s, %d of %d sites' bridges", victim.Name, on, len(sw.Sites())), "", nil)
	res.check(label+": failover: kill -> every bridge connected to another node", fmt.Sprintf("%s (%d of %d sites; polled every 100 ms)", slowest.Round(time.Millisecond), moved, len(sw.Sites())), "", nil)
	if firstAt > 0 {
		res.check(label+": failover: kill -> first alert at the centre", firstAt.Round(time.Millisecond).String(), "", nil)
	}
	guard, centre := siteworld.Latencies(samples, sw.Booking)
	res.row(label+", failover window: press -> alert_raised at the site's guard", summarize(guard), nil)
	res.row(label+", failover window: press -> alert_raised at the centre", summarize(centre), nil)

	all, _ := sw.Expected()
	since := wallclock.Now()
	sw.Booking.Expect(all)
	cu, err := sw.Booking.CatchUp(ctx, since, 10*time.Minute, 10*time.Second)
	if err != nil {
		res.problem("%s: after the failover: %v", label, err)
	}
	missing, _ := sw.Booking.Missing(all, nil)
	res.check(label+": failover: records checked (every seq of every room)", fmt.Sprint(len(all)), "", nil)
	res.check(label+": failover: records lost", fmt.Sprint(len(missing)), "0", boolp(len(missing) == 0))
	res.check(label+": failover: records that arrived only after a replay was asked for", fmt.Sprint(cu.Recovered), "", nil)
	if len(missing) > 0 {
		res.problem("%s: %d records never reached the centre after the failover", label, len(missing))
	}
	return nil
}

// sitesRecordTimeout bounds the wait for one record at a site's guard.
const sitesRecordTimeout = 10 * time.Second

// ---- press cycles ----

// sitesCollector keeps the samples of the phase that is open.
type sitesCollector struct {
	mu       sync.Mutex
	phase    string
	byPhase  map[string][]siteworld.Sample
	failures atomic.Int64
}

func (c *sitesCollector) open(phase string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = phase
	if c.byPhase == nil {
		c.byPhase = map[string][]siteworld.Sample{}
	}
}

func (c *sitesCollector) add(s siteworld.Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != "" {
		c.byPhase[c.phase] = append(c.byPhase[c.phase], s)
	}
}

func (c *sitesCollector) count(phase string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byPhase[phase])
}

func (c *sitesCollector) samples(phase string) []siteworld.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]siteworld.Sample(nil), c.byPhase[phase]...)
}

// cycles runs a press cycle (siteworld's Site.Cycle: press, alert_raised at
// the site's guard, release, acknowledgement, alert cleared) in a room once
// per period until stop.
func (w *sitesWorld) cycles(ctx context.Context, s *siteworld.Site, room string, phase time.Duration, stop <-chan struct{}) {
	periodically(ctx, phase, w.e.cfg.SitesPeriod, stop, func() {
		smp, err := s.Cycle(ctx, room, "", sitesRecordTimeout)
		if !smp.Pressed.IsZero() {
			w.col.add(smp)
		}
		if err != nil {
			w.col.failures.Add(1)
		}
	})
}

// ---- floors ----

type floors struct{ site, centre Summary }

// probeFloors runs every site's floor probe every 100 ms for d; withCentre
// also waits for each probe at the centre.
func (w *sitesWorld) probeFloors(ctx context.Context, d time.Duration, withCentre bool) floors {
	var mu sync.Mutex
	var site, centre []time.Duration
	var wg sync.WaitGroup
	for _, s := range w.w.Sites() {
		wg.Go(func() {
			end := wallclock.Now().Add(d)
			for wallclock.Now().Before(end) && ctx.Err() == nil {
				sd, cd, err := s.Floor.Sample(withCentre, sitesRecordTimeout)
				if err == nil {
					mu.Lock()
					site = append(site, sd)
					if withCentre {
						centre = append(centre, cd)
					}
					mu.Unlock()
				}
				sleepCtx(ctx, 100*time.Millisecond)
			}
		})
	}
	wg.Wait()
	return floors{site: summarize(site), centre: summarize(centre)}
}

// ---- CPU ----

// cpuSample is the CPU time of every process of the network and of
// roombench itself at one instant.
type cpuSample struct {
	at                   time.Time
	centre, sites, tunns time.Duration
	self                 time.Duration
}

func (w *sitesWorld) cpu() cpuSample {
	s := cpuSample{at: wallclock.Now()}
	for _, n := range w.w.Centre.Nodes() {
		if p, err := readProc(n.Pid()); err == nil {
			s.centre += p.CPU
		}
	}
	for _, site := range w.w.Sites() {
		if p, err := readProc(site.Broker.Pid()); err == nil {
			s.sites += p.CPU
		}
		for _, t := range site.Tunnels {
			if p, err := readProc(t.Pid()); err == nil {
				s.tunns += p.CPU
			}
		}
	}
	if p, err := readProc(os.Getpid()); err == nil {
		s.self = p.CPU
	}
	return s
}

func (a cpuSample) share(b cpuSample) string {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return "?"
	}
	pct := func(x, y time.Duration) float64 { return 100 * float64(y-x) / float64(wall) }
	return fmt.Sprintf("centre %.0f%% (sum of its nodes), site mosquittos %.0f%% (sum), stunnels %.0f%% (sum), roombench (rooms, consoles) %.0f%%, over %s",
		pct(a.centre, b.centre), pct(a.sites, b.sites), pct(a.tunns, b.tunns), pct(a.self, b.self), wall.Round(100*time.Millisecond))
}
