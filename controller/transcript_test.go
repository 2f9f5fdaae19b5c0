package controller_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

// Scenario transcripts: each file in testdata/ is a sequence of blocks. A block
// is one directive line, a line "----", the expected output, and a blank line.
// Run `go test ./controller -run TestTranscripts -update` to rewrite the
// expected output after a deliberate change of behaviour, then review the diff.
var update = flag.Bool("update", false, "rewrite the expected output of controller/testdata transcripts")

// t0 is the origin of transcript time: "at 90m" is t0+90m.
var t0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

type block struct {
	directive string
	comments  []string // lines before the directive
	want      string
	line      int
}

func parseTranscript(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var blocks []block
	var cur *block
	var comments []string
	inOutput := false
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case inOutput && line == "":
			inOutput = false
			blocks = append(blocks, *cur)
			cur = nil
		case inOutput:
			cur.want += line + "\n"
		case line == "----":
			require.NotNil(t, cur, "%s:%d: ---- without a directive", path, n)
			inOutput = true
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			require.Nil(t, cur, "%s:%d: a directive must be followed by ----", path, n)
			comments = append(comments, line)
		default:
			require.Nil(t, cur, "%s:%d: a directive must be followed by ----", path, n)
			cur = &block{directive: line, comments: comments, line: n}
			comments = nil
		}
	}
	require.NoError(t, sc.Err())
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

func runTranscript(t *testing.T, path string) {
	blocks := parseTranscript(t, path)
	h := &harness{t: t}
	var out strings.Builder
	for i, b := range blocks {
		got := h.do(b.directive, path, b.line)
		if *update {
			for _, c := range b.comments {
				out.WriteString(c + "\n")
			}
			out.WriteString(b.directive + "\n----\n" + got + "\n")
			continue
		}
		require.Equal(t, b.want, got, "%s:%d: %s (block %d)", path, b.line, b.directive, i+1)
	}
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o644))
	}
}

type harness struct {
	t *testing.T
	p controller.Policy
	c *controller.Controller
}

func offset(at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(t0).String()
}

func (h *harness) do(directive, path string, line int) string {
	t := h.t
	fields := strings.Fields(directive)
	where := fmt.Sprintf("%s:%d", path, line)
	switch fields[0] {
	case "policy":
		h.p = testPolicy(t, where, fields[1:])
		c, acts, err := controller.New(h.p, t0)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		h.c = c
		return render(flat(acts))
	case "at":
		require.GreaterOrEqual(t, len(fields), 3, "%s: at DURATION WHAT ...", where)
		d, err := time.ParseDuration(fields[1])
		require.NoError(t, err, where)
		at := t0.Add(d)
		return render(flat(h.c.Step(h.event(where, at, fields[2], fields[3:]))))
	case "advance":
		// advance D: tick at every deadline up to t0+D, then at t0+D.
		d, err := time.ParseDuration(fields[1])
		require.NoError(t, err, where)
		end := t0.Add(d)
		var acts []any
		for {
			next, ok := h.c.NextDeadline()
			if !ok || next.After(end) {
				break
			}
			acts = append(acts, flat(h.c.Step(controller.Tick{At: next}))...)
		}
		acts = append(acts, flat(h.c.Step(controller.Tick{At: end}))...)
		return render(acts)
	case "deadline":
		next, ok := h.c.NextDeadline()
		if !ok {
			return "none\n"
		}
		return offset(next) + "\n"
	case "state":
		return renderState(h.c.State())
	case "restart":
		// The snapshot goes through JSON as it does through the state file.
		d, err := time.ParseDuration(fields[1])
		require.NoError(t, err, where)
		data, err := json.Marshal(h.c.Snapshot())
		require.NoError(t, err, where)
		var snap controller.Snapshot
		require.NoError(t, json.Unmarshal(data, &snap), where)
		c, acts, err := controller.Restore(h.p, snap, t0.Add(d))
		require.NoError(t, err, where)
		h.c = c
		return render(flat(acts))
	}
	t.Fatalf("%s: unknown directive %q", where, fields[0])
	return ""
}

func kv(t *testing.T, where string, args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		require.True(t, ok, "%s: want key=value, got %q", where, a)
		m[k] = v
	}
	return m
}

