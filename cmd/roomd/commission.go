package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/commission"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/room"
)

// ReportDir is where the reports go by default, inside the state directory.
const ReportDir = "function-tests"

// runCommission is "roomd commission": the guided function test of the
// room's wiring, with roomd stopped. The installer's answers (and, on the
// simulator, sim lines) come from stdin.
func runCommission(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("commission", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config `file` (required)")
	by := fs.String("by", "", "your operator `id`, recorded with the result (required)")
	light := fs.Bool("light", false, "the light test: the panic points and the sounder only (monthly, between full tests)")
	reportDir := fs.String("report", "", "`dir`ectory for the report (default: STATE_DIR/"+ReportDir+")")
	wait := fs.Duration("timeout", commission.DefaultWait, "how long to wait for each action and answer")
	settle := fs.Duration("settle", commission.DefaultSettle, "after a line changed, how long further changes count as bouncing")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: roomd commission --config FILE --by ID [--light] [--report DIR] [--timeout 1m]\n"+
			"  with roomd stopped: systemctl stop roomd, then systemctl start roomd after the test\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("commission: %v", err)
	}
	switch {
	case fs.NArg() != 0:
		return usagef("commission takes no arguments besides flags, got %q", fs.Args())
	case *file == "":
		return usagef("commission: --config FILE is required")
	case *by == "":
		return usagef("commission: --by ID is required: your operator id, recorded with the result")
	case !controller.ValidOperatorID(*by):
		return usagef("commission: --by %q is not an operator id (1 to 64 of A-Z a-z 0-9 . _ : -, and not %q)", *by, controller.OnSite)
	case *wait <= 0 || *settle <= 0:
		return usagef("commission: --timeout and --settle must be positive")
	}
	mode := controller.TestFull
	if *light {
		mode = controller.TestLight
	}
	cfg, err := configs.Load(*file)
	if err != nil {
		return fmt.Errorf("commission: %w", err)
	}
	if err := checkOwner(cfg.StateDir); err != nil {
		return fmt.Errorf("commission: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("room", cfg.Room)
	j, err := room.OpenJournal(cfg, log)
	if errors.Is(err, journal.ErrLocked) {
		return fmt.Errorf("commission: roomd is running: it holds the room's journal in %s, and the GPIO lines. Stop it for the test and start it again after:\n"+
			"  systemctl stop roomd && roomd commission --config %s --by %s && systemctl start roomd", cfg.StateDir, *file, *by)
	}
	if err != nil {
		return fmt.Errorf("commission: %w", err)
	}
	defer func() {
		if cerr := j.Close(); cerr != nil {
			fmt.Fprintln(stderr, "roomd: commission: close the journal:", cerr)
		}
	}()
	if err := commission.Check(j, cfg.Policy); err != nil {
		return fmt.Errorf("commission: room %s: %w", cfg.Room, err)
	}
	backend, simRoom, err := room.OpenBackend(cfg, nil)
	if err != nil {
		return fmt.Errorf("commission: room %s: %w", cfg.Room, err)
	}
	defer func() {
		if cerr := backend.Close(); cerr != nil {
			fmt.Fprintln(stderr, "roomd: commission: close the device backend:", cerr)
		}
	}()
	lines, ok := backend.(commission.Lines)
	if !ok {
		return fmt.Errorf("commission: room %s: the %s backend cannot read its lines one by one", cfg.Room, cfg.Device.Backend)
	}
	var simulator commission.Simulator
	if simRoom != nil {
		simulator = simRoom
	}
	if *reportDir == "" {
		*reportDir = filepath.Join(cfg.StateDir, ReportDir)
	}

	fmt.Fprintf(stdout, "roomd %s: %s function test of room %s, by %s.\n", buildinfo.Version(), mode, cfg.Room, *by)
	fmt.Fprintln(stdout, "Before you start: the door closed, the bolt drawn back (unlocked), nobody in front of")
	fmt.Fprintln(stdout, "the presence sensors, every panic point released, the staff key at rest.")
	fmt.Fprintf(stdout, "Each step waits up to %s. Ctrl-C stops the test at any point: every output goes off\n", *wait)
	fmt.Fprintln(stdout, "and nothing is recorded.")
	if simRoom != nil {
		fmt.Fprintln(stdout, "Simulator: act by typing sim lines (door=open, lock=locked, presence=present,")
		fmt.Fprintln(stdout, "panic:toilet=pressed, staff=pressed, fault=door, bounce=door:open:5:100ms), and y or n when asked.")
	}
	fmt.Fprintln(stdout)

	// The card, as the journal will use it: its sync latency goes in the
	// report beside the limit the running room warns above.
	var syncRep *commission.SyncReport
	if st, err := journal.ProbeSync(nil, j.Dir(), commissionSyncs); err != nil {
		fmt.Fprintln(stderr, "roomd: commission:", err)
	} else {
		syncRep = &commission.SyncReport{Disk: journal.DiskOf(j.Dir()), N: commissionSyncs, P50: st.P50, P99: st.P99, Max: st.Max, Limit: daemon.SyncP99Limit}
		fmt.Fprintf(stdout, "The card: sync p50 %s, p99 %s over %d syncs (the room warns above a p99 of %s).\n\n",
			st.P50.Round(10*time.Microsecond), st.P99.Round(10*time.Microsecond), commissionSyncs, daemon.SyncP99Limit)
	}

	out, err := commission.Run(ctx, commission.Options{
		Room: cfg.Room, Policy: cfg.Policy, By: *by, Walk: commission.WalkOptions{Mode: mode, Wait: *wait, Settle: *settle},
		ReportDir: *reportDir, StateDir: cfg.StateDir, Version: buildinfo.Version(), Backend: cfg.Device.Backend.String(),
		Journal: j, Lines: lines, Installer: commission.NewTerminal(stdin, stdout, simulator), Sync: syncRep,
	})
	if simRoom != nil {
		fmt.Fprintf(stdout, "  (simulator outputs now: %s)\n", contract.EncodeSimOutputs(simRoom.Outputs()))
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("commission: room %s: interrupted: every output is off and nothing was recorded", cfg.Room)
	}
	if err != nil {
		return fmt.Errorf("commission: %w", err)
	}
	return summarize(stdout, out)
}

// summarize prints the outcome and returns an error when a line failed,
// so that the exit status says whether the room passed.
func summarize(w io.Writer, out commission.Outcome) error {
	var failed []string
	for _, l := range out.Report.Lines {
		if !l.Passed {
			failed = append(failed, fmt.Sprintf("%s (%s)", l.Name(), l.Fault))
		}
	}
	fmt.Fprintln(w)
	if len(failed) == 0 {
		fmt.Fprintf(w, "PASSED: all %d lines work.\n", len(out.Report.Lines))
	} else {
		fmt.Fprintf(w, "FAILED: %d of %d lines: %s.\n", len(failed), len(out.Report.Lines), strings.Join(failed, ", "))
		fmt.Fprintln(w, "docs/wiring.md (Commissioning) says what each fault means and what to check.")
	}
	fmt.Fprintf(w, "Report: %s\n", strings.Join(out.Files, ", "))
	fmt.Fprintf(w, "Recorded in the room's journal as function_test (seq %d, %s); roomd publishes it when it starts.\n",
		out.Record.Seq, out.Record.At.UTC().Format(time.RFC3339))
	if len(failed) > 0 {
		return fmt.Errorf("commission: room %s failed its %s function test: %s (recorded)", out.Report.Room, out.Report.Mode, strings.Join(failed, ", "))
	}
	return nil
}

// commissionSyncs is how many write+fdatasync rounds commissioning times on
// the card.
const commissionSyncs = 200
