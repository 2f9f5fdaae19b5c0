package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
	roomd "github.com/roomd/roomd/room"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/wallclock"
)

// runSites runs N sites of M rooms each, bridged to a centre with the
// shipped files (see sitesnet.go), for each N of --sites. Every room presses
// its panic button once per --sites-period (random phase), the site's guard
// console sees the alert, acknowledges it, and it clears. It measures press
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
		"wan_rtt": e.cfg.WANRTT.String(), "open_files_limit": fmt.Sprint(fileLimit()), "autosave": "as shipped"}
	if e.cfg.BridgeInflight > 0 {
		res.Params["site_max_inflight_messages"] = fmt.Sprint(e.cfg.BridgeInflight)
	}
	switch a := e.cfg.SitesAutosave; {
	case a == autosaveOnChanges:
		res.Params["autosave"] = "after every change, on every broker"
	case a > 0:
		res.Params["autosave"] = "every " + a.String() + ", on every broker"
	}
	if _, err := findStunnel(); err != nil {
		res.Error = err.Error()
		return res
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
	res.note("brokers and tunnels run the shipped configs/mosquitto files (central.conf, central.acl, mosquitto.conf, acl, site-bridge.conf, site-tunnel.conf), with only ports, paths and certificates rewritten and logging cut to errors and warnings; room journals on %s", sitesStateDir(e))
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

// sitesWorld is one step's sites, rooms and consoles.
type sitesWorld struct {
	e      *env
	nw     *sitesNet
	guards map[string]*siteGuard
	floors map[string]*floorProbe
	centre *centreConsumer
	rooms  []*siteRoom
	col    sitesCollector
}

// siteRoom is a roomd room at a site.
type siteRoom struct {
	site, id string
	sim      *sim.Room
	r        *roomd.Room
	done     chan error
	stop     context.CancelFunc
}

func sitesStep(ctx context.Context, e *env, n int, res *SuiteResult) error {
	m := e.cfg.SiteRooms
	roomIDs := func(string) []string {
		ids := make([]string, m)
		for i := range ids {
			ids[i] = fmt.Sprintf("room-%d", i+1)
		}
		return ids
	}
	e.logf("sites: starting %d brokers, tunnels and WAN links for %d sites", n+1, n)
	nw, err := startSitesNet(filepath.Join(e.dir, fmt.Sprintf("sites-%d", n)), n, roomIDs, e.cfg.WANRTT, e.cfg.SitesAutosave, e.cfg.BridgeInflight)
	if err != nil {
		return err
	}
	defer nw.Close()
	stateRoot, err := os.MkdirTemp(sitesStateDir(e), "roombench-sites-")
	if err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(stateRoot) }()

	w := &sitesWorld{e: e, nw: nw, guards: map[string]*siteGuard{}, floors: map[string]*floorProbe{}}
	if w.centre, err = newCentreConsumer(nw); err != nil {
		return err
	}
	defer w.centre.Close()
	for _, s := range nw.sites {
		g, err := newSiteGuard(s)
		if err != nil {
			return err
		}
		defer g.Close()
		w.guards[s.id] = g
		f, err := newFloorProbe(s, g, w.centre)
		if err != nil {
			return err
		}
		defer f.Close()
		w.floors[s.id] = f
	}
	if err := w.centre.awaitLinks(nw.sites, true, 60*time.Second); err != nil {
		return err
	}

	// Rooms, 32 starting at once.
	begin := wallclock.Now()
	rc := sitesRoomSettings(e, stateRoot)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var startErr error
	for _, s := range nw.sites {
		for _, id := range roomIDs(s.id) {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := startSiteRoom(ctx, s, id, rc, w.guards[s.id])
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if startErr == nil {
						startErr = err
					}
					return
				}
				w.rooms = append(w.rooms, r)
			}()
		}
	}
	wg.Wait()
	defer func() {
		var wg sync.WaitGroup
		for _, r := range w.rooms {
			wg.Add(1)
			go func() { defer wg.Done(); r.Stop() }()
		}
		wg.Wait()
	}()
	if startErr != nil {
		return startErr
	}
	e.logf("sites: %d x %d rooms up in %s", n, m, wallclock.Since(begin).Round(time.Millisecond))

	// Every room presses its button once per period until the WAN is back.
	rng := rand.New(rand.NewPCG(uint64(e.cfg.Seed), 14))
	stop := make(chan struct{})
	var cyclers sync.WaitGroup
	for _, r := range w.rooms {
		phase := time.Duration(rng.Int64N(int64(e.cfg.SitesPeriod)))
		cyclers.Add(1)
		go func() {
			defer cyclers.Done()
			w.cycles(ctx, r, phase, stop)
		}()
	}
	stopCycles := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		cyclers.Wait()
	}
	defer stopCycles()
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
	for _, s := range nw.sites {
		s.wan.Cut()
	}
	if err := w.centre.awaitLinks(nw.sites, false, 60*time.Second); err != nil {
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
	targets := w.targets()
	records := 0
	for _, last := range targets {
		records += int(last.seq)
	}
	raisedInCut := w.col.count("cut")
	before := w.centre.messages.Load()

	// WAN back: how long until the centre holds every record.
	e.logf("sites: WAN back; %d alerts were raised while it was cut", raisedInCut)
	resumed := wallclock.Now()
	w.centre.expect(targets)
	for _, s := range nw.sites {
		s.wan.Resume()
	}
	cpuResume := w.cpu()
	first, caught, recovered, err := w.centre.catchUp(ctx, resumed, 10*time.Minute)
	cpuCaught := w.cpu()
	crossed := w.centre.messages.Load() - before
	if err != nil {
		res.problem("%s: %v", label, err)
	}

	// Figures.
	guardUp, centreUp := w.col.latencies("up", w.centre)
	guardCut, _ := w.col.latencies("cut", w.centre)
	siteFloorUp, centreFloorUp, siteFloorCut := floorsUp.site, floorsUp.centre, floorsCut.site
	res.row(label+", WAN up: press -> alert_raised at the site's guard", summarize(guardUp), &siteFloorUp)
	res.row(label+", WAN up: press -> alert_raised at the centre", summarize(centreUp), &centreFloorUp)
	res.row(label+", WAN cut: press -> alert_raised at the site's guard", summarize(guardCut), &siteFloorCut)
	res.check(label+": alerts raised while the WAN was cut", fmt.Sprintf("%d in %s", raisedInCut, e.cfg.Cut), "", nil)
	res.check(label+": messages that crossed to the centre after the cut", fmt.Sprint(crossed), "", nil)
	if !first.IsZero() {
		res.check(label+": WAN back -> first message at the centre (bridge reconnection)", first.Sub(resumed).Round(time.Millisecond).String(), "", nil)
	}
	if !caught.IsZero() {
		res.check(label+": WAN back -> the centre holds every record", caught.Sub(resumed).Round(time.Millisecond).String(), "", nil)
		if d := caught.Sub(first); d > 0 && !first.IsZero() {
			med, top := w.centre.drainRate()
			res.check(label+": catch-up rate (after the reconnection)", fmt.Sprintf("%.0f messages/s on average; %d in the median second, %d in the busiest",
				float64(crossed)/d.Seconds(), med, top), "", nil)
		}
	}
	res.check(label+": CPU while cut (% of a core)", cpuCut.share(cpuCutEnd), "", nil)
	res.check(label+": CPU during the catch-up (% of a core)", cpuResume.share(cpuCaught), "", nil)
	lost, dups := w.centre.lost(targets)
	res.check(label+": records checked (every seq of every room)", fmt.Sprint(records), "", nil)
	res.check(label+": records lost", fmt.Sprint(lost), "0", boolp(lost == 0))
	res.check(label+": records that arrived only after a replay was asked for", fmt.Sprint(recovered), "", nil)
	res.check(label+": duplicates dropped at the centre (at-least-once)", fmt.Sprint(dups), "", nil)
	if f := w.col.failures.Load(); f > 0 {
		res.problem("%s: %d press cycles had a record late by more than %s or lost at the site's guard", label, f, sitesRecordTimeout)
	}
	if lost > 0 {
		res.problem("%s: %d records never reached the centre", label, lost)
	}
	return nil
}

