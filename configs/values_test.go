package configs

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

// On a 32-bit Pi an int holds 32 bits: without range checks 4294967297
// entries became 1 and line 4294967313 became line 17. TestOn32BitArm runs
// this test as an armv6 program.
func TestLargeIntegersAreRefused(t *testing.T) {
	for _, tc := range []struct {
		old, new string
		want     string
	}{
		{"tls://broker.example:8883\n", "tls://broker.example:8883\n  outbox: {max_entries: 4294967297}\n",
			"base.yaml:18: mqtt.outbox.max_entries: 4294967297 is too large (at most 2147483647)"},
		{"tls://broker.example:8883\n", "tls://broker.example:8883\n  outbox: {max_entries: 99999999999999999999}\n",
			"base.yaml:18: mqtt.outbox.max_entries: 99999999999999999999 is too large (at most 2147483647)"},
		{"tls://broker.example:8883\n", "tls://broker.example:8883\n  outbox: {max_entries: -4294967295}\n",
			"base.yaml:18: mqtt.outbox.max_entries: must be at least 1, got -4294967295"},
		{"{chip: gpiochip0, line: 27}", "{chip: gpiochip0, line: 4294967313}",
			"base.yaml:8: device.inputs.lock.line: must be between 0 and 1023, got 4294967313"},
		{"{chip: gpiochip0, line: 27}", "{chip: gpiochip0, line: -4294967279}",
			"base.yaml:8: device.inputs.lock.line: must be between 0 and 1023, got -4294967279"},
		{"{chip: gpiochip0, line: 27}", "{chip: gpiochip0, line: 0x100000011}",
			"base.yaml:8: device.inputs.lock.line: must be between 0 and 1023, got 0x100000011"},
		{"backend: gpio\n", "backend: gpio\n  flap: {max_changes: 4294967298, window: 10s}\n",
			"base.yaml:6: device.flap.max_changes: 4294967298 is too large (at most 2147483647)"},
	} {
		_, err := Parse([]byte(variant(t, tc.old, tc.new)), "base.yaml")
		got := problems(t, err)
		assert.Equal(t, []string{tc.want}, got, "%s", tc.new)
	}

	// The largest value that fits everywhere is taken as it is.
	c, err := Parse([]byte(variant(t, "backend: gpio\n", "backend: gpio\n  flap: {max_changes: 2147483647, window: 10s}\n")), "base.yaml")
	require.NoError(t, err)
	assert.Equal(t, 2147483647, c.Device.Flap.MaxChanges)
	c, err = Parse([]byte(variant(t, "{chip: gpiochip0, line: 27}", "{chip: gpiochip0, line: 1023}")), "base.yaml")
	require.NoError(t, err)
	assert.Equal(t, 1023, c.Device.Inputs.Lock.Line)
}

// TestOn32BitArm runs this package's tests of integers and files as the
// armv6 program the Pi Zero runs (GOARCH=arm GOARM=6), under qemu-arm.
// (GOARCH=386 would be the cheaper 32-bit check, but this machine's kernel
// runs no 32-bit x86 programs.)
func TestOn32BitArm(t *testing.T) {
	if strconv.IntSize == 32 {
		t.Skip("already 32-bit: the tests themselves run here")
	}
	testtier.Slow(t, "builds the package's tests for arm and runs them under qemu-arm")
	qemu := testtier.Tool(t, "qemu-arm", "qemu-user")
	cmd := exec.Command("go", "test", "-count=1", "-exec", qemu, "-v",
		"-run", "TestLargeIntegersAreRefused|TestErrorsNameTheField|TestLoad|TestSecretFiles|TestPolicyProblems|TestYAMLRoundTrips", ".")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=6", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "GOARCH=arm go test:\n%s", out)
	assert.Contains(t, string(out), "--- PASS: TestLargeIntegersAreRefused", "the test ran on arm")
}

