package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// Marker prefixes the one result line the test program prints.
const Marker = "ROOMD-VMTEST"

// Outcome is what the marker line said.
type Outcome uint8

// The outcomes. OutcomeNone means no marker line was seen.
const (
	OutcomeNone Outcome = iota
	OutcomePass
	OutcomeFail
	OutcomeSkip
)

func (o Outcome) String() string {
	switch o {
	case OutcomePass:
		return "PASS"
	case OutcomeFail:
		return "FAIL"
	case OutcomeSkip:
		return "SKIP"
	default:
		return "none"
	}
}

// Config says what to boot.
type Config struct {
	// QEMU is the qemu-system-aarch64 binary ("" looks it up in PATH).
	QEMU string
	// Kernel is the arm64 Image; Initrd the gzip cpio from Initramfs.
	Kernel, Initrd string
	// Timeout bounds the whole VM run; qemu is killed when it passes.
	Timeout time.Duration
	// Console, if not nil, also receives the console as it arrives.
	Console io.Writer
}

// Result is one VM run.
type Result struct {
	Outcome Outcome
	// Reason is the text after "FAIL: " or "SKIP: ".
	Reason string
	// Console is the whole serial console.
	Console string
	// ToMarker is from starting qemu to the marker line; Total to qemu's exit.
	ToMarker, Total time.Duration
}

// Args returns qemu's arguments for cfg.
func Args(cfg Config) []string {
	return []string{
		"-M", "virt", "-cpu", "cortex-a72", "-m", "512",
		"-nographic", "-no-reboot", "-accel", "tcg", "-nic", "none",
		"-kernel", cfg.Kernel, "-initrd", cfg.Initrd,
		"-append", "console=ttyAMA0 panic=-1 loglevel=3",
	}
}

// ParseMarker finds the marker line in a console transcript.
func ParseMarker(line string) (Outcome, string, bool) {
	line = strings.TrimRight(line, "\r\n")
	i := strings.Index(line, Marker+" ")
	if i < 0 {
		return OutcomeNone, "", false
	}
	rest := line[i+len(Marker)+1:]
	switch {
	case rest == "PASS":
		return OutcomePass, "", true
	case strings.HasPrefix(rest, "FAIL"):
		return OutcomeFail, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest, "FAIL"), ":")), true
	case strings.HasPrefix(rest, "SKIP"):
		return OutcomeSkip, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest, "SKIP"), ":")), true
	}
	return OutcomeNone, "", false
}

// Boot runs the VM until qemu exits (the program reboots, which -no-reboot
// turns into an exit) or cfg.Timeout passes. It returns an error when qemu
// could not run, timed out, or printed no marker; the Result then still
// holds the console for the report.
func Boot(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	qemu := cfg.QEMU
	if qemu == "" {
		p, err := exec.LookPath("qemu-system-aarch64")
		if err != nil {
			return res, fmt.Errorf("boot vm: %w", err)
		}
		qemu = p
	}
	if cfg.Timeout <= 0 {
		return res, errors.New("boot vm: no timeout set")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, qemu, Args(cfg)...)
	cmd.WaitDelay = 2 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw

	var console bytes.Buffer
	var mu sync.Mutex
	done := make(chan struct{})
	start := wallclock.Now()
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			console.WriteString(line + "\n")
			if res.Outcome == OutcomeNone {
				if o, reason, ok := ParseMarker(line); ok {
					res.Outcome, res.Reason, res.ToMarker = o, reason, wallclock.Since(start)
				}
			}
			mu.Unlock()
			if cfg.Console != nil {
				fmt.Fprintln(cfg.Console, line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()

	if err := cmd.Start(); err != nil {
		pw.Close()
		<-done
		return res, fmt.Errorf("boot vm: start %s: %w", qemu, err)
	}
	waitErr := cmd.Wait()
	pw.Close()
	<-done
	res.Total = wallclock.Since(start)
	mu.Lock()
	res.Console = console.String()
	mu.Unlock()

	switch {
	case ctx.Err() != nil && res.Outcome == OutcomeNone:
		return res, fmt.Errorf("boot vm: no marker after %s (timeout): %w", cfg.Timeout, ctx.Err())
	case waitErr != nil && ctx.Err() == nil:
		return res, fmt.Errorf("boot vm: qemu: %w", waitErr)
	case res.Outcome == OutcomeNone:
		return res, fmt.Errorf("boot vm: qemu exited after %s without a %s line", res.Total.Round(time.Millisecond), Marker)
	}
	return res, nil
}