// Bounds of the sites suite's waits.
const (
	sitesRecordTimeout = 10 * time.Second // one record at a site's guard
	sitesCommandLife   = 10 * time.Minute // expires_at of the consoles' commands
)

// sitesRoom is what every room of the sites suite shares.
type sitesRoom struct {
	Dir       string // each room gets Dir/<site>/<room>
	Policy    controller.Policy
	Spec      device.Spec
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// sitesRoomSettings: the bench policy (panic cleared by an acknowledgement
// after release), the default simulated room with the flap limit raised (a
// room presses its button often), roomd's default heartbeat.
func sitesRoomSettings(e *env, dir string) sitesRoom {
	spec := sim.DefaultSpec()
	spec.Flap = device.Flap{MaxChanges: 100000, Window: 10 * time.Second}
	return sitesRoom{Dir: dir, Policy: benchPolicy(), Spec: spec, Heartbeat: contract.DefaultHeartbeat, Logger: e.log}
}

// startSiteRoom starts a room at a site (TLS, its own username and
// password, as a Pi would) and waits until it answers a command.
func startSiteRoom(ctx context.Context, s *siteNet, id string, c sitesRoom, g *siteGuard) (*siteRoom, error) {
	log := c.Logger.With("site", s.id, "room", id)
	stateDir := filepath.Join(c.Dir, s.id, id)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s/%s: create state dir: %w", s.id, id, err)
	}
	pwFile := filepath.Join(stateDir, "mqtt-password")
	if err := os.WriteFile(pwFile, []byte(sitePassword(id)+"\n"), 0o600); err != nil {
		return nil, err
	}
	cfg := configs.Default()
	cfg.Room, cfg.StateDir, cfg.Policy = id, stateDir, c.Policy
	cfg.Device.Backend = configs.BackendSim
	cfg.MQTT.Broker, cfg.MQTT.Base, cfg.MQTT.ClientID, cfg.MQTT.Username = s.url, contract.DefaultBase, "roomd-"+id, id
	cfg.MQTT.PasswordFile, cfg.MQTT.TLS.CAFile = pwFile, s.ca.CertFile
	cfg.MQTT.Heartbeat = c.Heartbeat
	cfg.Commands.Operators = []string{siteGuardOperator}
	sm, err := sim.New(c.Spec, log)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", s.id, id, err)
	}
	rr, err := roomd.Open(roomd.Options{Config: &cfg, Logger: log, Backend: sm})
	if err != nil {
		_ = sm.Close()
		return nil, fmt.Errorf("%s/%s: %w", s.id, id, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &siteRoom{site: s.id, id: id, sim: sm, r: rr, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- rr.Run(rctx) }()
	if _, err := g.request(ctx, id, controller.Command{Action: controller.ActionGetState}, 60*time.Second, nil); err != nil {
		r.Stop()
		return nil, fmt.Errorf("%s/%s does not answer commands: %w", s.id, id, err)
	}
	return r, nil
}

// Stop ends the room.
func (r *siteRoom) Stop() {
	r.stop()
	<-r.done
}

// ---- press cycles ----

// sitesCollector keeps the samples of the phase that is open.
type sitesCollector struct {
	mu       sync.Mutex
	phase    string
	samples  map[string][]siteSample
	failures atomic.Int64
}

// siteSample is one press: when, and the alert record it raised.
type siteSample struct {
	key     recKey
	pressed time.Time
	guard   time.Time
}

func (c *sitesCollector) open(phase string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = phase
	if c.samples == nil {
		c.samples = map[string][]siteSample{}
	}
}

func (c *sitesCollector) add(s siteSample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != "" {
		c.samples[c.phase] = append(c.samples[c.phase], s)
	}
}

func (c *sitesCollector) count(phase string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.samples[phase])
}

