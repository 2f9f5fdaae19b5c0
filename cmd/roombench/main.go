// Command roombench measures roomd against a real mosquitto on loopback and
// prints each figure beside the floor measured in the same run: a bare MQTT
// publisher to a bare subscriber through the same broker, QoS 1.
//
//	go run ./cmd/roombench [flags] SUITE...
//
// Suites: latency, flood, timer, footprint, fleet, outage, sites, or all. Without --broker
// it starts mosquitto itself on a free loopback port with a temporary config
// and kills it at exit. --short is the smoke mode for CI: tiny sizes, a few
// seconds each; it checks that everything works and nothing is lost, and
// its numbers mean nothing.
//
// docs/performance.md records the measured figures and the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/roomd/roomd/journal"
)

// Suites in the order "all" runs them.
var suiteNames = []string{"latency", "flood", "timer", "footprint", "fleet", "outage", "sites"}

type suiteFunc func(ctx context.Context, e *env) *SuiteResult

var suites = map[string]suiteFunc{
	"latency":   runLatency,
	"flood":     runFlood,
	"timer":     runTimer,
	"footprint": runFootprint,
	"fleet":     runFleet,
	"outage":    runOutage,
	"sites":     runSites,
}

// config holds the flags.
type config struct {
	Broker      string
	Short       bool
	JSON        bool
	Verbose     bool
	Samples     int
	Visits      int
	TimerRooms  int
	Duration    time.Duration
	Rooms       []int
	FleetWindow time.Duration
	FleetPeriod time.Duration
	FleetP99    time.Duration
	FleetDir    string
	Outage      time.Duration
	OutageRooms int
	Roomd       string
	Seed        int64
	NoDelay     bool
	SaveEvery   time.Duration
	Sites       []int
	SiteRooms   int
	SitesWindow time.Duration
	SitesPeriod time.Duration
	Cut         time.Duration
	WANRTT      time.Duration
	// SitesAutosave, if not zero, makes the sites suite's brokers save
	// their databases at this interval, or after every change
	// (autosaveOnChanges), instead of as shipped.
	SitesAutosave time.Duration
	// BridgeInflight, if not zero, replaces the site brokers'
	// max_inflight_messages (the bridge's window to the centre).
	BridgeInflight int
	// SyncDelays are the sync latencies the latency suite injects into the
	// room's journal, one room each, in one run ("0", "20ms", "sdcard").
	SyncDelays []string
	// Flood: the flood suite's command rate from one identity.
	FloodRate int
	FloodFor  time.Duration
	// Centre is the sites suite's centre: centreMosquitto (central.conf)
	// or centreNATS (configs/nats, three nodes).
	Centre string
}

// The centres the sites suite can run.
const (
	centreMosquitto = "mosquitto"
	centreNATS      = "nats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code (0 all good,
// 1 a target missed or a check failed, 2 bad usage or a suite could not run).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, names, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "roombench:", err)
		return 2
	}
	lvl := slog.LevelWarn
	if cfg.Verbose {
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	rep, err := runSuites(ctx, cfg, names, log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "roombench:", err)
		return 2
	}
	rep.Command = "roombench " + strings.Join(args, " ")
	if cfg.JSON {
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "roombench: write JSON:", err)
			return 2
		}
	} else {
		rep.writeTable(stdout)
	}
	code := 0
	for _, s := range rep.Suites {
		if s.Error != "" {
			return 2
		}
		if s.Failed(cfg.Short) {
			code = 1
		}
	}
	return code
}

