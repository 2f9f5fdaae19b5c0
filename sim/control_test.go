package sim

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

func TestApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, out := roomRun(t, DefaultSpec())
		apply := func(s string) {
			t.Helper()
			c, err := contract.DecodeSimControl([]byte(s))
			require.NoError(t, err)
			require.NoError(t, r.Apply(c))
		}
		expect := func(in controller.Input, l controller.Level) {
			t.Helper()
			rd := next(t, out)
			require.Equal(t, in, rd.Input)
			require.Equal(t, l, rd.Level, "%+v", rd)
		}
		collect := func(n int) map[controller.Input]controller.Level {
			got := map[controller.Input]controller.Level{}
			for range n {
				rd := next(t, out)
				got[rd.Input] = rd.Level
			}
			return got
		}
		apply(`{"door":"open","lock":"locked"}`) // both settle at the same instant
		assert.Equal(t, map[controller.Input]controller.Level{
			controller.InputDoor: controller.LevelActive, controller.InputLock: controller.LevelActive}, collect(2))
		apply(`{"fault":"panic"}`)
		expect(controller.InputPanic, controller.LevelUnknown)
		apply(`{"heal":"panic","staff":true}`)
		assert.Equal(t, map[controller.Input]controller.Level{
			controller.InputPanic: controller.LevelInactive, controller.InputStaff: controller.LevelActive}, collect(2))
		apply(`{"bounce":{"input":"door","to":"closed","count":7,"every_ms":5}}`)
		expect(controller.InputDoor, controller.LevelInactive)
		select {
		case rd := <-out:
			t.Fatalf("bounce leaked an intermediate level: %+v", rd)
		case <-time.After(time.Minute):
		}

		// Named panic points and a supervised output.
		spec := DefaultSpec()
		spec.Inputs[controller.InputPanic] = []device.LineSpec{{Name: "bed"}, {Name: "toilet"}}
		spec.Feedback = map[controller.Output]device.LineSpec{controller.OutputAlarmSounder: {}}
		r3, out3 := roomRun(t, spec)
		point := func(name string, l controller.Level) {
			t.Helper()
			rd := next(t, out3)
			require.Equal(t, controller.InputPanic, rd.Input, "%+v", rd)
			require.Equal(t, name, rd.Point, "%+v", rd)
			require.Equal(t, l, rd.Level, "%+v", rd)
		}
		verdict := next(t, out3) // the first verdict of the supervised sounder
		require.Equal(t, controller.OutputAlarmSounder, verdict.Output)
		require.True(t, verdict.Follows)
		c, err := contract.DecodeSimControl([]byte(`{"points":{"toilet":"pressed"}}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		point("toilet", controller.LevelActive)
		c, err = contract.DecodeSimControl([]byte(`{"fault":"panic:bed"}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		require.NoError(t, r3.LoseEdge(controller.InputDoor, controller.LevelInactive)) // nothing changes: a re-read finds the fault
		point("bed", controller.LevelUnknown)
		c, err = contract.DecodeSimControl([]byte(`{"heal":"panic:bed","points":{"toilet":false}}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		got := map[string]controller.Level{}
		for range 2 {
			rd := next(t, out3)
			got[rd.Point] = rd.Level
		}
		assert.Equal(t, map[string]controller.Level{"bed": controller.LevelInactive, "toilet": controller.LevelInactive}, got)
		c, err = contract.DecodeSimControl([]byte(`{"points":{"pillow":true}}`))
		require.NoError(t, err)
		require.ErrorContains(t, r3.Apply(c), `no panic point "pillow" (have bed, toilet)`)
		c, err = contract.DecodeSimControl([]byte(`{"stick":"alarm_sounder"}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		require.NoError(t, r3.Set(controller.OutputAlarmSounder, controller.ModeOn, 0))
		verdict = next(t, out3)
		require.Equal(t, controller.OutputAlarmSounder, verdict.Output)
		require.False(t, verdict.Follows, "a stuck contact does not follow")
		c, err = contract.DecodeSimControl([]byte(`{"stick":"alarm_light"}`))
		require.NoError(t, err)
		require.ErrorContains(t, r3.Apply(c), "output alarm_light has no feedback line")

		spec = DefaultSpec()
		delete(spec.Inputs, controller.InputStaff)
		r2, err := New(spec, nil)
		require.NoError(t, err)
		defer r2.Close()
		c, err = contract.DecodeSimControl([]byte(`{"staff":true}`))
		require.NoError(t, err)
		require.ErrorContains(t, r2.Apply(c), "staff is not wired")
	})
}