// latencies returns press -> site's guard and press -> centre of a phase.
func (c *sitesCollector) latencies(phase string, centre *centreConsumer) (guard, atCentre []time.Duration) {
	c.mu.Lock()
	samples := append([]siteSample(nil), c.samples[phase]...)
	c.mu.Unlock()
	for _, s := range samples {
		guard = append(guard, s.guard.Sub(s.pressed))
		if at, ok := centre.alertAt(s.key); ok {
			atCentre = append(atCentre, at.Sub(s.pressed))
		}
	}
	return guard, atCentre
}

// cycles presses r's panic button once per period until stop: the site's
// guard sees alert_raised, the button is released, the guard acknowledges
// and the alert clears.
func (w *sitesWorld) cycles(ctx context.Context, r *siteRoom, phase time.Duration, stop <-chan struct{}) {
	g := w.guards[r.site]
	period := w.e.cfg.SitesPeriod
	next := wallclock.Now().Add(phase)
	for {
		select {
		case <-time.After(wallclock.Until(next)):
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
		next = next.Add(period)
		pressed := wallclock.Now()
		if err := r.sim.SetInput(controller.InputPanic, controller.LevelActive); err != nil {
			w.col.failures.Add(1)
			continue
		}
		a, err := g.await(ctx, r.id, sitesRecordTimeout, func(m siteMsg) bool { return m.isAlert("alert_raised", "panic") })
		if err != nil {
			w.col.failures.Add(1)
			_ = r.sim.SetInput(controller.InputPanic, controller.LevelInactive)
			continue
		}
		w.col.add(siteSample{key: recKey{site: r.site, room: r.id, epoch: a.ev.Epoch, seq: a.ev.Seq}, pressed: pressed, guard: a.arrived})
		_ = r.sim.SetInput(controller.InputPanic, controller.LevelInactive)
		ack := controller.Command{Action: controller.ActionAckAlert, AlertID: a.ev.Alert.ID}
		if _, err := g.request(ctx, r.id, ack, sitesRecordTimeout, func(m siteMsg) bool { return m.isAlert("alert_cleared", "panic") }); err != nil {
			w.col.failures.Add(1)
		}
		if wallclock.Until(next) < 0 {
			next = wallclock.Now() // overloaded: do not burst to catch up
		}
	}
}

// ---- floors ----

type floors struct{ site, centre Summary }

// probeFloors runs every site's floor probe every 100 ms for d; withCentre
// also waits for each probe at the centre.
func (w *sitesWorld) probeFloors(ctx context.Context, d time.Duration, withCentre bool) floors {
	var mu sync.Mutex
	var site, centre []time.Duration
	var wg sync.WaitGroup
	for _, f := range w.floors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end := wallclock.Now().Add(d)
			for wallclock.Now().Before(end) && ctx.Err() == nil {
				s, c, err := f.sample(withCentre)
				if err == nil {
					mu.Lock()
					site = append(site, s)
					if withCentre {
						centre = append(centre, c)
					}
					mu.Unlock()
				}
				sleepCtx(ctx, 100*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return floors{site: summarize(site), centre: summarize(centre)}
}

// ---- ground truth ----

// recKey names a record at the centre.
type recKey struct {
	site, room, epoch string
	seq               uint64
}

// targets returns, per room and epoch, the last seq its journal holds.
func (w *sitesWorld) targets() map[recKey]recKey {
	out := map[recKey]recKey{}
	for _, r := range w.rooms {
		j := r.r.Journal()
		for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
			e, err := j.Get(lsn)
			if err != nil {
				continue
			}
			for _, rec := range e.Records {
				room := recKey{site: r.site, room: r.id, epoch: e.Epoch.String()}
				if rec.Seq > out[room].seq {
					out[room] = recKey{site: r.site, room: r.id, epoch: room.epoch, seq: rec.Seq}
				}
			}
		}
	}
	return out
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
	if p, err := readProc(w.nw.centre.Pid()); err == nil {
		s.centre = p.CPU
	}
	for _, site := range w.nw.sites {
		if p, err := readProc(site.broker.Pid()); err == nil {
			s.sites += p.CPU
		}
		if p, err := readProc(site.tunnel.Pid()); err == nil {
			s.tunns += p.CPU
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
	return fmt.Sprintf("centre mosquitto %.0f%%, site mosquittos %.0f%% (sum), stunnels %.0f%% (sum), roombench (rooms, consoles) %.0f%%, over %s",
		pct(a.centre, b.centre), pct(a.sites, b.sites), pct(a.tunns, b.tunns), pct(a.self, b.self), wall.Round(100*time.Millisecond))
}

// ---- MQTT clients of the sites network ----

func tlsClient(url, user string, ca *tls.Config, clean bool, handler mqtt.MessageHandler, onConnect mqtt.OnConnectHandler) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(user).SetUsername(user).SetPassword(sitePassword(user)).
		SetTLSConfig(ca).SetCleanSession(clean).SetProtocolVersion(4).SetKeepAlive(5 * time.Second).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetOrderMatters(true).SetDefaultPublishHandler(handler).
		SetOnConnectHandler(onConnect)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s to %s: %v", user, url, tok.Error())
	}
	return c, nil
}

// siteMsg is an alert record or a reply, as a site's guard saw it first.
type siteMsg struct {
	topic   string
	ev      contract.EventMessage
	reply   *contract.ReplyMessage
	arrived time.Time
}

func (m siteMsg) isAlert(typ, kind string) bool {
	return m.reply == nil && m.ev.Type == typ && m.ev.Alert != nil && m.ev.Alert.Kind == kind
}

// siteGuard is a site's guard console (guard-station): alerts and replies
// of every room, the first copy of each alert record, and the floor probe.
type siteGuard struct {
	site string
	cli  mqtt.Client

	mu      sync.Mutex
	inboxes map[string]chan siteMsg
	seen    map[recKey]bool
	floor   chan probeMsg
	ids     atomic.Uint64
}

func newSiteGuard(s *siteNet) (*siteGuard, error) {
	g := &siteGuard{site: s.id, inboxes: map[string]chan siteMsg{}, seen: map[recKey]bool{}, floor: make(chan probeMsg, 64)}
	filters := map[string]byte{"visitrooms/+/alerts": 1, "visitrooms/+/reply": 1}
	ca, err := s.ca.ClientConfig("", "")
	if err != nil {
		return nil, err
	}
	g.cli, err = tlsClient(s.url, siteGuardUser, ca, true, g.handle, func(c mqtt.Client) { c.SubscribeMultiple(filters, g.handle) })
	if err != nil {
		return nil, err
	}
	if tok := g.cli.SubscribeMultiple(filters, g.handle); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe the guard of %s: %v", s.id, tok.Error())
	}
	return g, nil
}

func (g *siteGuard) inbox(room string) chan siteMsg {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := g.inboxes[room]
	if ch == nil {
		ch = make(chan siteMsg, 256)
		g.inboxes[room] = ch
	}
	return ch
}

func (g *siteGuard) handle(_ mqtt.Client, m mqtt.Message) {
	now := wallclock.Now()
	parts := strings.Split(m.Topic(), "/")
	if len(parts) != 3 {
		return
	}
	room, kind := parts[1], parts[2]
	if room == siteFloorUser {
		if n, err := strconv.ParseUint(string(m.Payload()), 10, 64); err == nil {
			select {
			case g.floor <- probeMsg{n: n, arrived: now}:
			default:
			}
		}
		return
	}
	msg := siteMsg{topic: m.Topic(), arrived: now}
	if kind == "reply" {
		var rep contract.ReplyMessage
		if json.Unmarshal(m.Payload(), &rep) != nil {
			return
		}
		msg.reply = &rep
	} else {
		if json.Unmarshal(m.Payload(), &msg.ev) != nil {
			return
		}
		k := recKey{room: room, epoch: msg.ev.Epoch, seq: msg.ev.Seq}
		g.mu.Lock()
		dup := g.seen[k]
		g.seen[k] = true
		g.mu.Unlock()
		if dup {
			return
		}
	}
	select {
	case g.inbox(room) <- msg:
	default:
	}
}

// await waits for a message of room matching ok.
func (g *siteGuard) await(ctx context.Context, room string, timeout time.Duration, ok func(siteMsg) bool) (siteMsg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	in := g.inbox(room)
	for {
		select {
		case m := <-in:
			if ok(m) {
				return m, nil
			}
		case <-t.C:
			return siteMsg{}, fmt.Errorf("%s/%s: nothing within %s", g.site, room, timeout)
		case <-ctx.Done():
			return siteMsg{}, ctx.Err()
		}
	}
}

// request sends cmd as the board does, on cmd/guard-1 (the guard it logs
// in, whom the rooms name), and waits for a message matching
// want (nil: its reply), sending it again (same request_id) every 2 s while
// neither came.
func (g *siteGuard) request(ctx context.Context, room string, cmd controller.Command, timeout time.Duration, want func(siteMsg) bool) (siteMsg, error) {
	cmd.RequestID = fmt.Sprintf("%s-%d", siteGuardUser, g.ids.Add(1))
	payload := contract.EncodeCommand(cmd, wallclock.Now().Add(sitesCommandLife))
	end := wallclock.Now().Add(timeout)
	replied := false
	for wallclock.Now().Before(end) {
		if !replied {
			tok := g.cli.Publish("visitrooms/"+room+"/cmd/"+siteGuardOperator, 1, false, payload)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				return siteMsg{}, fmt.Errorf("%s/%s: publish %s: %v", g.site, room, cmd.Action, tok.Error())
			}
		}
		m, err := g.await(ctx, room, 2*time.Second, func(m siteMsg) bool {
			if m.reply != nil && m.reply.RequestID == cmd.RequestID {
				replied = true
				return want == nil
			}
			return want != nil && want(m)
		})
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return siteMsg{}, ctx.Err()
		}
	}
	return siteMsg{}, fmt.Errorf("%s/%s: %s (request %s): nothing within %s", g.site, room, cmd.Action, cmd.RequestID, timeout)
}