func parseFlags(args []string, stderr io.Writer) (config, []string, error) {
	fs := flag.NewFlagSet("roombench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var rooms, sites, autosave string
	fs.StringVar(&cfg.Broker, "broker", "", "use this broker `URL` (tcp://127.0.0.1:1883) instead of starting mosquitto; the outage suite needs its own. The rooms' persistent sessions (client ids roomd-<room>, unique per run) stay on it")
	fs.BoolVar(&cfg.Short, "short", false, "smoke mode: tiny sizes, a few seconds per suite; checks, not numbers")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON")
	fs.BoolVar(&cfg.Verbose, "v", false, "log progress (and roomd's warnings) to stderr")
	fs.IntVar(&cfg.Samples, "samples", 500, "latency: samples per path")
	fs.IntVar(&cfg.Visits, "visits", 50, "timer: visits in all")
	fs.IntVar(&cfg.TimerRooms, "timer-rooms", 5, "timer: rooms running visits at once")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Minute, "footprint: sampling time of each phase (idle, visit)")
	fs.StringVar(&rooms, "rooms", "100,250,500,1000,1500,2000,3000,4000", "fleet: room counts to step through, comma-separated")
	fs.DurationVar(&cfg.FleetWindow, "fleet-window", 20*time.Second, "fleet: measuring time per step")
	fs.DurationVar(&cfg.FleetPeriod, "fleet-period", 10*time.Second, "fleet: each room raises one panic alert this often")
	fs.DurationVar(&cfg.FleetP99, "fleet-p99", 100*time.Millisecond, "fleet: alert p99 target per step")
	fs.StringVar(&cfg.FleetDir, "fleet-dir", "", "fleet: parent of the rooms' state directories (journals) (default /dev/shm if present, else the temp dir)")
	fs.DurationVar(&cfg.Outage, "outage", 10*time.Second, "outage: how long the broker stays dead")
	fs.IntVar(&cfg.OutageRooms, "outage-rooms", 100, "outage: rooms raising alerts during the outage")
	fs.StringVar(&cfg.Roomd, "roomd", "", "footprint: roomd binary to run (default: build ./cmd/roomd)")
	fs.BoolVar(&cfg.NoDelay, "nodelay", true, "start mosquitto with set_tcp_nodelay true, as shipped (Nagle off on its sockets); --nodelay=false for mosquitto's default")
	var saveEvery string
	fs.StringVar(&saveEvery, "autosave-every", "", "start mosquitto saving its database at this interval (\"10s\"), or after every change (\"changes\", as shipped before), instead of once a minute (as shipped)")
	fs.StringVar(&sites, "sites", "2,4", "sites: site counts to step through, comma-separated (a new network for each)")
	fs.IntVar(&cfg.SiteRooms, "site-rooms", 250, "sites: rooms per site")
	fs.DurationVar(&cfg.SitesWindow, "sites-window", 30*time.Second, "sites: measuring time with the WAN up")
	fs.DurationVar(&cfg.SitesPeriod, "sites-period", 10*time.Second, "sites: each room raises one panic alert this often")
	fs.DurationVar(&cfg.Cut, "cut", 60*time.Second, "sites: how long every site's WAN stays cut")
	fs.DurationVar(&cfg.WANRTT, "wan-rtt", 0, "sites: round-trip time the WAN links add")
	fs.IntVar(&cfg.BridgeInflight, "bridge-inflight", 0, "sites: max_inflight_messages of the site brokers (the bridge's window to the centre) instead of as shipped")
	fs.StringVar(&cfg.Centre, "centre", centreMosquitto, "sites: the centre, \""+centreMosquitto+"\" (central.conf) or \""+centreNATS+"\" (configs/nats: three nats-server nodes; adds a node's failover)")
	fs.StringVar(&autosave, "sites-autosave", "", "sites: save every broker's database at this interval (\"60s\"), or after every change (\"changes\"), instead of as the shipped files say")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the random offsets")
	var delays string
	fs.StringVar(&delays, "sync-delay", "0", "latency: sync latencies to inject into the room's journal, comma-separated, one room each in the same run: durations (\"20ms\") or \"sdcard\" (p50 2 ms, p99 25 ms, one sync in 500 stalls 300 ms)")
	fs.IntVar(&cfg.FloodRate, "flood-rate", 1000, "flood: commands per second from the flooding identity")
	fs.DurationVar(&cfg.FloodFor, "flood-for", 20*time.Second, "flood: how long the flood lasts")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: roombench [flags] SUITE...\nsuites: %s, all\n", strings.Join(suiteNames, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.Short {
		// Smoke sizes, unless given explicitly.
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("samples", func() { cfg.Samples = 20 })
		def("flood-for", func() { cfg.FloodFor = 2 * time.Second })
		def("visits", func() { cfg.Visits = 4 })
		def("timer-rooms", func() { cfg.TimerRooms = 2 })
		def("duration", func() { cfg.Duration = 3 * time.Second })
		def("rooms", func() { rooms = "3,6" })
		def("fleet-window", func() { cfg.FleetWindow = 2 * time.Second })
		def("fleet-period", func() { cfg.FleetPeriod = 500 * time.Millisecond })
		def("outage", func() { cfg.Outage = 2 * time.Second })
		def("outage-rooms", func() { cfg.OutageRooms = 3 })
		def("sites", func() { sites = "2" })
		def("site-rooms", func() { cfg.SiteRooms = 2 })
		def("sites-window", func() { cfg.SitesWindow = 2 * time.Second })
		def("sites-period", func() { cfg.SitesPeriod = 500 * time.Millisecond })
		def("cut", func() { cfg.Cut = 3 * time.Second })
	}
	for _, d := range strings.Split(delays, ",") {
		if _, err := journal.ParseSyncDelay(d, 1); err != nil {
			return cfg, nil, fmt.Errorf("--sync-delay: %w", err)
		}
		cfg.SyncDelays = append(cfg.SyncDelays, strings.TrimSpace(d))
	}
	switch saveEvery {
	case "":
	case "changes":
		cfg.SaveEvery = autosaveOnChanges
	default:
		d, err := time.ParseDuration(saveEvery)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return cfg, nil, fmt.Errorf("--autosave-every %q: want whole seconds (at least 1s) or \"changes\"", saveEvery)
		}
		cfg.SaveEvery = d
	}
	switch autosave {
	case "":
	case "changes":
		cfg.SitesAutosave = autosaveOnChanges
	default:
		d, err := time.ParseDuration(autosave)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return cfg, nil, fmt.Errorf("--sites-autosave %q: want whole seconds (at least 1s) or \"changes\"", autosave)
		}
		cfg.SitesAutosave = d
	}
	for _, part := range strings.Split(sites, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 26 {
			return cfg, nil, fmt.Errorf("--sites %q: want site counts from 1 to 26 separated by commas", sites)
		}
		cfg.Sites = append(cfg.Sites, n)
	}
	for _, part := range strings.Split(rooms, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return cfg, nil, fmt.Errorf("--rooms %q: want positive integers separated by commas", rooms)
		}
		cfg.Rooms = append(cfg.Rooms, n)
	}
	if !slices.IsSorted(cfg.Rooms) {
		return cfg, nil, fmt.Errorf("--rooms %q: want increasing room counts", rooms)
	}
	switch {
	case cfg.Samples < 1:
		return cfg, nil, fmt.Errorf("--samples %d: want at least 1", cfg.Samples)
	case cfg.Visits < 1 || cfg.TimerRooms < 1:
		return cfg, nil, fmt.Errorf("--visits %d --timer-rooms %d: want at least 1 each", cfg.Visits, cfg.TimerRooms)
	case cfg.Duration <= 0 || cfg.FleetWindow <= 0 || cfg.FleetPeriod <= 0 || cfg.Outage <= 0:
		return cfg, nil, errors.New("--duration, --fleet-window, --fleet-period and --outage must be positive")
	case cfg.OutageRooms < 1:
		return cfg, nil, fmt.Errorf("--outage-rooms %d: want at least 1", cfg.OutageRooms)
	case cfg.BridgeInflight < 0:
		return cfg, nil, fmt.Errorf("--bridge-inflight %d: want 0 (as shipped) or more", cfg.BridgeInflight)
	case cfg.SiteRooms < 1:
		return cfg, nil, fmt.Errorf("--site-rooms %d: want at least 1", cfg.SiteRooms)
	case cfg.Centre != centreMosquitto && cfg.Centre != centreNATS:
		return cfg, nil, fmt.Errorf("--centre %q: want %q or %q", cfg.Centre, centreMosquitto, centreNATS)
	case cfg.Centre == centreNATS && cfg.SitesAutosave != 0:
		return cfg, nil, errors.New("--sites-autosave applies to the mosquitto centre only (with --centre nats it would set the site brokers' alone)")
	case cfg.SitesWindow <= 0 || cfg.SitesPeriod <= 0 || cfg.Cut <= 0 || cfg.WANRTT < 0:
		return cfg, nil, errors.New("--sites-window, --sites-period and --cut must be positive, --wan-rtt not negative")
	}
	names := fs.Args()
	if len(names) == 0 {
		fs.Usage()
		return cfg, nil, errors.New("no suite given")
	}
	var out []string
	for _, n := range names {
		if n == "all" {
			out = append(out, suiteNames...)
			continue
		}
		if suites[n] == nil {
			return cfg, nil, fmt.Errorf("unknown suite %q (want %s or all)", n, strings.Join(suiteNames, ", "))
		}
		out = append(out, n)
	}
	return cfg, out, nil
}

func sortStrings(s []string) { sort.Strings(s) }
