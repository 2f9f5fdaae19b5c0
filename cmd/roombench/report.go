package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Report is everything one run measured.
type Report struct {
	Date    string         `json:"date"`
	Command string         `json:"command"`
	Short   bool           `json:"short"`
	Machine Machine        `json:"machine"`
	Suites  []*SuiteResult `json:"suites"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Broker    string `json:"broker"`
}

// SuiteResult is one suite's figures.
type SuiteResult struct {
	Suite  string            `json:"suite"`
	Params map[string]string `json:"params"`
	Rows   []Row             `json:"rows,omitempty"`
	Checks []Check           `json:"checks,omitempty"`
	Notes  []string          `json:"notes,omitempty"`
	// Problems are correctness failures (a record lost, a count wrong);
	// they fail the run in every mode, targets only outside --short.
	Problems []string `json:"problems,omitempty"`
	Error    string   `json:"error,omitempty"`
	// LoadAvg is /proc/loadavg before and after the suite: the machine may
	// be shared.
	LoadAvg [2]string `json:"loadavg"`
}

// Row is a latency figure with the floor measured in the same run.
type Row struct {
	Metric string   `json:"metric"`
	Sample Summary  `json:"sample"`
	Floor  *Summary `json:"floor,omitempty"`
	// RatioP50 and RatioP99 are the sample's percentile over the floor's.
	RatioP50 float64 `json:"ratio_p50,omitempty"`
	RatioP99 float64 `json:"ratio_p99,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

// Check is a single figure against a target, or a correctness check.
type Check struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

func boolp(b bool) *bool { return &b }

// Failed reports whether the suite failed, found a problem or, unless
// short, missed a target.
func (s *SuiteResult) Failed(short bool) bool {
	if s.Error != "" || len(s.Problems) > 0 {
		return true
	}
	if short {
		return false
	}
	for _, r := range s.Rows {
		if r.Met != nil && !*r.Met {
			return true
		}
	}
	for _, c := range s.Checks {
		if c.Met != nil && !*c.Met {
			return true
		}
	}
	return false
}

func (s *SuiteResult) row(metric string, sample Summary, floor *Summary) *Row {
	r := Row{Metric: metric, Sample: sample, Floor: floor}
	if floor != nil && floor.P99 > 0 && floor.P50 > 0 {
		r.RatioP50 = sample.P50 / floor.P50
		r.RatioP99 = sample.P99 / floor.P99
	}
	s.Rows = append(s.Rows, r)
	return &s.Rows[len(s.Rows)-1]
}

func (s *SuiteResult) check(name, value, target string, met *bool) {
	s.Checks = append(s.Checks, Check{Name: name, Value: value, Target: target, Met: met})
}

func (s *SuiteResult) problem(format string, args ...any) {
	s.Problems = append(s.Problems, fmt.Sprintf(format, args...))
}

func (s *SuiteResult) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

func metWord(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "met"
	default:
		return "NOT met"
	}
}

// writeJSON writes the report as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable writes the report as text tables (Markdown-compatible rows).
func (r *Report) writeTable(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "roombench %s  (%s)\n", r.Date, r.Command)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %d MiB, kernel %s, %s, broker %s\n", m.CPUs, m.CPUModel, m.MemoryMiB, m.Kernel, m.Go, m.Broker)
	if r.Short {
		fmt.Fprintln(w, "SHORT (smoke) mode: the numbers are not measurements, only the checks count")
	}
	for _, s := range r.Suites {
		fmt.Fprintf(w, "\n== %s", s.Suite)
		if len(s.Params) > 0 {
			fmt.Fprintf(w, "  (%s)", formatParams(s.Params))
		}
		fmt.Fprintln(w)
		if s.Error != "" {
			fmt.Fprintf(w, "ERROR: %s\n", s.Error)
		}
		if len(s.Rows) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
			fmt.Fprintln(tw, "| metric (ms)\t n\t min\t p50\t p90\t p99\t max\t floor p50\t floor p99\t p50/floor\t p99/floor\t target\t \t")
			for _, row := range s.Rows {
				x := row.Sample
				fmt.Fprintf(tw, "| %s\t %d\t %.2f\t %.2f\t %.2f\t %.2f\t %.2f\t", row.Metric, x.N, x.Min, x.P50, x.P90, x.P99, x.Max)
				if row.Floor != nil {
					fmt.Fprintf(tw, " %.2f\t %.2f\t %.1fx\t %.1fx\t", row.Floor.P50, row.Floor.P99, row.RatioP50, row.RatioP99)
				} else {
					fmt.Fprint(tw, " \t \t \t \t")
				}
				fmt.Fprintf(tw, " %s\t %s\t\n", row.Target, metWord(row.Met))
			}
			_ = tw.Flush()
		}
		if len(s.Checks) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
			fmt.Fprintln(tw, "| figure\t value\t target\t \t")
			for _, c := range s.Checks {
				fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t\n", c.Name, c.Value, c.Target, metWord(c.Met))
			}
			_ = tw.Flush()
		}
		for _, p := range s.Problems {
			fmt.Fprintf(w, "PROBLEM: %s\n", p)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		fmt.Fprintf(w, "load average before: %s; after: %s\n", s.LoadAvg[0], s.LoadAvg[1])
	}
}

func formatParams(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, ", ")
}

// describeMachine reads the machine's description from /proc and uname.
func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, ln := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(ln, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, ln := range strings.Split(string(data), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(ln, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMiB = kb / 1024
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}