func dur(t *testing.T, where, s string) time.Duration {
	d, err := time.ParseDuration(s)
	require.NoError(t, err, where)
	return d
}

// testPolicy is a policy with short, round defaults, changed by key=value.
func testPolicy(t *testing.T, where string, args []string) controller.Policy {
	p := controller.Policy{
		Name: "test", MaxDuration: 2 * time.Hour, Warnings: []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute, ReannounceAfter: 5 * time.Minute,
		LockGrace: 10 * time.Second, EndOnVacancy: true, VacancyHold: 2 * time.Minute, VacateTimeout: 10 * time.Minute,
	}
	for k, v := range kv(t, where, args) {
		switch k {
		case "preset":
			p = presetPolicy(t, where, v)
		case "max_duration":
			p.MaxDuration = dur(t, where, v)
		case "warnings":
			p.Warnings = nil
			if v != "" {
				for _, w := range strings.Split(v, ",") {
					p.Warnings = append(p.Warnings, dur(t, where, w))
				}
			}
		case "escalate_after":
			p.EscalateAfter = dur(t, where, v)
		case "repeat_every":
			p.RepeatEvery = dur(t, where, v)
		case "reannounce_after":
			p.ReannounceAfter = dur(t, where, v)
		case "lock_grace":
			p.LockGrace = dur(t, where, v)
		case "lock_scope":
			p.LockScope = map[string]controller.LockScope{"visit": controller.LockDuringVisit, "always": controller.LockAlways}[v]
		case "extension":
			p.Extension = map[string]controller.Extension{"up_to_max": controller.ExtensionUpToMax, "forbidden": controller.ExtensionForbidden}[v]
		case "end_on_vacancy":
			p.EndOnVacancy = v == "true"
		case "vacancy_hold":
			p.VacancyHold = dur(t, where, v)
		case "vacate_timeout":
			p.VacateTimeout = dur(t, where, v)
		case "welfare_check_every":
			p.WelfareCheckEvery = dur(t, where, v)
		case "panic_reset":
			p.PanicReset = map[string]controller.PanicReset{"on_site": controller.PanicResetOnSite, "ack": controller.PanicResetAck}[v]
		case "inspection_after_visit":
			p.InspectionAfterVisit = v == "true"
		case "function_test_every":
			p.FunctionTestEvery = dur(t, where, v)
		default:
			t.Fatalf("%s: unknown policy key %q", where, k)
		}
	}
	return p
}

