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
	"time"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/configs"
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
}

var demoRooms = []demoRoom{
	// room-1's panic points are end-of-line supervised loops: the tester
	// panel's "Bridge bed" raises a critical fault there, where a plain
	// contact (the other rooms) goes silent.
	{id: "room-1", policy: "italy", points: "[{name: bed, eol: {preset: galaxy, adc: {channel: 0}}}, {name: toilet, eol: {preset: texecom, adc: {channel: 1}}}]"},
	{id: "room-2", policy: "italy", visit: 45 * time.Minute, points: "[{name: bed, pin: GPIO23}, {name: toilet, pin: GPIO18}]"},
	{id: "room-3", policy: "spain", visit: 3 * time.Minute, points: "{pin: GPIO23}"},
	{id: "room-4", policy: "italy", oos: "alarm sounder being replaced", points: "{pin: GPIO23}"},
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
	if url == "" {
		b, err := broker.Start(broker.Options{Logger: log})
		if err != nil {
			return fmt.Errorf("demo broker: %w", err)
		}
		defer b.Close()
		url = b.URL()
		stop, err := startDemoRooms(ctx, url, dir, log)
		if err != nil {
			return err
		}
		defer stop()
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
		board:    board.Options{Broker: url, SimUsername: "sim-driver", Logger: log},
		accounts: accounts, listen: *listen, title: "Demo", log: log, out: stdout,
		ready: func(u string) {
			fmt.Fprintf(stdout, "guard station board (demo): %s\n", u)
			fmt.Fprintf(stdout, "  log in as %s, password %s\n", demoOperator, demoPassword)
			fmt.Fprintf(stdout, "  broker: %s", url)
			if *brokerURL == "" {
				fmt.Fprintf(stdout, " (embedded; simulated rooms: room-1 idle, room-2 in a 45-minute visit, room-3 in a 3-minute visit, room-4 out of service)")
			}
			fmt.Fprintf(stdout, "\n  click \"Arm sound\", then open the tester panel (T) to press a panic button\n  Ctrl-C ends the demo\n")
		},
	})
}

// startDemoRooms runs the demo's simulated rooms on url (on the real clock,
// so the board's countdowns are true) and starts their visits.
func startDemoRooms(ctx context.Context, url, dir string, log *slog.Logger) (stop func(), err error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var dones []chan error
	stop = func() {
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
		r, err := room.Open(room.Options{Config: cfg, Logger: log.With("room", d.id), Version: "demo"})
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
	}
	return stop, nil
}
