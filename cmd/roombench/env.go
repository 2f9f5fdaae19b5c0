package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/wallclock"
)

// env is what the suites share: the broker, the guard console and the prober.
type env struct {
	cfg      config
	log      *slog.Logger
	progress io.Writer
	broker   string
	mosq     *mosquitto // nil with --broker
	guard    *guard
	prober   *prober
	dir      string // temporary root, removed at exit
	tag      string // makes room ids unique per run (for a shared broker)
}

// roomID returns a room id unique to this run.
func (e *env) roomID(kind string, i int) string { return fmt.Sprintf("%s-%s-%d", kind, e.tag, i) }

func (e *env) logf(format string, args ...any) {
	if e.cfg.Verbose {
		fmt.Fprintf(e.progress, "roombench: "+format+"\n", args...)
	}
}

// roomConfig returns the in-process room settings every suite starts from.
func (e *env) roomConfig(dir string) roomConfig {
	spec := sim.DefaultSpec()
	// A sample presses and releases the panic button several times a second;
	// the default flap supervision (20 changes in 10 s) would rightly call
	// that a faulty button.
	spec.Flap = device.Flap{MaxChanges: 100000, Window: 10 * time.Second}
	return roomConfig{Broker: e.broker, Base: contract.DefaultBase, Dir: dir, Policy: benchPolicy(),
		Spec: spec, Heartbeat: 30 * time.Second, Logger: e.log}
}

// benchPolicy is a policy with short, bench-friendly durations where the
// suites need them (set per suite) and the panic alert cleared by an
// acknowledgement after release, so a sample can re-arm it remotely.
func benchPolicy() controller.Policy {
	return controller.Policy{
		Name:            "bench",
		MaxDuration:     2 * time.Hour,
		Warnings:        []time.Duration{2 * time.Second, time.Second},
		EscalateAfter:   time.Hour,
		RepeatEvery:     time.Hour,
		ReannounceAfter: time.Hour,
		LockScope:       controller.LockDuringVisit,
		VacateTimeout:   time.Hour,
		PanicReset:      controller.PanicResetAck,
	}
}

func runSuites(ctx context.Context, cfg config, names []string, log *slog.Logger, progress io.Writer) (*Report, error) {
	raiseFileLimit(log)
	dir, err := os.MkdirTemp("", "roombench-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	roomLevel := slog.LevelError
	if cfg.Verbose {
		roomLevel = slog.LevelWarn
	}
	roomLog := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: roomLevel}))
	e := &env{cfg: cfg, log: roomLog, progress: progress, dir: dir, broker: cfg.Broker,
		tag: strconv.FormatInt(wallclock.Now().UnixNano()%(36*36*36*36), 36)}
	m := describeMachine()
	if e.broker == "" {
		mq, err := startMosquitto(cfg.NoDelay, cfg.SaveEvery)
		if err != nil {
			return nil, err
		}
		defer mq.Close()
		e.mosq, e.broker = mq, mq.URL()
		m.Broker = "mosquitto " + mosquittoVersion(mq.bin) + " (started by roombench) on " + mq.Addr()
		if cfg.NoDelay {
			m.Broker += ", set_tcp_nodelay true"
		}
		switch {
		case cfg.SaveEvery == autosaveOnChanges:
			m.Broker += ", autosave after every change (as shipped before the flood fix)"
		case cfg.SaveEvery > 0:
			m.Broker += fmt.Sprintf(", autosave every %s", cfg.SaveEvery)
		default:
			m.Broker += ", autosave every 60s (as shipped)"
		}
	} else {
		m.Broker = e.broker
	}
	if e.guard, err = newGuard(e.broker, contract.DefaultBase, "roombench-guard-"+e.tag, e.mosq != nil); err != nil {
		return nil, err
	}
	defer e.guard.Close()
	if e.prober, err = newProber(e.broker, "roombench-prober-"+e.tag); err != nil {
		return nil, err
	}
	defer e.prober.Close()

	rep := &Report{Date: wallclock.Now().UTC().Format("2006-01-02"), Short: cfg.Short, Machine: m}
	for _, n := range names {
		if ctx.Err() != nil {
			break
		}
		e.logf("suite %s", n)
		start := wallclock.Now()
		load0 := loadAvg()
		res := suites[n](ctx, e)
		res.LoadAvg = [2]string{load0, loadAvg()}
		res.Suite = n
		if res.Params == nil {
			res.Params = map[string]string{}
		}
		res.Params["took"] = wallclock.Since(start).Round(time.Second).String()
		if over := e.guard.overflow.Load(); over > 0 {
			res.note("the guard dropped %d messages because an inbox was full (figures may be incomplete)", over)
		}
		rep.Suites = append(rep.Suites, res)
	}
	return rep, nil
}

// raiseFileLimit raises the soft limit on open files to the hard limit: a
// fleet of rooms holds a socket and journal files per room, and mosquitto,
// started afterwards, inherits the limit.
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open files limit", "err", err)
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise the open files limit", "err", err)
		}
	}
}

// fileLimit returns the soft limit on open files.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

func mosquittoVersion(bin string) string {
	out, _ := execOutput(bin, "-h")
	for _, f := range splitFields(out) {
		if len(f) > 0 && f[0] >= '0' && f[0] <= '9' {
			return f
		}
	}
	return "?"
}

// waitRecord waits for a message on in matching ok, discarding others, until
// timeout.
func waitRecord(ctx context.Context, in <-chan received, timeout time.Duration, ok func(received) bool) (received, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case r := <-in:
			if ok(r) {
				return r, nil
			}
		case <-t.C:
			return received{}, fmt.Errorf("no matching record within %s", timeout)
		case <-ctx.Done():
			return received{}, ctx.Err()
		}
	}
}

func isAlert(r received, typ, kind string) bool {
	return r.Event.Type == typ && r.Event.Alert != nil && r.Event.Alert.Kind == kind && len(r.Topic) > 7 && r.Topic[len(r.Topic)-7:] == "/alerts"
}

func isEvent(r received, typ string) bool {
	return r.Event.Type == typ && len(r.Topic) > 7 && r.Topic[len(r.Topic)-7:] == "/events"
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := splitFields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return f[0] + " " + f[1] + " " + f[2]
}