func (h *harness) event(where string, at time.Time, what string, args []string) controller.Event {
	t := h.t
	switch what {
	case "tick":
		return controller.Tick{At: at}
	case "input":
		// input NAME LEVEL, or input panic:POINT LEVEL for a named panic
		// point; then, for a supervised loop, tamper=WORDS (with
		// underscores for spaces) and drift=low|high|none.
		require.GreaterOrEqual(t, len(args), 2, "%s: input NAME[:POINT] LEVEL [tamper=WORDS] [drift=D]", where)
		name, point, _ := strings.Cut(args[0], ":")
		in, err := controller.ParseInput(name)
		require.NoError(t, err, where)
		l, err := in.ParseLevel(args[1])
		require.NoError(t, err, where)
		e := controller.InputChanged{At: at, Input: in, Point: point, Level: l, Detail: map[bool]string{true: "test"}[l == controller.LevelUnknown]}
		for k, v := range kv(t, where, args[2:]) {
			switch k {
			case "tamper":
				e.Tamper, e.Detail = true, strings.ReplaceAll(v, "_", " ")
			case "drift":
				e.Drift = map[string]controller.Drift{"none": controller.DriftNone, "low": controller.DriftLow, "high": controller.DriftHigh}[v]
			default:
				t.Fatalf("%s: unknown input key %q", where, k)
			}
		}
		return e
	case "feedback":
		// feedback OUTPUT follows|fails
		require.Len(t, args, 2, "%s: feedback OUTPUT follows|fails", where)
		o, err := controller.ParseOutput(args[0])
		require.NoError(t, err, where)
		require.Contains(t, []string{"follows", "fails"}, args[1], where)
		return controller.FeedbackChanged{At: at, Output: o, Follows: args[1] == "follows", Detail: map[bool]string{true: "test"}[args[1] == "fails"]}
	case "clock":
		// clock SHIFT: the time axis was wrong by -SHIFT; At is the corrected time.
		require.Len(t, args, 1, "%s: clock SHIFT", where)
		return controller.ClockCorrected{At: at, Shift: dur(t, where, args[0])}
	case "cmd":
		require.NotEmpty(t, args, "%s: cmd ACTION key=value...", where)
		a, err := controller.ParseCommandAction(args[0])
		require.NoError(t, err, where)
		c := controller.Command{At: at, Action: a, RequestID: "r"}
		for k, v := range kv(t, where, args[1:]) {
			switch k {
			case "visit":
				c.VisitID = v
			case "duration":
				c.Duration = dur(t, where, v)
			case "by":
				c.By = v
			case "alert":
				c.AlertID = v
			case "in_service":
				c.InService = v == "true"
			case "reason":
				c.Reason = v
			case "id":
				c.RequestID = v
			default:
				t.Fatalf("%s: unknown command key %q", where, k)
			}
		}
		return c
	case "tested":
		// tested by=ID mode=full|light LINE=passed|FAULT...: a function test;
		// LINE is door, panic:POINT, presence:N or an output.
		e := controller.FunctionTested{At: at, Test: controller.FunctionTest{Version: "test", Passed: true}}
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			require.True(t, ok, "%s: want key=value, got %q", where, a)
			switch k {
			case "by":
				e.By = v
			case "mode":
				m, err := controller.ParseTestMode(v)
				require.NoError(t, err, where)
				e.Test.Mode = m
			default:
				l := lineResult(t, where, k)
				if v != "passed" {
					l.Fault = controller.LineFault(v)
				}
				l.Passed = l.Fault == controller.FaultNone
				e.Test.Passed = e.Test.Passed && l.Passed
				e.Test.Lines = append(e.Test.Lines, l)
			}
		}
		return e
	case "fault":
		require.GreaterOrEqual(t, len(args), 2, "%s: fault SOURCE on|off [critical] [clear_on_ack]", where)
		f := controller.Fault{At: at, Source: args[0], Active: args[1] == "on", Severity: controller.SeverityWarning, Detail: "test"}
		for _, a := range args[2:] {
			switch a {
			case "critical":
				f.Severity = controller.SeverityCritical
			case "clear_on_ack":
				f.ClearOnAck = true
			}
		}
		return f
	}
	t.Fatalf("%s: unknown event %q", where, what)
	return nil
}

// lineResult reads a line name of a tested directive: door, panic:POINT,
// presence:N or an output.
func lineResult(t *testing.T, where, name string) controller.LineResult {
	if o, err := controller.ParseOutput(name); err == nil {
		return controller.LineResult{Output: o}
	}
	role, rest, _ := strings.Cut(name, ":")
	in, err := controller.ParseInput(role)
	require.NoError(t, err, where)
	l := controller.LineResult{Input: in}
	switch in {
	case controller.InputPanic:
		l.Point = rest
	case controller.InputPresence:
		l.Sensor, err = strconv.Atoi(rest)
		require.NoError(t, err, "%s: presence:N", where)
	}
	return l
}

func render(acts []any) string {
	var b strings.Builder
	for _, a := range acts {
		switch a := a.(type) {
		case controller.SetOutput:
			fmt.Fprintf(&b, "output %s %s", a.Output, a.Mode)
			if a.Pulses > 0 {
				fmt.Fprintf(&b, " pulses=%d", a.Pulses)
			}
			b.WriteString("\n")
		case controller.Record:
			b.WriteString(renderRecord(a) + "\n")
		case stateChanged:
			b.WriteString("state changed\n")
		case controller.Reply:
			if a.OK() {
				fmt.Fprintf(&b, "reply %s ok\n", a.Action)
			} else {
				fmt.Fprintf(&b, "reply %s refused %s: %s\n", a.Action, a.Code, a.Message)
			}
			if len(a.Blockers) > 0 {
				fmt.Fprintf(&b, "blockers %s\n", strings.Join(a.Blockers, " "))
			}
		default:
			fmt.Fprintf(&b, "unknown action %T\n", a)
		}
	}
	return b.String()
}

