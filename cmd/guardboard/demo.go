package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link/broker"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/roomclient"
)

// The demo's login (it listens on loopback only, with simulated rooms).
const (
	demoOperator = "guard-1"
	demoPassword = "demo-password"
)

// demoRoom is one simulated room of the demo and what it does at the start.
type demoRoom struct {
	id     string
	policy string
	visit  time.Duration // a visit started at once; 0 none
	oos    string        // out of service with this reason
	points string        // the panic points' YAML
	// cutAfter, if set, cuts the room's link that long after the start:
	// the demo shows a room going out of reach during a visit.
	cutAfter time.Duration
}

var demoRooms = []demoRoom{
	// room-1's panic points are end-of-line supervised loops: the tester
	// panel's "Bridge bed" raises a critical fault there, where a plain
	// contact (the other rooms) goes silent.
	{id: "room-1", policy: "italy", points: "[{name: bed, eol: {preset: galaxy, adc: {channel: 0}}}, {name: toilet, eol: {preset: texecom, adc: {channel: 1}}}]"},
	{id: "room-2", policy: "italy", visit: 45 * time.Minute, points: "[{name: bed, pin: GPIO23}, {name: toilet, pin: GPIO18}]"},
	{id: "room-3", policy: "spain", visit: 3 * time.Minute, points: "{pin: GPIO23}"},
	{id: "room-4", policy: "italy", oos: "alarm sounder being replaced", points: "{pin: GPIO23}"},
	{id: "room-5", policy: "italy", visit: time.Hour, points: "{pin: GPIO23}", cutAfter: 40 * time.Second},
}

// demoClock is the system's clock, which the demo's rooms share with the
// board on this machine: relative to the board their clock is synchronised,
// so their tiles do not say otherwise.
type demoClock struct{ daemon.SystemClock }

// Synced implements timebase.Sources: the board reads the same clock.
func (demoClock) Synced() bool { return true }

// demoCables are the demo rooms' cables to the embedded broker, which the
// tester panel may cut and restore (board.LinkCutter).
type demoCables struct {
	mu     sync.Mutex
	cables map[string]*broker.Cable
}

// Cuttable implements board.LinkCutter.
func (d *demoCables) Cuttable() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.cables))
	for id := range d.cables {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// CutLink implements board.LinkCutter.
func (d *demoCables) CutLink(room string, cut bool) error {
	d.mu.Lock()
	c := d.cables[room]
	d.mu.Unlock()
	if c == nil {
		return fmt.Errorf("no demo room %q", room)
	}
	if cut {
		c.Cut()
	} else {
		c.Restore()
	}
	return nil
}

// demoConfig is a simulated room with named panic points and every output
// (the pins only name the roles: the simulator has no GPIO).
const demoConfig = `room: %s
state_dir: %s
policy: {preset: %s}
device:
  backend: sim
  inputs:
    door: {pin: GPIO17}
    lock: {pin: GPIO27}
    presence: [{pin: GPIO22}]
    panic: %s
    staff: {pin: GPIO24, active_low: true}
  outputs:
    in_use: {pin: GPIO13}
    warning: {pin: GPIO19}
    alarm_light: {pin: GPIO26}
    alarm_sounder: {pin: GPIO20}
    reassurance: {pin: GPIO21}
mqtt: {broker: %q, heartbeat: 10s, keepalive: 5s}
commands: {operators: [guard-*]}
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokerURL := fs.String("broker", "", "watch this broker's rooms (no password; a demo broker such as roomd -demo --keep's) instead of starting simulated rooms")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` of the board (loopback)")
	level := fs.String("log-level", "warn", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: guardboard -demo [--broker URL] [--listen ADDR]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("demo: %v", err)
	}
	if fs.NArg() != 0 {
		return usagef("demo takes no arguments besides flags, got %q", fs.Args())
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return usagef("demo: --log-level %q: %v", *level, err)
	}
	dir, err := os.MkdirTemp("", "guardboard-demo-*")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	url := *brokerURL
	var links board.LinkCutter
	if url == "" {
		b, err := broker.Start(broker.Options{Logger: log})
		if err != nil {
			return fmt.Errorf("demo broker: %w", err)
		}
		defer b.Close()
		url = b.URL()
		cables := &demoCables{cables: map[string]*broker.Cable{}}
		stop, err := startDemoRooms(ctx, b.Addr(), dir, cables, log)
		if err != nil {
			return err
		}
		defer stop()
		links = cables
	}

	accountsPath := filepath.Join(dir, "accounts")
	if err := (board.AccountsFile{Path: accountsPath, Cost: 10}).Add(demoOperator, demoPassword); err != nil {
		return fmt.Errorf("demo account: %w", err)
	}
	accounts, err := board.OpenAccounts(accountsPath)
	if err != nil {
		return err
	}
	return serve(ctx, serveArgs{
		board:    board.Options{Broker: url, SimUsername: "sim-driver", Logger: log, Rooms: []string{"room-*"}},
		accounts: accounts, listen: *listen, title: "Demo", log: log, out: stdout, links: links,
		ready: func(u string) {
			fmt.Fprintf(stdout, "guard station board (demo): %s\n", u)
			fmt.Fprintf(stdout, "  log in as %s, password %s\n", demoOperator, demoPassword)
			fmt.Fprintf(stdout, "  broker: %s", url)
			if *brokerURL == "" {
				fmt.Fprintf(stdout, " (embedded; simulated rooms: room-1 idle, room-2 in a 45-minute visit, room-3 in a 3-minute visit, room-4 out of service,\n          room-5 in a 1-hour visit whose link is cut %s after the start: restore it from the tester panel)", demoRooms[4].cutAfter)
			}
			fmt.Fprintf(stdout, "\n  click \"Arm sound\", then open the tester panel (T) to press a panic button\n  Ctrl-C ends the demo\n")
		},
	})
}