func (g *siteGuard) Close() { g.cli.Disconnect(100) }

// floorProbe publishes, as the floor-probe identity at a site, a counter on
// visitrooms/floor-probe/alerts: the site's guard gets it from the site
// broker, the centre's booking system through the bridge.
type floorProbe struct {
	cli    mqtt.Client
	guard  *siteGuard
	centre *centreConsumer
	site   string
	n      uint64
}

func newFloorProbe(s *siteNet, g *siteGuard, c *centreConsumer) (*floorProbe, error) {
	ca, err := s.ca.ClientConfig("", "")
	if err != nil {
		return nil, err
	}
	cli, err := tlsClient(s.url, siteFloorUser, ca, true, func(mqtt.Client, mqtt.Message) {}, nil)
	if err != nil {
		return nil, err
	}
	return &floorProbe{cli: cli, guard: g, centre: c, site: s.id}, nil
}

// sample publishes one probe and returns its time to the site's guard and,
// if withCentre, to the centre.
func (f *floorProbe) sample(withCentre bool) (site, centre time.Duration, err error) {
	f.n++
	n := f.n
	atCentre := f.centre.floorChan(f.site)
	start := wallclock.Now()
	f.cli.Publish("visitrooms/"+siteFloorUser+"/alerts", 1, false, []byte(strconv.FormatUint(n, 10)))
	deadline := time.NewTimer(sitesRecordTimeout)
	defer deadline.Stop()
	for site == 0 {
		select {
		case m := <-f.guard.floor:
			if m.n == n {
				site = m.arrived.Sub(start)
			}
		case <-deadline.C:
			return 0, 0, fmt.Errorf("floor probe %d of %s did not reach the guard", n, f.site)
		}
	}
	for withCentre && centre == 0 {
		select {
		case m := <-atCentre:
			if m.n == n {
				centre = m.arrived.Sub(start)
			}
		case <-deadline.C:
			return 0, 0, fmt.Errorf("floor probe %d of %s did not reach the centre", n, f.site)
		}
	}
	return site, centre, nil
}

