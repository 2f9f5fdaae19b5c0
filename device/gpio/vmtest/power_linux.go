package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/gpio"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// The power check's room: a UPS's status lines and the healthy output.
const (
	offMains   = 16 // MAINS: the UPS's mains status, low = mains lost (active-low)
	offBattery = 17 // BATT: the UPS's battery status, low = battery low (active-low)
	offHealthy = 18 // HEALTHY: the watchdog relay's "alive" input, pulsed by the loop

	// roomLoopArg makes this program the room's loop, in a process of its
	// own that the check can stop (SIGSTOP) as a hung roomd would be.
	roomLoopArg = "roomloop"
	// exitBatteryLow is the room loop's exit status after its clean stop
	// on a low battery.
	exitBatteryLow = 3
	powerDir       = "/var/lib/roomd-vmtest/power"
	// healthyStop is how soon the pulses must stop once the loop stalls.
	healthyStop = 2 * time.Second
)

// powerSpec is the room loop's wiring: the UPS status lines (active-low,
// pulled up by the UPS) and the healthy output.
func powerSpec() device.Spec {
	return device.Spec{
		Power: map[device.Power]device.LineSpec{
			device.PowerMains:   {Pin: "MAINS", Pull: device.PullUp, ActiveLow: true},
			device.PowerBattery: {Chip: simLabel, Line: offBattery, Pull: device.PullUp, ActiveLow: true},
		},
		Healthy: &device.LineSpec{Pin: "HEALTHY"},
	}
}

// runRoomLoop is the child process: roomd's loop (package daemon) on the
// power lines, with its journal on the initramfs, until SIGTERM or the
// battery low. It exits 0 after a clean stop, exitBatteryLow after the
// battery stop.
func runRoomLoop() int {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo})).With("process", "roomloop")
	fail := func(err error) int {
		fmt.Println("vmtest roomloop:", err)
		return 1
	}
	room, err := gpio.Open(powerSpec(), logger)
	if err != nil {
		return fail(err)
	}
	defer room.Close()
	j, err := journal.Open(filepath.Join(powerDir, "journal"), journal.Options{})
	if err != nil {
		return fail(err)
	}
	defer j.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		c := make(chan os.Signal, 1)
		signalNotify(c)
		<-c
		stop()
	}()
	p := controller.Policy{Name: "vmtest", MaxDuration: 2 * time.Hour, EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute,
		ReannounceAfter: 5 * time.Minute, VacateTimeout: 10 * time.Minute}
	err = daemon.Run(ctx, daemon.Options{Room: "vmtest", Policy: p, MinPlausible: time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)},
		daemon.Deps{Inputs: room, Outputs: room, Journal: j, Healthy: room, Logger: logger})
	switch {
	case errors.Is(err, daemon.ErrBatteryLow):
		fmt.Println("vmtest roomloop: stopped cleanly on the battery low")
		return exitBatteryLow
	case err != nil:
		return fail(err)
	}
	return 0
}

