package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/gpio"
	"github.com/roomd/roomd/sim"
)

// runDaemon is "roomd run": load the config, open the backend and the link,
// and run the room until ctx ends.
func runDaemon(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` (required)")
	format := fs.String("log-format", "", "log format: text or json (default: the config's log.format)")
	level := fs.String("log-level", "", "log level: debug, info, warn or error (default: the config's log.level)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: roomd run --config FILE [--log-format text|json] [--log-level LEVEL]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("run: %v", err)
	}
	if fs.NArg() != 0 {
		return usagef("run takes no arguments besides flags, got %q", fs.Args())
	}
	if *file == "" {
		return usagef("run: --config FILE is required")
	}
	var logFormat configs.LogFormat
	if *format != "" {
		f, err := parseLogFormat(*format)
		if err != nil {
			return usagef("run: --log-format: %v", err)
		}
		logFormat = f
	}
	var logLevel slog.Level
	if *level != "" {
		if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
			return usagef("run: --log-level %q: want debug, info, warn or error", *level)
		}
	}
	cfg, err := configs.Load(*file)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if *format != "" {
		cfg.Log.Format = logFormat
	}
	if *level != "" {
		cfg.Log.Level = logLevel
	}
	log := newLogger(stderr, cfg.Log).With("room", cfg.Room)
	return runRoom(ctx, cfg, getenv, log)
}

// runRoom wires a loaded config into the loop.
func runRoom(ctx context.Context, cfg *configs.Config, getenv func(string) string, log *slog.Logger) error {
	_ = getenv // the environment the daemon reads (NOTIFY_SOCKET, WATCHDOG_USEC) is read by go-systemd
	backend, simRoom, err := openBackend(cfg, log)
	if err != nil {
		return fmt.Errorf("run room %s: %w", cfg.Room, err)
	}
	defer func() {
		if err := backend.Close(); err != nil {
			log.Error("close device backend", "err", err)
		}
	}()
	lk, err := openLink(cfg, simRoom, log)
	if err != nil {
		return fmt.Errorf("run room %s: %w", cfg.Room, err)
	}
	defer func() {
		if err := lk.outbox.Close(); err != nil {
			log.Error("close outbox", "err", err)
		}
	}()

	watchdog, err := daemon.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog setting unreadable; sending no watchdog pings", "err", err)
	}
	err = daemon.Run(ctx, daemon.Options{
		Room:      cfg.Room,
		Policy:    cfg.Policy,
		StateDir:  cfg.StateDir,
		Heartbeat: cfg.MQTT.Heartbeat,
		Watchdog:  watchdog,
	}, daemon.Deps{
		Inputs:   backend,
		Outputs:  backend,
		Link:     lk.adapter,
		Faults:   lk.adapter.Faults(),
		Notifier: daemon.Systemd{},
		Logger:   log,
	})
	if err != nil {
		// Run closes the link only after a start; close it here otherwise.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), daemon.DefaultShutdownTimeout)
		_ = lk.client.Close(cctx)
		cancel()
	}
	return err
}

// openBackend opens the configured backend; simRoom is set in simulator mode.
func openBackend(cfg *configs.Config, log *slog.Logger) (backend device.Backend, simRoom *sim.Room, err error) {
	spec := deviceSpec(cfg)
	switch cfg.Device.Backend {
	case configs.BackendGPIO:
		b, err := gpio.Open(spec, log.With("component", "gpio"))
		if err != nil {
			return nil, nil, fmt.Errorf("open GPIO backend: %w", err)
		}
		return b, nil, nil
	case configs.BackendSim:
		if len(spec.Inputs) == 0 {
			spec.Inputs = sim.DefaultSpec().Inputs
		}
		if len(spec.Outputs) == 0 {
			spec.Outputs = sim.DefaultSpec().Outputs
		}
		r, err := sim.New(spec, log.With("component", "sim"))
		if err != nil {
			return nil, nil, fmt.Errorf("open simulator backend: %w", err)
		}
		log.Warn("SIMULATOR BACKEND: no hardware is read or driven, and anyone who may publish to sim/set can fake the room's sensors; never use this on a real room",
			"control_topic", cfg.MQTT.Base+"/"+cfg.Room+"/sim/set")
		return r, r, nil
	default:
		return nil, nil, fmt.Errorf("unknown device backend %s", cfg.Device.Backend)
	}
}

// deviceSpec translates the config's device section.
func deviceSpec(cfg *configs.Config) device.Spec {
	line := func(l configs.Line) device.LineSpec {
		ls := device.LineSpec{Pin: l.Pin, Chip: l.Chip, Line: l.Line, ActiveLow: l.ActiveLow, Debounce: l.Debounce, Name: l.Point}
		switch l.Pull {
		case configs.PullUp:
			ls.Pull = device.PullUp
		case configs.PullDown:
			ls.Pull = device.PullDown
		default:
			ls.Pull = device.PullNone
		}
		return ls
	}
	spec := device.Spec{
		Inputs:        map[controller.Input][]device.LineSpec{},
		Outputs:       map[controller.Output]device.LineSpec{},
		RereadEvery:   cfg.Device.RereadEvery,
		Flap:          device.Flap{MaxChanges: cfg.Device.Flap.MaxChanges, Window: cfg.Device.Flap.Window},
		BlinkPeriod:   cfg.Device.BlinkPeriod,
		FeedbackGrace: cfg.Device.FeedbackGrace,
	}
	for role, lines := range cfg.Device.Inputs.ByRole() {
		for _, l := range lines {
			spec.Inputs[role] = append(spec.Inputs[role], line(l))
		}
	}
	for o, l := range cfg.Device.Outputs {
		spec.Outputs[o] = line(l)
	}
	for o, l := range cfg.Device.Feedback {
		if spec.Feedback == nil {
			spec.Feedback = map[controller.Output]device.LineSpec{}
		}
		spec.Feedback[o] = line(l)
	}
	return spec
}

func parseLogFormat(s string) (configs.LogFormat, error) {
	switch strings.ToLower(s) {
	case "text":
		return configs.LogText, nil
	case "json":
		return configs.LogJSON, nil
	default:
		return 0, fmt.Errorf("unknown format %q (want text or json)", s)
	}
}

// newLogger builds the process's logger. Payloads and visit ids are logged
// only at debug level (see package daemon).
func newLogger(w io.Writer, c configs.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == configs.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
