package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/pager"
	"github.com/roomd/roomd/pager/espa"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

const usage = `usage:
  roompager run --config FILE      page the paging system with the rooms' alerts
  roompager check-config FILE      print the effective config, or every problem in it
  roompager version
`

// usageError is a command line roompager cannot read: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (see roompager help)" }

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// run is roompager's main.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no subcommand"}
	}
	switch args[1] {
	case "run":
		if len(args) != 4 || args[2] != "--config" {
			return &usageError{"run takes --config FILE"}
		}
		cfg, err := load(args[3])
		if err != nil {
			return err
		}
		return serve(ctx, cfg, logger(cfg, stderr))
	case "check-config":
		if len(args) != 3 {
			return &usageError{"check-config takes one FILE"}
		}
		cfg, err := load(args[2])
		if err != nil {
			return err
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			return fmt.Errorf("print config: %w", err)
		}
		_, err = stdout.Write(b)
		return err
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "roompager", buildinfo.Version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown subcommand %q", args[1])}
}

// load reads and checks a config file, and the files it names.
func load(path string) (pager.Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return pager.Config{}, fmt.Errorf("read config: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
		return pager.Config{}, fmt.Errorf("read config %s: want a regular file of at most 1 MiB", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return pager.Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := pager.ParseConfig(b)
	var probs pager.Problems
	if err != nil && !errors.As(err, &probs) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if f := cfg.MQTT.PasswordFile; f != "" {
		if fi, err := os.Stat(f); err != nil {
			probs = append(probs, fmt.Sprintf("mqtt.password_file: %v", err))
		} else if fi.Mode().Perm()&0o077 != 0 {
			probs = append(probs, fmt.Sprintf("mqtt.password_file: %s is mode %v: it must be readable by its owner alone (0600)", f, fi.Mode().Perm()))
		}
	}
	if f := cfg.MQTT.CAFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			probs = append(probs, fmt.Sprintf("mqtt.ca_file: %v", err))
		}
	}
	if len(probs) > 0 {
		return cfg, fmt.Errorf("config %s:\n%w", path, probs)
	}
	return cfg, nil
}

func logger(cfg pager.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// serve runs the gateway: the rooms' records in over MQTT, the calls out
// on the serial line, the line's status back on MQTT.
func serve(ctx context.Context, cfg pager.Config, log *slog.Logger) error {
	return serveWith(ctx, cfg, log, func() (pager.Line, func(), error) {
		f, err := espa.OpenSerial(cfg.Serial.Device, cfg.Serial.Serial)
		if err != nil {
			return nil, nil, err
		}
		st, err := espa.NewStation(f, cfg.Station(), log)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return st, func() { f.Close() }, nil
	})
}

func serveWith(ctx context.Context, cfg pager.Config, log *slog.Logger, open func() (pager.Line, func(), error)) error {
	var password string
	if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.MQTT.PasswordFile)
		if err != nil {
			return fmt.Errorf("read mqtt password: %w", err)
		}
		password = string(trimNewline(b))
	}
	var tlsConf *tls.Config
	if cfg.MQTT.CAFile != "" {
		pem, err := os.ReadFile(cfg.MQTT.CAFile)
		if err != nil {
			return fmt.Errorf("read mqtt ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("read mqtt ca %s: no certificate", cfg.MQTT.CAFile)
		}
		tlsConf = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	topic := pager.StatusTopic(cfg.MQTT.Base, cfg.Gateway)
	statuses := make(chan pager.LinkStatus, 64)
	var last pager.LinkStatus
	last.State = pager.LinkUnknown
	last.Since = wallclock.Now()

	gw := pager.NewGateway(pager.GatewayOptions{
		Rules:     cfg.Rules(),
		Open:      open,
		PollEvery: time.Duration(cfg.ESPA.PollEvery),
		DeadAfter: cfg.ESPA.DeadAfter,
		Tries:     cfg.ESPA.Tries,
		Logger:    log,
		OnLink: func(s pager.LinkStatus) {
			select {
			case statuses <- s:
			default:
			}
		},
	})
	reconnected := make(chan struct{}, 1)
	c, err := roomclient.Dial(ctx, roomclient.Options{
		Broker: cfg.MQTT.Broker, Username: cfg.MQTT.Username, Password: password, TLS: tlsConf,
		Base:      cfg.MQTT.Base,
		Streams:   roomclient.States | roomclient.Infos,
		Operator:  cfg.MQTT.Username, // replays go on cmd/{username}, which the shipped ACL allows
		Keepalive: time.Duration(cfg.MQTT.Keepalive),
		Logger:    log,
		Will:      &roomclient.Will{Topic: topic, Payload: pager.EncodeWill(cfg.Gateway), Retained: true},
		OnRecord: func(r roomclient.Record) {
			if ev, ok := pager.EventOf(&r.EventMessage); ok {
				gw.Deliver(pager.Input{Event: &ev})
			}
		},
		OnLoss: func(l roomclient.Loss) {
			log.Warn("alert records lost; the room's state will reconcile", "room", l.Room)
		},
		OnMessage: func(m roomclient.Message) {
			switch {
			case m.State != nil:
				gw.Deliver(pager.Input{Room: m.Room, Reconcile: true, Active: pager.ActiveOf(m.State)})
			case m.Info != nil:
				gw.Deliver(pager.Input{Room: m.Room, SetRepeat: true, RepeatEvery: pager.RepeatEveryOf(m.Info)})
			case m.Kind == roomclient.KindState && len(m.Payload) == 0:
				gw.Deliver(pager.Input{Room: m.Room, Forget: true}) // decommissioned
			}
		},
		OnConnect: func() {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("connect to the broker: %w", err)
	}
	defer c.Close()
	log.Info("roompager started", "version", buildinfo.Version(), "gateway", cfg.Gateway,
		"serial", cfg.Serial.Device, "line", cfg.Serial.Serial.String(), "status_topic", topic)

	publish := func(s pager.LinkStatus) {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.Publish(pctx, topic, pager.EncodeStatus(cfg.Gateway, s), true); err != nil {
			log.Warn("publish pager status", "err", err)
		}
	}
	publish(last)
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw.Run(gctx) }()
	for {
		select {
		case s := <-statuses:
			last = s
			publish(s)
		case <-reconnected:
			publish(last)
		case <-ctx.Done():
			cancel()
			err := <-done
			// A clean stop says offline itself; the Last Will covers a crash.
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = c.Publish(sctx, topic, pager.EncodeWill(cfg.Gateway), true)
			scancel()
			return err
		}
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