func TestPolicyProblemsAllReported(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		want         []string
	}{
		{"a bad value beside wrong ones", `
  preset: italy
  extension: sometimes
  escalate_after: 0s
  warnings: [10m, 3h]
  lock_grace: -1s`, []string{
			`base.yaml:4: policy.extension: "sometimes" is not one of up_to_max, forbidden`,
			"base.yaml:5: policy.escalate_after: must be between 1s and 24h, got 0s: escalation is a step of its own",
			"base.yaml:6: policy.warnings[1]: 3h0m0s is not shorter than max_duration 2h0m0s",
			"base.yaml:7: policy.lock_grace: must be between 0s and 1h, got -1s",
		}},
		// What depends on an unreadable value is not judged against the
		// default that stands in for it.
		{"unreadable maximum", `
  max_duration: soon
  warnings: [3h]
  repeat_every: -1m`, []string{
			`base.yaml:3: policy.max_duration: "soon" is not a duration (want e.g. 30ms, 5s, 10m, 2h)`,
			"base.yaml:5: policy.repeat_every: must be between 1s and 1h, got -1m0s: an unacknowledged critical alert is announced again this often: below a second the loop does nothing else",
		}},
		{"unreadable end_on_vacancy", `
  preset: italy
  end_on_vacancy: maybe
  vacancy_hold: 0s
  vacate_timeout: 0s`, []string{
			`base.yaml:4: policy.end_on_vacancy: "maybe" is not a boolean (want true or false)`,
			"base.yaml:6: policy.vacate_timeout: must be between 1s and 24h, got 0s: a timer of the loop",
		}},
		{"unknown preset", `
  preset: narnia
  warnings: [10m, 10m]`, []string{
			`base.yaml:3: policy.preset: unknown preset "narnia" (known: canada, denmark, estonia, italy, punjab, spain)`,
			"base.yaml:4: policy.warnings[1]: 10m0s is listed twice",
		}},
		{"bad list item", `
  preset: italy
  warnings: [10m, later]
  escalate_after: -2m`, []string{
			`base.yaml:4: policy.warnings[1]: "later" is not a duration (want e.g. 30ms, 5s, 10m, 2h)`,
			"base.yaml:5: policy.escalate_after: must be between 1s and 24h, got -2m0s: escalation is a step of its own",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := variant(t, "policy:\n  preset: italy\n", "policy:"+tc.policy+"\n")
			_, err := Parse([]byte(doc), "base.yaml")
			assert.Equal(t, tc.want, problems(t, err), "config:\n%s", doc)
		})
	}
}

func TestJournalWarnings(t *testing.T) {
	c := Default()
	assert.Empty(t, c.JournalWarnings(), "the default bound holds the default retention")
	c.Journal.MaxBytes = 256 * KiB
	c.Journal.Retention = 24 * time.Hour
	w := c.JournalWarnings()
	require.Len(t, w, 2)
	assert.Contains(t, w[0], "less than journal.retention 24h0m0s")
	assert.Contains(t, w[1], "command flood")
	assert.Contains(t, w[1], "window_s")
}

func TestEveryDurationLimitIsNamedWhenRefused(t *testing.T) {
	for _, l := range DurationLimits {
		assert.Less(t, l.Min, l.Max, l.Key)
		below := l.Min - time.Nanosecond
		if l.Off && below == 0 {
			below = -time.Nanosecond
		}
		assert.Contains(t, l.check(below), "must be between", "%s below its floor", l.Key)
		assert.Contains(t, l.check(l.Max+time.Nanosecond), "must be between", "%s above its ceiling", l.Key)
		assert.Empty(t, l.check(l.Min), l.Key)
		assert.Empty(t, l.check(l.Max), l.Key)
	}
	_, err := Parse([]byte("room: room-1\npolicy: {preset: italy, repeat_every: 1ns}\ndevice: {backend: sim}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n"), "x.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x.yaml:2: policy.repeat_every: must be between 1s and 1h, got 1ns")
}

// TestCommandsWarnings: a config without commands.operators loads (a room
// upgraded from before the section keeps running) but check-config says
// that no guard can act on the room until operators are named.
func TestCommandsWarnings(t *testing.T) {
	c := Default()
	w := c.Warnings()
	require.Len(t, w, 1, "%v", w)
	assert.Contains(t, w[0], "commands.operators names no operator")
	assert.Contains(t, w[0], "not_authorized")

	c.Commands.Operators = []string{"guard-*"}
	assert.Empty(t, c.Warnings())

	c.Commands.Booking = false
	w = c.Warnings()
	require.Len(t, w, 1, "%v", w)
	assert.Contains(t, w[0], "commands.booking is false")
}