func (f *floorProbe) Close() { f.cli.Disconnect(100) }

// centreConsumer is the central booking system: the first arrival of every
// record on events and on alerts, duplicates, every message counted, the
// bridges' state flags, and how far each room's records have arrived
// without a gap.
type centreConsumer struct {
	cli      mqtt.Client
	messages atomic.Int64

	mu      sync.Mutex
	events  map[recKey]time.Time
	alerts  map[recKey]time.Time
	dups    int
	links   map[string]string
	floors  map[string]chan probeMsg
	prefix  map[recKey]uint64 // (site, room, epoch) → every seq up to this has arrived
	target  map[recKey]uint64 // (site, room, epoch) → the last seq to wait for
	behind  int               // rooms whose prefix is below their target
	first   time.Time         // first message after expect
	arrived []time.Time       // every message after expect, as it arrived
	caught  time.Time
	changed chan struct{}
}

func newCentreConsumer(nw *sitesNet) (*centreConsumer, error) {
	c := &centreConsumer{events: map[recKey]time.Time{}, alerts: map[recKey]time.Time{}, links: map[string]string{},
		floors: map[string]chan probeMsg{}, prefix: map[recKey]uint64{}, target: map[recKey]uint64{},
		changed: make(chan struct{}, 1)}
	for _, s := range nw.sites {
		c.floors[s.id] = make(chan probeMsg, 64)
	}
	filters := map[string]byte{"visitrooms/+/+/events": 1, "visitrooms/+/+/alerts": 1, "$SYS/broker/connection/+/state": 1}
	ca, err := nw.ca.ClientConfig("", "")
	if err != nil {
		return nil, err
	}
	c.cli, err = tlsClient(nw.centreB, centreUser, ca, true, c.handle, func(cl mqtt.Client) { cl.SubscribeMultiple(filters, c.handle) })
	if err != nil {
		return nil, err
	}
	if tok := c.cli.SubscribeMultiple(filters, c.handle); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe the booking system: %v", tok.Error())
	}
	return c, nil
}

