package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/roomd/roomd/wallclock"
	"golang.org/x/sys/unix"
)

// Marker is the prefix of the one line the host parses from the console.
const Marker = "ROOMD-VMTEST"

// watchdog bounds the whole run inside the VM; the host has its own,
// longer, timeout for a VM that never gets this far.
const watchdog = 150 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == roomLoopArg && os.Getpid() != 1 {
		os.Exit(runRoomLoop())
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "vmtest must run as /init of a test VM (it mounts filesystems and reboots)")
		os.Exit(2)
	}
	start := wallclock.Now()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	time.AfterFunc(watchdog, func() {
		finish(fmt.Errorf("watchdog: checks still running after %s", watchdog))
	})
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		return run(logger)
	}()
	if err == nil {
		fmt.Printf("vmtest: all checks passed in %s (since /init started)\n", wallclock.Since(start).Round(time.Millisecond))
	}
	finish(err)
}

// finish prints the marker and reboots; with qemu -no-reboot that ends the VM.
func finish(err error) {
	switch {
	case err == nil:
		fmt.Println(Marker + " PASS")
	default:
		fmt.Println(Marker + " FAIL: " + oneLine(err.Error()))
		fmt.Println("vmtest: full error:\n" + err.Error())
	}
	unix.Sync()
	if rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
		fmt.Println("vmtest: reboot:", rerr)
	}
	// Reboot does not return on success; PID 1 must never exit.
	select {}
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// mountAll mounts what the checks need; the initramfs has only /init and
// /dev/console.
func mountAll() error {
	mounts := []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"configfs", "/sys/kernel/config", "configfs"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("mount %s: create mount point: %w", m.dir, err)
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

func run(logger *slog.Logger) error {
	if err := mountAll(); err != nil {
		return err
	}
	if up, err := os.ReadFile("/proc/uptime"); err == nil {
		fmt.Printf("vmtest: /init running, kernel uptime %s s\n", strings.Fields(string(up))[0])
	}
	sim, err := newSimChip("roomd", simLabel, simLines, lineNames)
	if err != nil {
		return err
	}
	fmt.Printf("vmtest: gpio-sim %q live at %s\n", simLabel, sim.sysDir)
	// periph enumerates the chips once, on first use: the chip must be live
	// before this point.
	if err := selfCheck(sim); err != nil {
		return fmt.Errorf("harness self-check (periph straight on gpio-sim, no roomd code): %w", err)
	}
	if err := checkBackend(sim, logger); err != nil {
		return err
	}
	if err := checkCommission(sim, logger); err != nil {
		return err
	}
	return checkPower(sim)
}