// startDemoRooms runs the demo's simulated rooms on the broker at addr,
// each through its cable (on the real clock, so the board's countdowns are
// true), and starts their visits.
func startDemoRooms(ctx context.Context, addr, dir string, cables *demoCables, log *slog.Logger) (stop func(), err error) {
	url := "tcp://" + addr
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var dones []chan error
	var timers []*time.Timer
	stop = func() {
		for _, t := range timers {
			t.Stop()
		}
		cancel()
		for _, d := range dones {
			<-d
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	for _, d := range demoRooms {
		state := filepath.Join(dir, d.id)
		if err := os.MkdirAll(state, 0o700); err != nil {
			return nil, fmt.Errorf("demo room %s: %w", d.id, err)
		}
		cfg, err := configs.Parse(fmt.Appendf(nil, demoConfig, d.id, state, d.policy, d.points, url), "demo room "+d.id)
		if err != nil {
			return nil, fmt.Errorf("demo room %s config: %w", d.id, err)
		}
		cable := broker.NewCable(addr)
		cables.mu.Lock()
		cables.cables[d.id] = cable
		cables.mu.Unlock()
		r, err := room.Open(room.Options{Config: cfg, Logger: log.With("room", d.id), Version: "demo", Dial: cable.Dial,
			Clock: demoClock{}})
		if err != nil {
			return nil, fmt.Errorf("demo room %s: %w", d.id, err)
		}
		done := make(chan error, 1)
		dones = append(dones, done)
		go func() { done <- r.Run(rctx) }()
	}
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	booking, err := roomclient.Dial(cctx, roomclient.Options{Broker: url, ClientID: "demo-booking", CleanSession: true})
	if err != nil {
		return nil, fmt.Errorf("demo booking system: %w", err)
	}
	defer booking.Close()
	for _, d := range demoRooms {
		var cmd roomclient.Command
		switch {
		case d.visit > 0:
			cmd = roomclient.StartVisit("demo-"+d.id, d.visit)
		case d.oos != "":
			cmd = roomclient.SetService(false, d.oos)
		default:
			continue
		}
		reply, err := booking.Send(cctx, d.id, cmd)
		if err == nil {
			err = reply.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("demo room %s: %s: %w", d.id, cmd.Action, err)
		}
		if d.cutAfter > 0 {
			timers = append(timers, time.AfterFunc(d.cutAfter, cables.cables[d.id].Cut))
		}
	}
	return stop, nil
}