// checkPower runs roomd's loop in a process of its own on the UPS status
// lines and the healthy output: the pulse must run while the loop runs,
// stop within healthyStop of the loop stalling (SIGSTOP, as a hung roomd)
// and resume when it runs again (SIGCONT); mains lost and back, then the
// battery low, must leave their faults in the journal, and the battery low
// must stop the loop cleanly: no torn tail.
func checkPower(sim *simChip) error {
	for _, off := range []int{offMains, offBattery} {
		if err := sim.pull(off, true); err != nil { // mains present, battery good
			return err
		}
	}
	child := exec.Command("/init", roomLoopArg)
	child.Stdout, child.Stderr = os.Stdout, os.Stdout
	if err := child.Start(); err != nil {
		return fmt.Errorf("start the room loop: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	defer func() {
		if child.ProcessState == nil {
			_ = child.Process.Signal(syscall.SIGCONT)
			_ = child.Process.Kill()
			<-exited
		}
	}()

	// Pulsing: the child needs a few seconds to start under TCG.
	if n, err := toggles(sim, offHealthy, 20*time.Second, 4); err != nil || n < 4 {
		return fmt.Errorf("healthy output: %d changes while the loop starts and runs (want 4): %v", n, err)
	}
	fmt.Println("vmtest: the healthy output pulses while the loop runs")

	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stop the room loop: %w", err)
	}
	stopped := wallclock.Now()
	// A write in flight when the signal came may still land: look from 100 ms on.
	if _, err := toggles(sim, offHealthy, 100*time.Millisecond, 1000); err != nil {
		return err
	}
	if n, err := toggles(sim, offHealthy, healthyStop, 1); err != nil || n > 0 {
		return fmt.Errorf("healthy output: still changing %s after the loop was stopped (%d changes): %v", wallclock.Since(stopped).Round(time.Millisecond), n, err)
	}
	fmt.Printf("vmtest: the healthy output stopped with the loop (quiet for %s)\n", healthyStop)
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("continue the room loop: %w", err)
	}
	if n, err := toggles(sim, offHealthy, 5*time.Second, 3); err != nil || n < 3 {
		return fmt.Errorf("healthy output: %d changes after the loop continued (want 3): %v", n, err)
	}
	fmt.Println("vmtest: the healthy output resumed with the loop")

	// Mains lost, then back.
	if err := sim.pull(offMains, false); err != nil {
		return err
	}
	if _, err := toggles(sim, offHealthy, time.Second, 1000); err != nil {
		return err
	}
	if err := sim.pull(offMains, true); err != nil {
		return err
	}
	if _, err := toggles(sim, offHealthy, time.Second, 1000); err != nil {
		return err
	}
	// The battery low: the loop records it and stops cleanly.
	if err := sim.pull(offBattery, false); err != nil {
		return err
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(20 * time.Second):
		return errors.New("the room loop did not stop within 20 s of the battery low")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitBatteryLow {
		return fmt.Errorf("the room loop ended with %v, not the battery stop (status %d)", err, exitBatteryLow)
	}
	if n, err := toggles(sim, offHealthy, healthyStop, 1); err != nil || n > 0 {
		return fmt.Errorf("healthy output: %d changes after the battery stop: %v", n, err)
	}
	return checkPowerJournal()
}

// checkPowerJournal opens the room loop's journal after its battery stop:
// no torn tail, no damage, and the mains and battery faults in order.
func checkPowerJournal() error {
	j, err := journal.Open(filepath.Join(powerDir, "journal"), journal.Options{})
	if err != nil {
		return err
	}
	defer j.Close()
	rec := j.Recovered()
	if rec.TornBytes > 0 || rec.Damaged() {
		return fmt.Errorf("the journal after the battery stop: %d torn bytes, damage %v", rec.TornBytes, rec.Damage)
	}
	var got []string
	for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		if err != nil {
			return fmt.Errorf("journal entry %d: %w", lsn, err)
		}
		for _, r := range e.Records {
			if r.Alert != nil && r.Alert.Kind == controller.AlertSystemFault && (r.Alert.Source == contract.SourceMains || r.Alert.Source == contract.SourceBattery) {
				got = append(got, r.Type.String()+" "+r.Alert.Source+" "+r.Alert.Severity.String())
			}
		}
	}
	want := []string{
		"alert_raised " + contract.SourceMains + " warning",
		"alert_cleared " + contract.SourceMains + " warning",
		"alert_raised " + contract.SourceBattery + " critical",
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		return fmt.Errorf("the journal's power faults: %q, want %q", got, want)
	}
	fmt.Printf("vmtest: power faults in the journal, no torn tail: %s\n", strings.Join(got, "; "))
	return nil
}

// toggles watches line off for d (or until it changed max times) and
// counts its changes.
func toggles(sim *simChip, off int, d time.Duration, max int) (int, error) {
	last, err := sim.value(off)
	if err != nil {
		return 0, err
	}
	n := 0
	end := wallclock.Now().Add(d)
	for wallclock.Now().Before(end) && n < max {
		time.Sleep(20 * time.Millisecond)
		v, err := sim.value(off)
		if err != nil {
			return n, err
		}
		if v != last {
			n++
			last = v
		}
	}
	return n, nil
}

func signalNotify(c chan<- os.Signal) { signal.Notify(c, syscall.SIGTERM, syscall.SIGINT) }
