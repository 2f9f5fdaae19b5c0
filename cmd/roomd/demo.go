package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/sim/scenario"
	"github.com/roomd/roomd/wallclock"
)

// DefaultDemoSpeed runs one visit minute in 0.15 s: the demo's two-hour
// visit passes in about 20 seconds.
const DefaultDemoSpeed = 400

// demoLength is about how long the demo's script runs on the room's clock:
// the two-hour visit, then the time_up acknowledged, the door opened and
// the vacancy hold.
const demoLength = 2*time.Hour + 10*time.Minute

// demoBoardURL is where guardboard -demo serves the board by default.
const demoBoardURL = "http://127.0.0.1:8080/"

// DefaultScenarioSpeed is roomd scenario's speed: a two-hour visit in 72
// seconds. Sensor debounce and bounce timings stay in real time, so at much
// higher speeds sub-second sensor changes blur into visit seconds and timing
// windows may be missed; go test ./sim/scenario checks exact timing on fake
// time.
const DefaultScenarioSpeed = 100

// demoScript is the demo's visit under the Italian rules. Every step after
// the first waits for an event the guard console received, so the story
// keeps its order however slowly messages travel.
const demoScript = `
name: demo visit
policy: italy
settle: 30s
timeout: 3h
steps:
  - at: 0s
    command: {action: start_visit, visit_id: demo-visit, duration: 2h}
    note: the booking system starts a two-hour visit
  - at: 1m
    set: {presence: present}
    note: two people inside, door closed, lock unlocked
  - at: 1h
    set: {lock: locked}
    note: somebody throws the bolt
  - after: {alert_raised: door_locked}
    wait: 30s
    set: {lock: unlocked}
    note: the bolt is drawn back
  - after: {alert_escalated: time_up}
    wait: 30s
    command: {action: ack_alert, alert: time_up}
    note: a guard acknowledges time_up
  - after: {alert_acked: time_up}
    wait: 1m
    set: {door: open}
    note: the occupants open the door
  - after: {event: door_opened}
    wait: 10s
    set: {presence: absent}
    note: and leave
expect:
  - {event: visit_started}
  - {event: lock_engaged}
  - {alert_raised: door_locked}
  - {alert_cleared: door_locked}
  - {event: visit_warning, warning: 1}
  - {event: visit_warning, warning: 2}
  - {alert_raised: time_up}
  - {alert_escalated: time_up}
  - {alert_acked: time_up}
  - {event: door_opened}
  - {event: visit_ended, reason: vacated}
`

// runDemo is "roomd -demo" and "roomd demo": a scripted visit against a
// simulated room run by the production loop and MQTT link, printed as a
// guard console sees it.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the broker and the room running after the visit, until Ctrl-C")
	keep2 := fs.Bool("demo-keep", false, "same as --keep")
	listen := fs.String("listen", "", "broker `address` (default: a free port on 127.0.0.1), e.g. 127.0.0.1:1883")
	speedArg := fs.String("speed", fmt.Sprint(DefaultDemoSpeed), "how many times faster than real time the visit runs")
	level := fs.String("log-level", "error", "roomd's log level on stderr: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: roomd -demo [-demo-keep] [--listen ADDR] [--speed N]\n       roomd demo [--keep] [--listen ADDR] [--speed N]\n")
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
	speed, err := parseSpeed(*speedArg)
	if err != nil {
		return usagef("demo: %v", err)
	}
	log, err := replayLogger(stderr, *level)
	if err != nil {
		return usagef("demo: %v", err)
	}
	sc, err := scenario.Parse([]byte(demoScript), "demo script")
	if err != nil {
		return fmt.Errorf("demo: %w", err) // the script is constant: a test keeps it valid
	}
	return replay(ctx, sc, replayArgs{listen: *listen, speed: speed, keep: *keep || *keep2, log: log, out: stdout, demo: true})
}

