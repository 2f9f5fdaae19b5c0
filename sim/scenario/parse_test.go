package scenario_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/sim/scenario"
)

func TestParseErrorsNameLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top key", "name: x\npolicy: italy\nsteps: [{at: 0s, note: hi}]\nexpct: []\n",
			[]string{"x.yaml:4:", `unknown key "expct"`}},
		{"bad duration", "name: x\npolicy: italy\nsteps:\n  - at: 30xm\n    note: hi\n",
			[]string{"x.yaml:4:", "steps[0].at", `"30xm" is not a duration`}},
		{"unknown step key", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    sett: {door: open}\n",
			[]string{"x.yaml:5:", `unknown key "sett"`}},
		{"two actions", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    set: {door: open}\n    fault: door\n",
			[]string{"one action per step"}},
		{"no trigger", "name: x\npolicy: italy\nsteps:\n  - set: {door: open}\n",
			[]string{"say when"}},
		{"bad level", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    set: {door: ajar}\n",
			[]string{"steps[0].set", `"ajar"`}},
		{"unknown input", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    fault: window\n",
			[]string{"steps[0].fault", `unknown input "window"`}},
		{"unknown preset", "name: x\npolicy: narnia\nsteps: [{at: 0s, note: hi}]\n",
			[]string{"x.yaml:2:", `unknown preset "narnia"`}},
		{"bad inline policy", "name: x\npolicy: {max_duration: 2h, lock_grace: soon}\nsteps: [{at: 0s, note: hi}]\n",
			[]string{"x.yaml:2:", "lock_grace"}},
		{"unknown action", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    command: {action: open_door}\n",
			[]string{"x.yaml:5:", `unknown action "open_door"`}},
		{"field of another action", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    command: {action: end_visit, by: 5m}\n",
			[]string{`end_visit does not take "by"`}},
		{"unknown event", "name: x\npolicy: italy\nsteps: [{at: 0s, note: hi}]\nexpect:\n  - {event: door_slammed}\n",
			[]string{"x.yaml:5:", `unknown event "door_slammed"`}},
		{"unknown alert kind", "name: x\npolicy: italy\nsteps: [{at: 0s, note: hi}]\nforbid:\n  - {alert_raised: fire}\n",
			[]string{"forbid[0].alert_raised", `unknown alert kind "fire"`}},
		{"bad want", "name: x\npolicy: italy\nsteps:\n  - at: 1s\n    command: {action: end_visit, want: nope}\n",
			[]string{`"nope" is not ok or a refusal code`}},
		{"missing required", "description: x\n", []string{`"name" is required`, `"policy" is required`, `"steps" is required`}},
		{"timeout too early", "name: x\npolicy: italy\nsteps: [{at: 2h, note: hi}]\ntimeout: 1h\n",
			[]string{"timeout: 1h0m0s is not after"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scenario.Parse([]byte(tc.yaml), "x.yaml")
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := scenario.Parse([]byte("name: x\npolicy: italy\nsteps:\n  - at: 1q\n    note: a\n  - at: 2s\n    fault: window\n"), "x.yaml")
	require.Error(t, err)
	assert.ErrorContains(t, err, "x.yaml:4:")
	assert.ErrorContains(t, err, "x.yaml:7:")
}

func TestParseFullForm(t *testing.T) {
	sc, err := scenario.Parse([]byte(`
name: full
room: room-7
policy: {preset: italy, lock_grace: 20s}
settle: 30s
steps:
  - at: 0s
    command: {action: start_visit, visit_id: v1, duration: 1h}
  - after: {alert_raised: door_locked}
    wait: 5s
    command: {action: ack_alert, alert: door_locked}
  - at: 10m
    bounce: {input: door, to: open, count: 3}
expect:
  - {at: 30m10s, within: 3s, alert_raised: door_locked, severity: critical}
  - {event: door_opened, count: 1}
forbid: [{event: visit_warning, warning: 2}]
`), "full.yaml")
	require.NoError(t, err)
	assert.Equal(t, "room-7", sc.Room)
	assert.Equal(t, "italy", sc.Policy.Name)
	assert.Equal(t, 20*time.Second, sc.Policy.LockGrace)
	assert.Equal(t, 30*time.Second, sc.Settle)
	require.Len(t, sc.Steps, 3)
	assert.Equal(t, controller.ActionStartVisit, sc.Steps[0].Command.Command.Action)
	assert.Equal(t, time.Hour, sc.Steps[0].Command.Command.Duration)
	require.NotNil(t, sc.Steps[1].After)
	assert.Equal(t, controller.AlertDoorLocked, sc.Steps[1].After.Alert)
	assert.Equal(t, controller.AlertDoorLocked, sc.Steps[1].Command.AlertKind)
	assert.Equal(t, 5*time.Second, sc.Steps[1].Wait)
	require.NotNil(t, sc.Steps[2].Control.Bounce)
	assert.Equal(t, 3, sc.Steps[2].Control.Bounce.Count)
	require.Len(t, sc.Expect, 2)
	assert.Equal(t, 3*time.Second, sc.Expect[0].Within)
	assert.Equal(t, 1, sc.Expect[1].Count)
	require.Len(t, sc.Forbid, 1)
	assert.Equal(t, 2, sc.Forbid[0].Warning)
	assert.Equal(t, 30*time.Minute+10*time.Second+3*time.Second+time.Hour, sc.Timeout)
}

// A scenario whose expectations are wrong must fail, naming each problem.
func TestUnmetExpectationsFail(t *testing.T) {
	sc, err := scenario.Parse([]byte(`
name: wrong
policy: italy
steps:
  - at: 0s
    command: {action: start_visit, visit_id: v1, duration: 2h}
  - at: 1m
    set: {lock: locked}
  - at: 2m
    command: {action: extend_visit, by: 1h}
  - after: {alert_raised: panic}
    note: never
expect:
  - {at: 1m30s, alert_raised: door_locked}
  - {alert_raised: panic}
  - {event: lock_engaged, count: 2}
forbid:
  - {event: lock_engaged}
timeout: 3h
`), "wrong.yaml")
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		res, err := scenario.Run(context.Background(), sc, scenario.Options{})
		require.NoError(t, err)
		require.False(t, res.OK())
		report := res.Report()
		for _, want := range []string{
			"expect[0] (wrong.yaml:14) {alert_raised: door_locked} at 0:01:30 ±1s never came (run ended at 3:00:00); matching events came at 0:01:10",
			"forbidden {event: lock_engaged} came at 0:01:00",
			"steps[2] (wrong.yaml:9): extend_visit refused: exceeds_maximum",
			"steps[3] (wrong.yaml:11) did not run: {alert_raised: panic} never came",
			"expect[1] (wrong.yaml:15) {alert_raised: panic} never came",
			"expect[2] (wrong.yaml:16) {event: lock_engaged}: want exactly 2, got 1",
			"transcript:",
		} {
			assert.Contains(t, report, want)
		}
		assert.Equal(t, 3*time.Hour, res.End)
	})
}

// An after step waits for its event and then for its own wait.
func TestAfterStepRunsOnTheEvent(t *testing.T) {
	sc, err := scenario.Parse([]byte(`
name: after
policy: italy
steps:
  - at: 0s
    command: {action: start_visit, visit_id: v1, duration: 2h}
  - at: 5m
    set: {lock: locked}
  - after: {alert_raised: door_locked}
    wait: 20s
    set: {lock: unlocked}
expect:
  - {at: 5m10s, alert_raised: door_locked}
  - {at: 5m30s, alert_cleared: door_locked}
`), "after.yaml")
	require.NoError(t, err)
	synctest.Test(t, func(t *testing.T) {
		res, err := scenario.Run(context.Background(), sc, scenario.Options{})
		require.NoError(t, err)
		require.True(t, res.OK(), res.Report())
	})
}
