package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/commission"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/gpio"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// commissionDir is where the commissioning pass keeps its journal and
// report (the initramfs's root is writable).
const commissionDir = "/var/lib/roomd-vmtest"

// checkCommission runs one full commissioning pass (package commission,
// as roomd commission runs it) on the real kernel's lines: an installer
// played by this program pulls each gpio-sim input line when asked and
// watches each output line when asked about it, and answers from what it
// saw. Every line must pass, the result must be in the journal and the
// report, and every output line must be inactive afterwards.
func checkCommission(sim *simChip, logger *slog.Logger) error {
	for _, l := range inputLines {
		if err := sim.pull(l.off, electrical(false, l.activeLow) == 1); err != nil {
			return err
		}
	}
	room, err := gpio.Open(roomSpec(), logger)
	if err != nil {
		return fmt.Errorf("open room on %q: %w", simLabel, err)
	}
	defer room.Close()
	j, err := journal.Open(filepath.Join(commissionDir, "journal"), journal.Options{})
	if err != nil {
		return err
	}
	defer j.Close()
	inst := &sysfsInstaller{sim: sim}
	p := controller.Policy{Name: "vmtest", MaxDuration: 2 * time.Hour, EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute,
		ReannounceAfter: 5 * time.Minute, VacateTimeout: 10 * time.Minute, FunctionTestEvery: 90 * 24 * time.Hour}
	start := wallclock.Now()
	out, err := commission.Run(context.Background(), commission.Options{
		Room: "vmtest", Policy: p, By: "vmtest-installer",
		Walk:      commission.WalkOptions{Mode: controller.TestFull, Wait: 10 * time.Second, Settle: 400 * time.Millisecond},
		ReportDir: filepath.Join(commissionDir, "function-tests"), Version: "vmtest", Backend: "gpio",
		Journal: j, Lines: room, Installer: inst,
	})
	if err != nil {
		return err
	}
	for _, l := range out.Report.Lines {
		if !l.Passed {
			return fmt.Errorf("line %s (%s) failed: %s: %s", l.Name(), l.Line, l.Fault, l.Seen)
		}
		fmt.Printf("vmtest: commission %-14s %-18s %s\n", l.Name(), l.Line, l.Seen)
	}
	if got, want := len(out.Report.Lines), len(inputLines)+len(outputLines); got != want {
		return fmt.Errorf("%d lines tested, want %d", got, want)
	}
	if len(inst.asked) != len(outputLines) {
		return fmt.Errorf("asked about %d outputs, want %d", len(inst.asked), len(outputLines))
	}
	if snap, _ := j.Latest(); snap == nil || !snap.Tests.LastFull.Equal(out.Report.At) {
		return errors.New("the journal's latest state does not show the passed full test")
	}
	if out.Record.Type != controller.EventFunctionTest || out.Record.By != "vmtest-installer" || !out.Record.Test.Passed {
		return fmt.Errorf("recorded %+v", out.Record)
	}
	for _, f := range out.Files {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			return fmt.Errorf("report %s: %v", f, err)
		}
	}
	for _, o := range outputLines {
		v, err := sim.value(o.off)
		if err != nil {
			return err
		}
		if v != electrical(false, o.activeLow) {
			return fmt.Errorf("output %s left at %d after the test", o.out, v)
		}
	}
	fmt.Printf("vmtest: ok   %-42s %s\n", "commissioning pass (every line, recorded)", wallclock.Since(start).Round(time.Millisecond))

	// A light test in which nobody presses 'toilet': named, recorded as
	// failed, the full test's date kept.
	start = wallclock.Now()
	inst = &sysfsInstaller{sim: sim, skip: pointToilet}
	light, err := commission.Run(context.Background(), commission.Options{
		Room: "vmtest", Policy: p, By: "vmtest-installer",
		Walk:      commission.WalkOptions{Mode: controller.TestLight, Wait: 2 * time.Second, Settle: 400 * time.Millisecond},
		ReportDir: filepath.Join(commissionDir, "function-tests"), Version: "vmtest", Backend: "gpio",
		Journal: j, Lines: room, Installer: inst,
	})
	if err != nil {
		return fmt.Errorf("light test: %w", err)
	}
	var faults []string
	for _, l := range light.Report.Lines {
		faults = append(faults, l.Name()+"="+string(l.Fault))
	}
	if got := strings.Join(faults, " "); light.Report.Passed || got != "panic:bed= panic:toilet=never_changed alarm_sounder=" {
		return fmt.Errorf("light test without a press of toilet: passed %t, lines %s", light.Report.Passed, got)
	}
	if snap, _ := j.Latest(); snap == nil || !snap.Tests.LastFull.Equal(out.Report.At) || !snap.Tests.Points[pointBed].Equal(light.Report.At) {
		return errors.New("after the light test the journal does not keep the full test's date and the point's new one")
	}
	fmt.Printf("vmtest: ok   %-42s %s\n", "light test finds the point never pressed", wallclock.Since(start).Round(time.Millisecond))
	return nil
}

// sysfsInstaller plays the installer on gpio-sim: it acts by setting an
// input line's pull, and answers about an output from the levels the
// kernel shows on its line.
type sysfsInstaller struct {
	sim  *simChip
	skip string // a panic point nobody presses

	mu    sync.Mutex
	err   error
	asked []controller.Output
}

func (i *sysfsInstaller) Show(text string) { fmt.Println("vmtest: commission:", text) }

func (i *sysfsInstaller) Act(s commission.Step) {
	if s.Point != "" && s.Point == i.skip {
		return
	}
	for _, l := range inputLines {
		role, point := l.role, l.point
		if role != s.Input || (role == controller.InputPanic && point != s.Point) {
			continue
		}
		if role == controller.InputPresence && presenceIndex(l.off) != s.Index {
			continue
		}
		if err := i.sim.pull(l.off, electrical(s.Kind == commission.StepAct, l.activeLow) == 1); err != nil {
			i.mu.Lock()
			i.err = err
			i.mu.Unlock()
		}
		return
	}
}

// presenceIndex is a PIR line's place among the presence lines of roomSpec.
func presenceIndex(off int) int {
	if off == offPIR1 {
		return 1
	}
	return 0
}

// Confirm watches the output's line for 1.5 s: steady on for ModeOn, both
// levels for a pattern; anything else is a no.
func (i *sysfsInstaller) Confirm(ctx context.Context, s commission.Step) (bool, error) {
	i.mu.Lock()
	i.asked = append(i.asked, s.Output)
	err := i.err
	i.mu.Unlock()
	if err != nil {
		return false, err
	}
	var off int
	var activeLow bool
	for _, o := range outputLines {
		if o.out == s.Output {
			off, activeLow = o.off, o.activeLow
		}
	}
	on, offSeen := false, false
	end := wallclock.Now().Add(1500 * time.Millisecond)
	for wallclock.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		v, err := i.sim.value(off)
		if err != nil {
			return false, err
		}
		if v == electrical(true, activeLow) {
			on = true
		} else {
			offSeen = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Mode == controller.ModeOn {
		return on && !offSeen, nil
	}
	return on && offSeen, nil
}