// runScenario is "roomd scenario FILE": replay a scenario file visibly
// against an embedded broker.
func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scenario", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the broker and the room running after the scenario, until Ctrl-C")
	listen := fs.String("listen", "", "broker `address` (default: a free port on 127.0.0.1)")
	speedArg := fs.String("speed", fmt.Sprint(DefaultScenarioSpeed), "how many times faster than real time the scenario runs")
	level := fs.String("log-level", "error", "roomd's log level on stderr: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: roomd scenario FILE [--speed N] [--listen ADDR] [--keep]\n")
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE.
	var files []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usagef("scenario: %v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return usagef("scenario takes one FILE, got %d", len(files))
	}
	speed, err := parseSpeed(*speedArg)
	if err != nil {
		return usagef("scenario: %v", err)
	}
	log, err := replayLogger(stderr, *level)
	if err != nil {
		return usagef("scenario: %v", err)
	}
	sc, err := scenario.Load(files[0])
	if err != nil {
		return err
	}
	return replay(ctx, sc, replayArgs{listen: *listen, speed: speed, keep: *keep, log: log, out: stdout})
}

func replayLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return newLogger(w, configs.Log{Format: configs.LogText, Level: l}), nil
}

type replayArgs struct {
	listen string
	speed  float64
	keep   bool
	log    *slog.Logger
	out    io.Writer
	demo   bool // print the guard console; else the scenario transcript
}