func (c *centreConsumer) floorChan(site string) chan probeMsg { return c.floors[site] }

func (c *centreConsumer) handle(_ mqtt.Client, m mqtt.Message) {
	now := wallclock.Now()
	parts := strings.Split(m.Topic(), "/")
	defer func() {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}()
	if parts[0] == "$SYS" && len(parts) == 5 {
		c.mu.Lock()
		c.links[parts[3]] = string(m.Payload())
		c.mu.Unlock()
		return
	}
	if len(parts) != 4 {
		return
	}
	c.messages.Add(1)
	site, room, kind := parts[1], parts[2], parts[3]
	if room == siteFloorUser {
		if n, err := strconv.ParseUint(string(m.Payload()), 10, 64); err == nil {
			select {
			case c.floors[site] <- probeMsg{n: n, arrived: now}:
			default:
			}
		}
		return
	}
	var ev contract.EventMessage
	if json.Unmarshal(m.Payload(), &ev) != nil {
		return
	}
	k := recKey{site: site, room: room, epoch: ev.Epoch, seq: ev.Seq}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.target) > 0 {
		if c.first.IsZero() {
			c.first = now
		}
		if c.caught.IsZero() {
			c.arrived = append(c.arrived, now)
		}
	}
	seen := c.events
	if kind == "alerts" {
		seen = c.alerts
	}
	if _, dup := seen[k]; dup {
		c.dups++
		return
	}
	seen[k] = now
	if kind != "events" {
		return
	}
	rk := recKey{site: site, room: room, epoch: ev.Epoch}
	p := c.prefix[rk]
	for {
		next := rk
		next.seq = p + 1
		if _, ok := c.events[next]; !ok {
			break
		}
		p++
	}
	before := c.prefix[rk]
	c.prefix[rk] = p
	if t, ok := c.target[rk]; ok && before < t && p >= t {
		c.behind--
		if c.behind == 0 {
			c.caught = now
		}
	}
}

