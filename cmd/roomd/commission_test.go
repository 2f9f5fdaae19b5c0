//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
)

// terminal is a program running in a pseudo-terminal, and what it wrote.
type terminal struct {
	t    *testing.T
	tty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	at   int           // how far the script has read
	wake chan struct{} // closed and replaced on every write
	done chan struct{} // closed when the terminal is closed
	exit chan error
}

// startTerminal runs bin with args in a pseudo-terminal.
func startTerminal(t *testing.T, bin string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 200, Rows: 50})
	require.NoError(t, err)
	term := &terminal{t: t, tty: tty, cmd: cmd, wake: make(chan struct{}), done: make(chan struct{}), exit: make(chan error, 1)}
	go func() {
		defer close(term.done)
		b := make([]byte, 4096)
		for {
			n, err := tty.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			close(term.wake)
			term.wake = make(chan struct{})
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { term.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		_ = tty.Close()
	})
	return term
}

// expect waits for text after what the script read so far, and reads past it.
func (term *terminal) expect(text string) {
	term.t.Helper()
	term.expectRe(regexp.MustCompile(regexp.QuoteMeta(text)), text)
}

func (term *terminal) expectRe(re *regexp.Regexp, what string) {
	term.t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		term.mu.Lock()
		out := term.buf.Bytes()[term.at:]
		loc := re.FindIndex(out)
		wake := term.wake
		tail := string(out[max(0, len(out)-1500):])
		if loc != nil {
			term.at += loc[1]
		}
		term.mu.Unlock()
		if loc != nil {
			return
		}
		select {
		case <-wake:
		case <-term.done:
			term.t.Fatalf("terminal closed before %q; last output:\n%s", what, tail)
		case <-deadline.C:
			term.t.Fatalf("no %q on the terminal; last output:\n%s", what, tail)
		}
	}
}

// send types a line.
func (term *terminal) send(line string) {
	term.t.Helper()
	_, err := io.WriteString(term.tty, line+"\n")
	require.NoError(term.t, err)
}

// screen is everything the program wrote.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.buf.String()
}

// wait returns the program's exit code, once everything it wrote has been
// read: what it wrote last (its error line) may still be in the pty when
// it exits, and a busy machine makes the reader late.
func (term *terminal) wait() int {
	term.t.Helper()
	select {
	case err := <-term.exit:
		select {
		case <-term.done: // the pty is drained
		case <-time.After(30 * time.Second):
			term.t.Fatalf("the program exited but its terminal did not close; last output:\n%s", term.screen())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(term.t, err)
		return 0
	case <-time.After(30 * time.Second):
		term.t.Fatalf("the program did not exit; last output:\n%s", term.screen())
		return -1
	}
}

// commissionConfig writes a simulated room's config with every input and
// output wired (two presence sensors, the panic points bed and toilet);
// edit changes its device inputs' YAML.
func commissionConfig(t *testing.T, stateDir, broker string, edit func(string) string) string {
	t.Helper()
	inputs := `    door: {pin: GPIO17}
    lock: {pin: GPIO27}
    presence: [{pin: GPIO22}, {pin: GPIO5}]
    panic: [{name: bed, pin: GPIO23}, {name: toilet, pin: GPIO18}]
    staff: {pin: GPIO24, active_low: true}
`
	if edit != nil {
		inputs = edit(inputs)
	}
	path := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `room: room-c
state_dir: %s
policy: {preset: italy}
device:
  backend: sim
  reread_every: 1s
  inputs:
%s  outputs:
    in_use: {pin: GPIO13}
    warning: {pin: GPIO19}
    alarm_light: {pin: GPIO26}
    alarm_sounder: {pin: GPIO20}
    reassurance: {pin: GPIO21}
mqtt: {broker: %q, base: visitrooms, heartbeat: 1s}
`, stateDir, inputs, broker), 0o600))
	return path
}

// exchange is one prompt of the walk-through and what the tester types.
type exchange struct{ prompt, answer string }

