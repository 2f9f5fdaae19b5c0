package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture roomd runs on).
const clockTicks = 100

// procSample is what /proc says about a process at one instant.
type procSample struct {
	At         time.Time
	CPU        time.Duration // utime + stime
	RSSKiB     int64         // VmRSS
	Threads    int
	VolCtxt    int64 // voluntary_ctxt_switches, summed over threads
	NonVolCtxt int64
	FDs        int
}

// readProc samples /proc/<pid>. Context switches are summed over every
// thread (/proc/<pid>/task/*/status), since the process line counts only
// the main thread.
func readProc(pid int) (procSample, error) {
	s := procSample{At: wallclock.Now()}
	base := fmt.Sprintf("/proc/%d", pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return s, fmt.Errorf("read %s/stat: %w", base, err)
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("parse %s/stat: no ')'", base)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s, fmt.Errorf("parse %s/stat: %d fields", base, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("parse %s/stat utime/stime %q %q", base, f[11], f[12])
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return s, fmt.Errorf("read %s/status: %w", base, err)
	}
	for _, ln := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			s.RSSKiB, _ = strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		case "Threads":
			s.Threads, _ = strconv.Atoi(v)
		}
	}
	tasks, err := os.ReadDir(base + "/task")
	if err == nil {
		for _, t := range tasks {
			data, err := os.ReadFile(base + "/task/" + t.Name() + "/status")
			if err != nil {
				continue // the thread exited
			}
			for _, ln := range strings.Split(string(data), "\n") {
				k, v, ok := strings.Cut(ln, ":")
				if !ok {
					continue
				}
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switch k {
				case "voluntary_ctxt_switches":
					s.VolCtxt += n
				case "nonvoluntary_ctxt_switches":
					s.NonVolCtxt += n
				}
			}
		}
	}
	if fds, err := os.ReadDir(base + "/fd"); err == nil {
		s.FDs = len(fds)
	}
	return s, nil
}

// cpuShare is the CPU used between two samples as a percentage of one core.
func cpuShare(a, b procSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}