// replay runs sc against a replayed room and prints it as it happens.
func replay(ctx context.Context, sc *scenario.Scenario, a replayArgs) error {
	out := &lockedWriter{w: a.out}
	if a.demo {
		out.printf("roomd demo: room %s, %s rules, a %s visit at %gx speed (1 visit minute = %.2fs)\n",
			sc.Room, sc.Policy.Name, "2h", a.speed, 60/a.speed)
	} else {
		out.printf("roomd scenario %q (%s): room %s, policy %s, at %gx speed\n", sc.Name, sc.Source, sc.Room, sc.Policy.Name, a.speed)
	}
	var lead time.Duration
	if a.keep {
		// The room's clock starts in the past by about the script's length,
		// so that at its end the clock can catch up with the wall clock and
		// go on in real time (a 1 h visit then lasts an hour, and commands
		// that expire on the wall clock are accepted). The room's start, in
		// real time, passes its speed faster on its clock: a margin of
		// three real seconds for it.
		lead = sc.Timeout
		if a.demo {
			lead = demoLength
		}
		lead += time.Duration(a.speed * float64(3*time.Second))
	}
	r, err := startReplay(ctx, replayOptions{Room: sc.Room, Policy: sc.Policy, Listen: a.listen, Speed: a.speed, Lead: lead, Logger: a.log})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer r.close()

	env := r.env()
	if a.demo {
		out.printf("embedded MQTT broker on %s; the guard console below prints what it receives on %s/#\n\n",
			r.broker.URL(), r.cfg.MQTT.Base)
		con := &console{room: sc.Room, out: out}
		r.setConsole(con.event)
		env.Observe = func(e scenario.Entry) {
			switch {
			case e.Step != nil && e.Step.Note != "":
				out.printf("  %s  »       %s\n", con.offset(e), e.Step.Note)
			case e.Failure != "":
				out.printf("  %s  FAILED  %s\n", con.offset(e), e.Failure)
			}
		}
	} else {
		env.Observe = func(e scenario.Entry) { out.printf("  %s\n", e) }
	}

	res := scenario.Play(ctx, sc, env)
	if ctx.Err() != nil {
		return nil // interrupted
	}
	if !res.OK() {
		out.printf("\n%s", res.Report())
		return fmt.Errorf("scenario %q failed: %d problems (see the report above)", sc.Name, len(res.Failures))
	}
	if a.demo {
		out.printf("\ndemo done: every expected event reached the guard console, in order.\n")
	} else {
		out.printf("\nscenario %q: ok (%d events, ended at %s)\n", sc.Name, countEvents(res), scenario.FormatOffset(res.End))
	}
	if !a.keep {
		return nil
	}
	// Real time from now on: the room's clock catches up with the wall
	// clock at its speed, without a jump, then follows it.
	wait, caught := r.clock.JoinWall()
	if caught && wait > 0 {
		out.printf("\nThe room's clock catches up with yours (%s) and then runs in real time...\n", wait.Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	if caught {
		out.printf("\nThe broker and room %s keep running until Ctrl-C; the room's clock now runs in real time, on yours:\n", sc.Room)
	} else {
		out.printf("\nThe broker and room %s keep running until Ctrl-C; the room's clock now runs in real time, %s ahead of yours\n(commands expire on the room's clock: give visitctl a --timeout longer than that):\n",
			sc.Room, r.clock.Now().Sub(wallclock.Now()).Round(time.Second))
	}
	out.printf("  broker:   %s\n", r.broker.URL())
	out.printf("  board:    go run ./cmd/guardboard -demo --broker %s\n", r.broker.URL())
	out.printf("            then open %s and log in as guard-1, password demo-password\n", demoBoardURL)
	out.printf("  try:      visitctl --broker %s start %s --visit v-1 --duration 1h\n", r.broker.URL(), sc.Room)
	out.printf("  watch:    visitctl --broker %s watch\n", r.broker.URL())
	out.printf("  sensors:  publish to %s/%s/sim/set, e.g. {\"door\":\"open\"} or {\"panic\":true}\n\n", r.cfg.MQTT.Base, sc.Room)
	<-ctx.Done()
	return nil
}

func countEvents(res *scenario.Result) int {
	n := 0
	for _, e := range res.Transcript {
		if e.Event != nil {
			n++
		}
	}
	return n
}

// console renders events as a guard console shows them, with offsets from
// the start of the visit (hh:mm of visit time).
type console struct {
	room string
	out  *lockedWriter

	mu   sync.Mutex
	zero time.Time // the visit's start; zero before it
}

func (c *console) offset(e scenario.Entry) string {
	c.mu.Lock()
	started := !c.zero.IsZero()
	c.mu.Unlock()
	if !started {
		return "--:--"
	}
	return hhmm(e.Offset)
}

func hhmm(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func (c *console) event(ev contract.EventMessage) {
	c.mu.Lock()
	if ev.Type == controller.EventVisitStarted.String() {
		c.zero = ev.At.Time
	}
	at := "--:--"
	if !c.zero.IsZero() {
		at = hhmm(ev.At.Time.Sub(c.zero))
	}
	c.mu.Unlock()
	room := fmt.Sprintf("%-7s", c.room)
	line := ""
	switch t := ev.Type; t {
	case "controller_started":
		line = room + " roomd started"
		if ev.Resumed != nil && *ev.Resumed {
			line += " (resumed)"
		}
	case "visit_started":
		d := time.Duration(0)
		if ev.DurationS != nil {
			d = time.Duration(*ev.DurationS) * time.Second
		}
		line = fmt.Sprintf("%s visit started (%s, ends %s)", room, shortDuration(d), ev.EndsAt.Local().Format("15:04"))
	case "visit_warning":
		left := time.Duration(0)
		if ev.RemainingS != nil {
			left = time.Duration(*ev.RemainingS) * time.Second
		}
		line = fmt.Sprintf("%s warning to occupants: %s left", room, shortDuration(left))
	case "visit_extended":
		line = fmt.Sprintf("%s visit extended (ends %s)", room, ev.EndsAt.Local().Format("15:04"))
	case "visit_ended":
		line = fmt.Sprintf("%s visit ended (%s)", room, ev.Reason)
	case "door_opened":
		line = room + " door opened"
	case "door_closed":
		line = room + " door closed"
	case "lock_engaged":
		line = room + " door bolted"
	case "lock_released":
		line = room + " bolt released"
	case "alert_raised", "alert_escalated", "alert_repeated", "alert_reannounced", "alert_acked", "alert_cleared":
		line = "ALERT   " + alertLine(ev)
	default:
		line = fmt.Sprintf("%s %s", room, strings.ReplaceAll(t, "_", " "))
	}
	c.out.printf("  %s  %s\n", at, line)
}

func alertLine(ev contract.EventMessage) string {
	a := ev.Alert
	if a == nil {
		return ev.Type
	}
	what := a.Kind
	if a.Input != "" {
		what += " (" + a.Input + ")"
	}
	if a.Source != "" {
		what += " (" + a.Source + ")"
	}
	switch ev.Type {
	case "alert_raised":
		return fmt.Sprintf("%s (%s) raised", what, a.Severity)
	case "alert_escalated":
		return fmt.Sprintf("%s escalated → %s", what, a.Severity)
	case "alert_reannounced":
		return fmt.Sprintf("%s announced again, still unresolved (%s)", what, a.Severity)
	case "alert_repeated":
		return fmt.Sprintf("%s repeated, unacknowledged (%s)", what, a.Severity)
	case "alert_acked":
		return what + " ack by guard"
	default:
		return what + " cleared"
	}
}

// shortDuration renders 2h0m0s as 2h0m and 10m0s as 10m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// lockedWriter serialises lines from the console and the player.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