// drainRate returns the messages per second of the catch-up, second by
// second from the first message: the median second and the busiest.
func (c *centreConsumer) drainRate() (median, busiest int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.arrived) == 0 {
		return 0, 0
	}
	var per []int
	for _, at := range c.arrived {
		i := int(at.Sub(c.arrived[0]) / time.Second)
		for len(per) <= i {
			per = append(per, 0)
		}
		per[i]++
	}
	busiest = slices.Max(per)
	slices.Sort(per)
	return per[len(per)/2], busiest
}

func (c *centreConsumer) alertAt(k recKey) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.alerts[k]
	return at, ok
}

// awaitLinks waits until every site's bridge flag at the centre is up (or
// down).
func (c *centreConsumer) awaitLinks(sites []*siteNet, up bool, timeout time.Duration) error {
	want := map[bool]string{true: "1", false: "0"}[up]
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		all := true
		for _, s := range sites {
			all = all && c.links[s.id] == want
		}
		c.mu.Unlock()
		if all {
			return nil
		}
		select {
		case <-c.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("the sites' bridges were not %s at the centre within %s", map[bool]string{true: "up", false: "down"}[up], timeout)
		}
	}
}

// expect sets what catchUp waits for: every seq of each room up to its
// target.
func (c *centreConsumer) expect(targets map[recKey]recKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.first, c.caught, c.behind = time.Time{}, time.Time{}, 0
	for rk, last := range targets {
		c.target[rk] = last.seq
		if c.prefix[rk] < last.seq {
			c.behind++
		}
	}
}

