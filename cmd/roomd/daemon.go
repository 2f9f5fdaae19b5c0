package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/metrics"
	"github.com/roomd/roomd/room"
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
	for _, w := range cfg.Warnings() {
		log.Warn("config: "+w, "file", *file)
	}
	return runRoom(ctx, cfg, getenv, log)
}

// runRoom opens the room of a loaded config and runs it until ctx ends.
func runRoom(ctx context.Context, cfg *configs.Config, getenv func(string) string, log *slog.Logger) error {
	watchdog, err := daemon.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog setting unreadable; sending no watchdog pings", "err", err)
	}
	if getenv("NOTIFY_SOCKET") == "" && watchdog > 0 {
		log.Warn("WATCHDOG_USEC is set but NOTIFY_SOCKET is not; the pings go nowhere")
	}
	jfs, err := journalFS(getenv, log)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	r, err := room.Open(room.Options{Config: cfg, Logger: log, Notifier: daemon.Systemd{}, Watchdog: watchdog, Version: buildinfo.Version(), JournalFS: jfs})
	if err != nil {
		return err
	}
	if m := cfg.Metrics; m.Textfile != "" {
		tf := metrics.Textfile{Path: m.Textfile, Every: m.Every, Gatherer: r.Metrics(room.MetricsOptions{}), Logger: log}
		if err := tf.Check(); err != nil {
			// Metrics never stop a room: say so, and run without them.
			log.Error("metrics off", "err", err)
		} else {
			mctx, stop := context.WithCancel(ctx)
			defer stop()
			go tf.Run(mctx)
		}
	}
	err = r.Run(ctx)
	if errors.Is(err, daemon.ErrBatteryLow) {
		return waitForBattery(ctx, cfg, log, daemon.Systemd{}, watchdog)
	}
	return err
}

// waitForBattery runs after the room stopped cleanly on a low battery:
// nothing writes the journal any more, so the power may go. If it does
// not (mains came back in time), it waits, keeping the service manager's
// watchdog fed, until the battery-low input clears, and then returns an
// error, so that the service manager starts the room afresh.
func waitForBattery(ctx context.Context, cfg *configs.Config, log *slog.Logger, n daemon.Notifier, watchdog time.Duration) error {
	_ = n.Notify("STATUS=stopped: the battery is low; waiting for it to recover")
	backend, _, err := room.OpenBackend(cfg, log)
	if err != nil {
		return fmt.Errorf("%w; and the battery input cannot be watched: %w", daemon.ErrBatteryLow, err)
	}
	defer func() { _ = backend.Close() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readings := make(chan device.Reading, 16)
	go func() { _ = backend.Run(ctx, readings) }()
	var ping <-chan time.Time
	if watchdog > 0 {
		t := time.NewTicker(watchdog)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return daemon.ErrBatteryLow
		case <-ping:
			_ = n.Notify("WATCHDOG=1")
		case rd := <-readings:
			if rd.Power == device.PowerBattery && rd.Level == controller.LevelInactive {
				log.Info("the battery is good again: restarting the room")
				return fmt.Errorf("%w; the battery is good again: exiting so that the room starts afresh", daemon.ErrBatteryLow)
			}
		}
	}
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