func renderRecord(r controller.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d @%s %s", r.Seq, offset(r.At), r.Type)
	if r.By != "" {
		fmt.Fprintf(&b, " by=%s", r.By)
	}
	if !r.DueAt.IsZero() {
		fmt.Fprintf(&b, " due=@%s", offset(r.DueAt))
	}
	if r.VisitID != "" {
		fmt.Fprintf(&b, " visit=%s", r.VisitID)
	}
	if !r.EndsAt.IsZero() {
		fmt.Fprintf(&b, " ends=@%s", offset(r.EndsAt))
	}
	if r.Duration != 0 {
		fmt.Fprintf(&b, " duration=%s", r.Duration)
	}
	if r.Added != 0 {
		fmt.Fprintf(&b, " added=%s", r.Added)
	}
	if r.Warning != 0 {
		fmt.Fprintf(&b, " warning=%d remaining=%s", r.Warning, r.Remaining)
	}
	if r.EndReason != "" {
		fmt.Fprintf(&b, " reason=%s", r.EndReason)
	}
	if r.Type == controller.EventServiceChanged {
		fmt.Fprintf(&b, " in_service=%t reason=%q", r.InService, r.ServiceReason)
	}
	if r.Resumed {
		b.WriteString(" resumed")
	}
	if a := r.Alert; a != nil {
		b.WriteString(" " + renderAlert(*a))
	}
	if ft := r.Test; ft != nil {
		fmt.Fprintf(&b, " mode=%s passed=%t version=%s", ft.Mode, ft.Passed, ft.Version)
		for _, l := range ft.Lines {
			if l.Passed {
				fmt.Fprintf(&b, " %s=passed", l.Name())
			} else {
				fmt.Fprintf(&b, " %s=%s", l.Name(), l.Fault)
			}
		}
	}
	return b.String()
}

func renderAlert(a controller.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s %s %s raised=@%s", a.ID, a.Kind, a.Severity, offset(a.RaisedAt))
	if a.Input != 0 {
		fmt.Fprintf(&b, " input=%s", a.Input)
	}
	if a.Point != "" {
		fmt.Fprintf(&b, " point=%s", a.Point)
	}
	if a.Output != 0 {
		fmt.Fprintf(&b, " output=%s", a.Output)
	}
	if a.Source != "" {
		fmt.Fprintf(&b, " source=%s", a.Source)
	}
	if a.Acked {
		fmt.Fprintf(&b, " acked=@%s", offset(a.AckedAt))
	}
	if a.Reset {
		b.WriteString(" reset")
	}
	if !a.ClearedAt.IsZero() {
		fmt.Fprintf(&b, " cleared=@%s", offset(a.ClearedAt))
	}
	if a.Announcements > 1 {
		fmt.Fprintf(&b, " announced=%d", a.Announcements)
	}
	if a.Kind == controller.AlertFunctionTestDue || a.Kind == controller.AlertLineDrift || a.Detail != "test" && a.Kind == controller.AlertSensorFault {
		fmt.Fprintf(&b, " detail=%q", a.Detail)
	}
	b.WriteString("]")
	return b.String()
}

func renderState(s controller.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "at=@%s seq=%d phase=%s door=%s lock=%s", offset(s.At), s.Seq, s.Phase,
		controller.InputDoor.Describe(s.Door), controller.InputLock.Describe(s.Lock))
	if s.Presence != nil {
		fmt.Fprintf(&b, " presence=%s", controller.InputPresence.Describe(*s.Presence))
	}
	if s.ServiceReason != "" {
		fmt.Fprintf(&b, " service_reason=%q", s.ServiceReason)
	}
	b.WriteString("\n")
	if v := s.Visit; v != nil {
		fmt.Fprintf(&b, "visit %s started=@%s ends=@%s remaining=%s max=%s\n", v.ID, offset(v.StartedAt), offset(v.EndsAt), v.Remaining, v.Max)
	}
	for _, a := range s.Alerts {
		b.WriteString("alert " + renderAlert(a) + "\n")
	}
	var outs []string
	for _, o := range controller.Outputs {
		so := s.Outputs[o]
		x := o.String() + "=" + so.Mode.String()
		if so.Pulses > 0 {
			x += "/" + strconv.Itoa(int(so.Pulses))
		}
		outs = append(outs, x)
	}
	b.WriteString("outputs " + strings.Join(outs, " ") + "\n")
	return b.String()
}