// cleanInputs acts on every input as asked, in the simulator's syntax.
var cleanInputs = []exchange{
	{"> door: open the door now", "door=open"},
	{"> door: close the door again", "door=closed"},
	{"> lock: throw the bolt now", "lock=locked"},
	{"> lock: draw the bolt back (unlocked)", "lock=unlocked"},
	{"> presence sensor 1: walk in front of presence sensor 1 (the PIR) now", "presence=present"},
	{"> presence sensor 1: step out of its view", "presence=absent"},
	{"> presence sensor 2: walk in front of presence sensor 2 (the PIR) now", "presence=present"},
	{"> presence sensor 2: step out of its view", "presence=absent"},
	{"> panic point 'bed': press the panic point 'bed' now", "panic:bed=pressed"},
	{"> panic point 'bed': release the panic point 'bed'", "panic:bed=released"},
	{"> panic point 'toilet': press the panic point 'toilet' now", "panic:toilet=pressed"},
	{"> panic point 'toilet': release the panic point 'toilet'", "panic:toilet=released"},
	{"> staff: turn the staff key now", "staff=pressed"},
	{"> staff: turn the staff key back", "staff=released"},
}

// allYes confirms every output, each shown by the simulator as driven.
var allYes = []exchange{
	{"(simulator: in_use now shows on)\n? in_use (GPIO13): is the lamp over the door (in use) lit steadily? Answer y or n.", "y"},
	{"(simulator: warning now shows blink)\n? warning (GPIO19)", "y"},
	{"(simulator: alarm_light now shows panic)\n? alarm_light (GPIO26)", "y"},
	{"(simulator: alarm_sounder now shows panic)\n? alarm_sounder (GPIO20)", "y"},
	{"(simulator: reassurance now shows blink)\n? reassurance (GPIO21)", "y"},
}

// play answers each prompt in turn.
func (term *terminal) play(script []exchange) {
	term.t.Helper()
	for _, x := range script {
		term.expect(strings.ReplaceAll(x.prompt, "\n", "\r\n"))
		term.send(x.answer)
	}
}

// journalRecords lists the records in the journal of stateDir (roomd is
// not running: the lock is free).
func journalRecords(t *testing.T, stateDir string) (recs []controller.Record, fresh bool) {
	t.Helper()
	j, err := journal.Open(filepath.Join(stateDir, room.JournalDir), journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		require.NoError(t, err)
		recs = append(recs, e.Records...)
	}
	return recs, j.Recovered().Fresh
}

func functionTests(recs []controller.Record) []controller.Record {
	var out []controller.Record
	for _, r := range recs {
		if r.Type == controller.EventFunctionTest {
			out = append(out, r)
		}
	}
	return out
}