// catchUp waits until every target is reached. When nothing has arrived
// for 10 s since the first message after the cut, while records are missing
// and the site's bridge is up, it asks the rooms concerned to replay their
// gaps (the site's queue may have dropped them), and counts the records that
// first arrive after that as recovered.
func (c *centreConsumer) catchUp(ctx context.Context, since time.Time, timeout time.Duration) (first, caught time.Time, recovered int, err error) {
	deadline := wallclock.Now().Add(timeout)
	lastCount, quiet := c.messages.Load(), wallclock.Now()
	asked := map[recKey]bool{}
	for wallclock.Now().Before(deadline) {
		c.mu.Lock()
		behind, f, cg := c.behind, c.first, c.caught
		c.mu.Unlock()
		if behind == 0 {
			if cg.IsZero() {
				cg = since
			}
			return f, cg, c.count(asked), nil
		}
		if n := c.messages.Load(); n != lastCount || f.IsZero() {
			lastCount, quiet = n, wallclock.Now()
		} else if wallclock.Since(quiet) > 10*time.Second {
			maps.Copy(asked, c.askReplays())
			quiet = wallclock.Now()
		}
		select {
		case <-c.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return f, time.Time{}, 0, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, time.Time{}, 0, fmt.Errorf("the centre still lacked records of %d rooms %s after the WAN came back", c.behind, timeout)
}

// askReplays sends a replay for the gap of every room still behind.
func (c *centreConsumer) askReplays() map[recKey]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	asked := map[recKey]bool{}
	for rk, t := range c.target {
		p := c.prefix[rk]
		if p >= t || c.links[rk.site] != "1" {
			continue
		}
		for s := p + 1; s <= t; s++ {
			k := rk
			k.seq = s
			if _, ok := c.events[k]; !ok {
				asked[k] = true
			}
		}
		id := fmt.Sprintf("replay-%s-%s-%d", rk.site, rk.room, wallclock.Now().UnixNano())
		ep, _ := journal.ParseEpoch(rk.epoch)
		payload := contract.EncodeReplay(id, contract.Replay{Epoch: ep, From: p + 1, To: t}, wallclock.Now().Add(sitesCommandLife))
		c.cli.Publish("visitrooms/"+rk.site+"/"+rk.room+"/cmd", 1, false, payload)
	}
	return asked
}

func (c *centreConsumer) count(asked map[recKey]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range asked {
		if _, ok := c.events[k]; ok {
			n++
		}
	}
	return n
}

// lost counts the seqs up to each target that never arrived, and returns
// the duplicates dropped.
func (c *centreConsumer) lost(targets map[recKey]recKey) (lost, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for rk, last := range targets {
		for s := uint64(1); s <= last.seq; s++ {
			k := rk
			k.seq = s
			if _, ok := c.events[k]; !ok {
				lost++
			}
		}
	}
	return lost, c.dups
}

func (c *centreConsumer) Close() { c.cli.Disconnect(100) }

// probeMsg is a floor probe as it arrived.
type probeMsg struct {
	n       uint64
	arrived time.Time
}
