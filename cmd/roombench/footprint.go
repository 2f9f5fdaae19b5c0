package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// footprint targets.
const (
	targetRSSMiB  = 20.0
	targetIdleCPU = 0.1 // percent of one core
)

// phaseStats summarizes /proc samples of one phase.
type phaseStats struct {
	maxRSSKiB            int64
	cpu                  float64 // % of one core
	minThreads           int
	maxThreads           int
	volPerSec, nvPerSec  float64
	firstRSSKiB, lastRSS int64
}

// runFootprint runs the built roomd binary ("roomd run" with the simulator
// backend and the italy preset) as its own process and samples
// /proc/<pid>/status and /proc/<pid>/stat every second: while idle for
// --duration, then during a visit for --duration (the door opened and
// closed through sim/set every 5 s). It also builds the stripped release
// binaries for linux/arm (GOARM=6) and linux/arm64 and reports their sizes.
func runFootprint(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	res.Params = map[string]string{"duration": e.cfg.Duration.String(), "policy": "italy", "backend": "sim",
		"reread_every": "5s", "heartbeat": "30s", "keepalive": "5s"}
	bin := e.cfg.Roomd
	if bin == "" {
		bin = filepath.Join(e.dir, "roomd")
		if err := goBuild(bin, nil); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	id := e.roomID("fp", 1)
	stateDir := filepath.Join(e.dir, "footprint-state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		res.Error = fmt.Sprintf("create state dir: %v", err)
		return res
	}
	conf := filepath.Join(e.dir, "footprint.yaml")
	yaml := fmt.Sprintf("room: %s\nstate_dir: %s\npolicy:\n  preset: italy\ndevice:\n  backend: sim\nmqtt:\n  broker: %s\n  base: visitrooms\nlog:\n  format: text\n  level: error\n",
		id, stateDir, e.broker)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		res.Error = fmt.Sprintf("write config: %v", err)
		return res
	}
	in := e.guard.inbox(id, 256)
	cmd := exec.Command(bin, "run", "--config", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		res.Error = fmt.Sprintf("start %s: %v", bin, err)
		return res
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	if _, err := waitRecord(ctx, in, 30*time.Second, func(m received) bool { return isEvent(m, "controller_started") }); err != nil {
		res.Error = fmt.Sprintf("roomd did not come up: %v", err)
		return res
	}
	pid := cmd.Process.Pid
	con, err := e.console(id)
	if err == nil {
		err = con.ping(ctx, in, 30*time.Second)
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	sleepCtx(ctx, 2*time.Second) // let the start-up settle

	idle, err := samplePhase(ctx, pid, e.cfg.Duration, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if err := con.send(controller.Command{Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour}); err != nil {
		res.Error = err.Error()
		return res
	}
	if _, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isEvent(m, "visit_started") }); err != nil {
		res.Error = fmt.Sprintf("visit_started: %v", err)
		return res
	}
	open := false
	visit, err := samplePhase(ctx, pid, e.cfg.Duration, func(i int) {
		if i%5 == 0 {
			open = !open
			state := "closed"
			if open {
				state = "open"
			}
			_ = con.simSet(`{"door":"` + state + `"}`)
		}
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	for _, p := range []struct {
		name string
		s    phaseStats
	}{{"idle", idle}, {"visit", visit}} {
		res.check(p.name+": RSS max (VmRSS)", mib(p.s.maxRSSKiB), fmt.Sprintf("< %.0f MiB", targetRSSMiB),
			boolp(float64(p.s.maxRSSKiB)/1024 < targetRSSMiB))
		res.check(p.name+": RSS first -> last sample", mib(p.s.firstRSSKiB)+" -> "+mib(p.s.lastRSS), "", nil)
		cpu := Check{Name: p.name + ": CPU (utime+stime) / wall", Value: fmt.Sprintf("%.3f%% of a core", p.s.cpu)}
		if p.name == "idle" {
			cpu.Target = fmt.Sprintf("< %.1f%%", targetIdleCPU)
			cpu.Met = boolp(p.s.cpu < targetIdleCPU)
		}
		res.Checks = append(res.Checks, cpu)
		res.check(p.name+": OS threads min..max", fmt.Sprintf("%d..%d", p.s.minThreads, p.s.maxThreads), "stable", nil)
		res.check(p.name+": context switches per second (voluntary, non-voluntary)",
			fmt.Sprintf("%.1f, %.1f", p.s.volPerSec, p.s.nvPerSec), "", nil)
	}
	res.note("configured idle wake-ups: 5 inputs re-read every 5 s (1/s), a state heartbeat every 30 s, an MQTT keepalive ping every 5 s (0.2/s); each wake-up costs a few context switches across the Go runtime's threads")
	res.note("CPU is read from /proc/<pid>/stat in clock ticks of 10 ms, so a phase of a few minutes resolves about 0.01%% of a core")

	for _, t := range []struct{ label, arch, arm string }{{"linux/arm GOARM=6", "arm", "6"}, {"linux/arm64", "arm64", ""}} {
		out := filepath.Join(e.dir, "roomd-"+t.arch+t.arm)
		env := []string{"GOOS=linux", "GOARCH=" + t.arch, "CGO_ENABLED=0"}
		if t.arm != "" {
			env = append(env, "GOARM="+t.arm)
		}
		if err := goBuild(out, env); err != nil {
			res.problem("build %s: %v", t.label, err)
			continue
		}
		fi, err := os.Stat(out)
		if err != nil {
			res.problem("stat %s: %v", out, err)
			continue
		}
		res.check("roomd binary, stripped, "+t.label, fmt.Sprintf("%d bytes (%.1f MiB)", fi.Size(), float64(fi.Size())/(1<<20)), "", nil)
	}
	return res
}

// samplePhase samples pid once a second for d; each(i) runs before sample i.
func samplePhase(ctx context.Context, pid int, d time.Duration, each func(i int)) (phaseStats, error) {
	first, err := readProc(pid)
	if err != nil {
		return phaseStats{}, err
	}
	st := phaseStats{maxRSSKiB: first.RSSKiB, minThreads: first.Threads, maxThreads: first.Threads, firstRSSKiB: first.RSSKiB}
	last := first
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := wallclock.Now().Add(d)
	for i := 0; wallclock.Now().Before(end); i++ {
		if each != nil {
			each(i)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		s, err := readProc(pid)
		if err != nil {
			return st, err
		}
		st.maxRSSKiB = max(st.maxRSSKiB, s.RSSKiB)
		st.minThreads = min(st.minThreads, s.Threads)
		st.maxThreads = max(st.maxThreads, s.Threads)
		last = s
	}
	st.lastRSS = last.RSSKiB
	st.cpu = cpuShare(first, last)
	secs := last.At.Sub(first.At).Seconds()
	if secs > 0 {
		st.volPerSec = float64(max(0, last.VolCtxt-first.VolCtxt)) / secs
		st.nvPerSec = float64(max(0, last.NonVolCtxt-first.NonVolCtxt)) / secs
	}
	return st, nil
}

// goBuild builds ./cmd/roomd stripped, as released, with extra environment.
func goBuild(out string, extra []string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/roomd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), extra...)
	if len(extra) == 0 {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/roomd %s: %v\n%s", strings.Join(extra, " "), err, b)
	}
	return nil
}

// moduleRoot is the first directory upwards from the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find the module root: no go.mod above the working directory (or pass --roomd)")
		}
		dir = parent
	}
}