// TestCommission runs roomd commission on a simulated room in a
// pseudo-terminal, the tester's sim lines and answers typed in.
func TestCommission(t *testing.T) {
	bin := buildRoomd(t)
	fast := []string{"--settle", "300ms"}

	t.Run("a full pass, recorded, reported and published when roomd starts", func(t *testing.T) {
		url := mqtttest.Embedded(t)
		state := t.TempDir()
		cfg := commissionConfig(t, state, url, nil)
		term := startTerminal(t, bin, append([]string{"commission", "--config", cfg, "--by", "installer-7"}, fast...)...)
		term.expect("full function test of room room-c, by installer-7.")
		term.play(cleanInputs)
		term.play(allYes)
		term.expect("PASSED: all 12 lines work.")
		term.expect("Recorded in the room's journal as function_test (seq 2")
		require.Equal(t, 0, term.wait(), term.screen())
		assert.Contains(t, term.screen(), `(simulator outputs now: {"in_use":"off","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"})`)

		recs, _ := journalRecords(t, state)
		tests := functionTests(recs)
		require.Len(t, tests, 1)
		ft := tests[0]
		assert.Equal(t, "installer-7", ft.By)
		assert.True(t, ft.Test.Passed)
		assert.Equal(t, controller.TestFull, ft.Test.Mode)
		assert.Len(t, ft.Test.Lines, 12)

		// The report, read by a tool nobody here wrote.
		reports, err := filepath.Glob(filepath.Join(state, ReportDir, "function-test-*.json"))
		require.NoError(t, err)
		require.Len(t, reports, 1)
		out, err := exec.Command("jq", "-r", `[.room, .by, .mode, (.passed|tostring), (.lines|length|tostring), (.lines[]|select(.point=="toilet")|.line)] | join(" ")`, reports[0]).CombinedOutput()
		require.NoError(t, err, "jq: %s", out)
		assert.Equal(t, "room-c installer-7 full true 12 GPIO18\n", string(out))
		text, err := os.ReadFile(strings.TrimSuffix(reports[0], ".json") + ".txt")
		require.NoError(t, err)
		assert.Contains(t, string(text), "roomd function test (full): PASSED")

		// roomd starts again and publishes the record; info says when.
		obs := observe(t, url, "visitrooms", "room-c")
		p, logs := startProcess(t, bin, cfg)
		m := obs.next("events", isEvent("function_test"))
		var e contract.EventMessage
		require.NoError(t, json.Unmarshal(m.Payload(), &e), logs.String())
		assert.Equal(t, "installer-7", e.By)
		assert.Equal(t, "full", e.Mode)
		require.NotNil(t, e.Passed)
		assert.True(t, *e.Passed)
		require.Len(t, e.Lines, 12)
		assert.Equal(t, contract.LineMessage{Input: "panic", Point: "toilet", Result: "passed"}, e.Lines[5])
		assert.Equal(t, contract.LineMessage{Input: "presence", Sensor: 2, Result: "passed"}, e.Lines[3])
		info := obs.next("info", func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(`"last_function_test":"`)) })
		var im contract.InfoMessage
		require.NoError(t, json.Unmarshal(info.Payload(), &im))
		require.NotNil(t, im.LastFunctionTest)
		assert.Equal(t, e.At, *im.LastFunctionTest)
		assert.Equal(t, int64(90*24*3600), im.Policy.FunctionTestEveryS)
		require.NoError(t, p.Process.Signal(os.Interrupt))
		require.NoError(t, p.Wait(), logs.String())
	})

	t.Run("every wiring fault named", func(t *testing.T) {
		state := t.TempDir()
		cfg := commissionConfig(t, state, "tcp://127.0.0.1:1", func(s string) string {
			return strings.Replace(s, "door: {pin: GPIO17}", "door: {pin: GPIO17, active_low: true}", 1) // wired NC, active high
		})
		// The default settle time (1 s): the bounce's five changes 100 ms
		// apart stay within it even when timers run late on a busy machine.
		term := startTerminal(t, bin, "commission", "--config", cfg, "--by", "installer-7", "--timeout", "3s")
		term.play([]exchange{
			{"> door: open the door now", "door=open"}, // reads closed: inverted
			{"> door: close the door again", "door=closed"},
		})
		term.expect("> lock: throw the bolt now") // nothing moves: never changed
		term.play([]exchange{
			{"> presence sensor 1: walk in front of presence sensor 1 (the PIR) now", "presence=present"},
			{"> presence sensor 1: step out of its view", "presence=absent"},
			{"> presence sensor 2: walk in front of presence sensor 2 (the PIR) now", "bounce=presence:present:5:100ms"},
			{"> presence sensor 2: step out of its view", "presence=absent"},
			{"> panic point 'bed': press the panic point 'bed' now", "panic:bed=pressed"},
			{"> panic point 'bed': release the panic point 'bed'", "panic:bed=released"},
			{"> panic point 'toilet': press the panic point 'toilet' now", "fault=panic:toilet"},
			{"> staff: turn the staff key now", "staff=pressed"},
			{"> staff: turn the staff key back", "staff=released"},
			{"? in_use", "y"}, {"? warning", "y"}, {"? alarm_light", "y"},
			{"? alarm_sounder", "n"},
			{"? reassurance", "y"},
		})
		term.expect("FAILED: 5 of 12 lines: door (inverted), lock (never_changed), presence:2 (bouncing), panic:toilet (unknown), alarm_sounder (not_confirmed).")
		assert.Equal(t, 1, term.wait())
		scr := term.screen()
		assert.Contains(t, scr, "door: FAILED (inverted): reads open at rest and closed when acted on: active_low is the wrong way round")
		assert.Contains(t, scr, "lock: FAILED (never_changed): still reads unlocked after 3s")
		assert.Contains(t, scr, "presence sensor 2: FAILED (bouncing)")
		assert.Contains(t, scr, "panic point 'toilet': FAILED (unknown)")
		assert.Contains(t, scr, "roomd: commission: room room-c failed its full function test")

		recs, _ := journalRecords(t, state)
		tests := functionTests(recs)
		require.Len(t, tests, 1, "a failed test is recorded too")
		assert.False(t, tests[0].Test.Passed)
		reports, err := filepath.Glob(filepath.Join(state, ReportDir, "function-test-*.json"))
		require.NoError(t, err)
		require.Len(t, reports, 1)
		out, err := exec.Command("jq", "-r", `[.lines[]|select(.result=="failed")|.fault]|join(",")`, reports[0]).CombinedOutput()
		require.NoError(t, err, "jq: %s", out)
		assert.Equal(t, "inverted,never_changed,bouncing,unknown,not_confirmed\n", string(out))
	})

	t.Run("Ctrl-C leaves every output off and records nothing", func(t *testing.T) {
		state := t.TempDir()
		cfg := commissionConfig(t, state, "tcp://127.0.0.1:1", nil)
		term := startTerminal(t, bin, append([]string{"commission", "--config", cfg, "--by", "installer-7"}, fast...)...)
		term.play(cleanInputs)
		term.play(allYes[:2])
		term.expect("(simulator: alarm_light now shows panic)")
		term.expect("? alarm_light")
		_, err := term.tty.Write([]byte{3}) // Ctrl-C: the terminal sends SIGINT
		require.NoError(t, err)
		term.expect("roomd: commission: room room-c: interrupted: every output is off and nothing was recorded")
		assert.NotEqual(t, 0, term.wait())
		assert.Contains(t, term.screen(), `(simulator outputs now: {"in_use":"off","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"})`)
		recs, fresh := journalRecords(t, state)
		assert.Empty(t, recs, "nothing recorded")
		assert.True(t, fresh, "the new room's journal reads as new, not as damaged")
		reports, _ := filepath.Glob(filepath.Join(state, ReportDir, "*"))
		assert.Empty(t, reports)
	})

	t.Run("an unwritable report is an error, and nothing is recorded", func(t *testing.T) {
		state := t.TempDir()
		cfg := commissionConfig(t, state, "tcp://127.0.0.1:1", nil)
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		term := startTerminal(t, bin, append([]string{"commission", "--config", cfg, "--by", "installer-7", "--report", filepath.Join(file, "reports")}, fast...)...)
		term.play(cleanInputs)
		term.play(allYes)
		term.expect("function test of room room-c not recorded: write the function test report")
		assert.Equal(t, 1, term.wait())
		assert.NotContains(t, term.screen(), "PASSED")
		recs, _ := journalRecords(t, state)
		assert.Empty(t, functionTests(recs))
	})

	t.Run("refused while roomd runs, and during a visit", func(t *testing.T) {
		url := mqtttest.Embedded(t)
		state := t.TempDir()
		cfg := commissionConfig(t, state, url, nil)
		obs := observe(t, url, "visitrooms", "room-c")
		p, logs := startProcess(t, bin, cfg)
		obs.next("events", isEvent("controller_started"))

		out, code := runCommand(t, bin, "commission", "--config", cfg, "--by", "installer-7")
		assert.Equal(t, 1, code)
		assert.Contains(t, out, "roomd is running: it holds the room's journal in "+state)
		assert.Contains(t, out, "systemctl stop roomd && roomd commission --config "+cfg+" --by installer-7 && systemctl start roomd")
		assert.NotContains(t, out, "> door")

		rep := obs.command("visitrooms", "room-c", contract.CommandMessage{RequestID: "v", Action: "start_visit", VisitID: "v-1", Duration: "1h"})
		require.True(t, rep.OK, "%+v", rep.Error)
		require.NoError(t, p.Process.Signal(os.Interrupt))
		require.NoError(t, p.Wait(), logs.String())
		before, _ := journalRecords(t, state)

		out, code = runCommand(t, bin, "commission", "--config", cfg, "--by", "installer-7")
		assert.Equal(t, 1, code)
		assert.Contains(t, out, "room room-c: a visit is running (phase in_visit): the room must be empty for a function test")
		assert.NotContains(t, out, "> door")
		after, _ := journalRecords(t, state)
		assert.Equal(t, before, after, "nothing recorded")
	})

	t.Run("a config error stops it at once and names the error", func(t *testing.T) {
		state := t.TempDir()
		cfg := commissionConfig(t, state, "tcp://127.0.0.1:1", func(s string) string {
			return strings.Replace(s, "door: {pin: GPIO17}", "door: {pin: GPIO17, debounce: 50xs}", 1)
		})
		out, code := runCommand(t, bin, "commission", "--config", cfg, "--by", "installer-7")
		assert.Equal(t, 1, code)
		assert.Contains(t, out, `device.inputs.door.debounce: "50xs" is not a duration`)
		assert.NotContains(t, out, "> door")
		assert.NoDirExists(t, filepath.Join(state, room.JournalDir), "nothing opened")

		out, code = runCommand(t, bin, "commission", "--config", cfg)
		assert.Equal(t, 2, code, "usage")
		assert.Contains(t, out, "--by ID is required")
		out, code = runCommand(t, bin, "commission", "--config", cfg, "--by", "on_site")
		assert.Equal(t, 2, code, "usage")
		assert.Contains(t, out, `--by "on_site" is not an operator id`)
	})
}

// runCommand runs bin without a terminal (stdin empty) and returns its
// output and exit code.
func runCommand(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, "%s", out)
	return string(out), 0
}
