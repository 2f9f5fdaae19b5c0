package sim

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
)

func TestParseControl(t *testing.T) {
	ok := []struct {
		in   string
		want Control
	}{
		{`{"door":"open"}`, Control{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelActive}}},
		{`{"lock":"locked"}`, Control{Levels: map[controller.Input]controller.Level{controller.InputLock: controller.LevelActive}}},
		{`{"lock":"unlocked","door":"closed"}`, Control{Levels: map[controller.Input]controller.Level{
			controller.InputLock: controller.LevelInactive, controller.InputDoor: controller.LevelInactive}}},
		{`{"presence":true}`, Control{Levels: map[controller.Input]controller.Level{controller.InputPresence: controller.LevelActive}}},
		{`{"presence":"absent"}`, Control{Levels: map[controller.Input]controller.Level{controller.InputPresence: controller.LevelInactive}}},
		{`{"panic":true}`, Control{Levels: map[controller.Input]controller.Level{controller.InputPanic: controller.LevelActive}}},
		{`{"staff":false}`, Control{Levels: map[controller.Input]controller.Level{controller.InputStaff: controller.LevelInactive}}},
		{`{"door":"unknown"}`, Control{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelUnknown}}},
		{`{"fault":"door"}`, Control{Fault: controller.InputDoor}},
		{`{"heal":"panic"}`, Control{Heal: controller.InputPanic}},
		{`{"points":{"bed":"pressed","toilet":false}}`, Control{Points: map[string]controller.Level{"bed": controller.LevelActive, "toilet": controller.LevelInactive}}},
		{`{"points":{"pull_cord":"unknown"}}`, Control{Points: map[string]controller.Level{"pull_cord": controller.LevelUnknown}}},
		{`{"fault":"panic:toilet"}`, Control{Fault: controller.InputPanic, FaultPoint: "toilet"}},
		{`{"heal":"panic:toilet","stick":"alarm_sounder"}`, Control{Heal: controller.InputPanic, HealPoint: "toilet", Stick: controller.OutputAlarmSounder}},
		{`{"unstick":"alarm_light"}`, Control{Unstick: controller.OutputAlarmLight}},
		{` {"bounce":{"input":"door","to":"open","count":5}} `, Control{Bounce: &BounceControl{
			Input: controller.InputDoor, To: controller.LevelActive, Count: 5, Every: DefaultBounceEvery}}},
		{`{"bounce":{"input":"panic","to":true,"count":3,"every_ms":2}}`, Control{Bounce: &BounceControl{
			Input: controller.InputPanic, To: controller.LevelActive, Count: 3, Every: 2 * time.Millisecond}}},
	}
	for _, c := range ok {
		got, err := ParseControl([]byte(c.in))
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		back, err := ParseControl(got.Encode())
		require.NoError(t, err, "re-encoded %s", got.Encode())
		assert.Equal(t, got, back, "round trip of %s", c.in)
	}

	bad := []struct{ in, want string }{
		{``, "EOF"},
		{`{}`, "empty"},
		{`null`, "empty"},
		{`[]`, "cannot unmarshal"},
		{`{"door":"ajar"}`, `unknown level "ajar"`},
		{`{"door":true}`, "not a boolean"},
		{`{"door":null}`, "null level"},
		{`{"door":1}`, `want "open", "closed" or "unknown", got 1`},
		{`{"window":"open"}`, `unknown field "window"`},
		{`{"door":"open"} {"door":"closed"}`, "data after"},
		{`{"door":"open"}x`, "data after"},
		{`{"fault":"roof"}`, `fault: unknown input "roof"`},
		{`{"heal":""}`, `heal: unknown input ""`},
		{`{"fault":"door:bed"}`, `only a panic point may follow`},
		{`{"fault":"panic:Bed"}`, `only a panic point may follow`},
		{`{"points":{}}`, `points: empty`},
		{`{"points":{"Bed":true}}`, `"Bed" is not a point name`},
		{`{"points":{"bed":"open"}}`, `points: bed: input panic: unknown level "open"`},
		{`{"stick":"alarm"}`, `stick: unknown output "alarm"`},
		{`{"unstick":"door"}`, `unstick: unknown output "door"`},
		{`{"bounce":{"input":"door","to":"open","count":0}}`, "count 0 outside"},
		{`{"bounce":{"input":"door","to":"open","count":101}}`, "count 101 outside"},
		{`{"bounce":{"input":"door","to":"unknown","count":3}}`, "known level"},
		{`{"bounce":{"input":"door","count":3}}`, `missing "to"`},
		{`{"bounce":{"input":"door","to":"open","count":3,"every_ms":-1}}`, "every_ms -1 outside"},
		{`{"bounce":{"input":"door","to":"open","count":3,"every_ms":60000}}`, "every_ms 60000 outside"},
		{`{"bounce":{"input":"door","to":"open","count":3,"extra":1}}`, `unknown field "extra"`},
		{`{"door":"` + strings.Repeat("x", MaxControlSize) + `"}`, "at most 1024"},
	}
	for _, c := range bad {
		_, err := ParseControl([]byte(c.in))
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), c.want, c.in)
		assert.True(t, strings.HasPrefix(err.Error(), "sim control: "), err.Error())
	}
}

func TestEncodeOutputs(t *testing.T) {
	assert.Equal(t, `{"in_use":"on","warning":"blink","alarm_light":"panic","alarm_sounder":"off","reassurance":"blink"}`,
		string(EncodeOutputs(map[controller.Output]controller.Mode{
			controller.OutputInUse: controller.ModeOn, controller.OutputWarning: controller.ModeBlink,
			controller.OutputAlarmLight: controller.ModePanic, controller.OutputReassurance: controller.ModeBlink,
		})))
}

func TestApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, out := roomRun(t, DefaultSpec())
		apply := func(s string) {
			t.Helper()
			c, err := ParseControl([]byte(s))
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
		c, err := ParseControl([]byte(`{"points":{"toilet":"pressed"}}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		point("toilet", controller.LevelActive)
		c, err = ParseControl([]byte(`{"fault":"panic:bed"}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		require.NoError(t, r3.LoseEdge(controller.InputDoor, controller.LevelInactive)) // nothing changes: a re-read finds the fault
		point("bed", controller.LevelUnknown)
		c, err = ParseControl([]byte(`{"heal":"panic:bed","points":{"toilet":false}}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		got := map[string]controller.Level{}
		for range 2 {
			rd := next(t, out3)
			got[rd.Point] = rd.Level
		}
		assert.Equal(t, map[string]controller.Level{"bed": controller.LevelInactive, "toilet": controller.LevelInactive}, got)
		c, err = ParseControl([]byte(`{"points":{"pillow":true}}`))
		require.NoError(t, err)
		require.ErrorContains(t, r3.Apply(c), `no panic point "pillow" (have bed, toilet)`)
		c, err = ParseControl([]byte(`{"stick":"alarm_sounder"}`))
		require.NoError(t, err)
		require.NoError(t, r3.Apply(c))
		require.NoError(t, r3.Set(controller.OutputAlarmSounder, controller.ModeOn, 0))
		verdict = next(t, out3)
		require.Equal(t, controller.OutputAlarmSounder, verdict.Output)
		require.False(t, verdict.Follows, "a stuck contact does not follow")
		c, err = ParseControl([]byte(`{"stick":"alarm_light"}`))
		require.NoError(t, err)
		require.ErrorContains(t, r3.Apply(c), "output alarm_light has no feedback line")

		spec = DefaultSpec()
		delete(spec.Inputs, controller.InputStaff)
		r2, err := New(spec, nil)
		require.NoError(t, err)
		defer r2.Close()
		c, err = ParseControl([]byte(`{"staff":true}`))
		require.NoError(t, err)
		require.ErrorContains(t, r2.Apply(c), "staff is not wired")
	})
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{`{"door":"open"}`, `{"presence":true,"fault":"lock"}`, `{"heal":"door"}`,
		`{"points":{"bed":true},"fault":"panic:toilet","stick":"alarm_light"}`,
		`{"bounce":{"input":"door","to":"open","count":5,"every_ms":3}}`, `{}`, `null`, `{"door":"open"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := ParseControl(payload)
		if len(payload) > MaxControlSize {
			require.Error(t, err)
		}
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "sim control: "), err.Error())
			return
		}
		require.True(t, c.Levels != nil || c.Points != nil || c.Fault != 0 || c.Heal != 0 || c.Stick != 0 || c.Unstick != 0 || c.Bounce != nil,
			"accepted an empty control")
		for in, l := range c.Levels {
			require.Contains(t, controller.Inputs, in)
			require.LessOrEqual(t, l, controller.LevelActive)
		}
		if b := c.Bounce; b != nil {
			require.True(t, b.Count >= 1 && b.Count <= MaxBounceCount && b.Every > 0 && b.Every <= MaxBounceEvery, "%+v", b)
		}
		enc := c.Encode()
		back, err := ParseControl(enc)
		require.NoError(t, err, "re-encoded %s", enc)
		require.Equal(t, c, back)
		require.False(t, bytes.Contains(enc, []byte("input(")))
	})
}

func TestParseAssignments(t *testing.T) {
	for _, c := range []struct {
		fields []string
		want   Control
	}{
		{[]string{"door=open"}, Control{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelActive}}},
		{[]string{"lock=unlocked", "presence=true", "staff=off"}, Control{Levels: map[controller.Input]controller.Level{
			controller.InputLock: controller.LevelInactive, controller.InputPresence: controller.LevelActive, controller.InputStaff: controller.LevelInactive}}},
		{[]string{"panic=pressed"}, Control{Levels: map[controller.Input]controller.Level{controller.InputPanic: controller.LevelActive}}},
		{[]string{"panic:toilet=pressed", "panic:bed=false"}, Control{Points: map[string]controller.Level{"toilet": controller.LevelActive, "bed": controller.LevelInactive}}},
		{[]string{"fault=panic:bed"}, Control{Fault: controller.InputPanic, FaultPoint: "bed"}},
		{[]string{"heal=door", "stick=alarm_sounder"}, Control{Heal: controller.InputDoor, Stick: controller.OutputAlarmSounder}},
		{[]string{"bounce=door:open:5:100ms"}, Control{Bounce: &BounceControl{Input: controller.InputDoor, To: controller.LevelActive, Count: 5, Every: 100 * time.Millisecond}}},
		{[]string{"bounce=staff:true:3"}, Control{Bounce: &BounceControl{Input: controller.InputStaff, To: controller.LevelActive, Count: 3, Every: DefaultBounceEvery}}},
		{[]string{`{"door":"closed"}`}, Control{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelInactive}}},
	} {
		got, err := ParseAssignments(c.fields)
		require.NoError(t, err, "%q", c.fields)
		assert.Equal(t, c.want, got, "%q", c.fields)
	}
	for _, c := range []struct {
		fields []string
		err    string
	}{
		{nil, "want KEY=VALUE"},
		{[]string{"door"}, `"door" is not KEY=VALUE`},
		{[]string{"door=ajar"}, `unknown level "ajar"`},
		{[]string{"door=true"}, "not a boolean"},
		{[]string{"window=open"}, `unknown key "window"`},
		{[]string{"door=open", "door=closed"}, "given twice"},
		{[]string{"panic:a=true", "panic:a=false"}, "given twice"},
		{[]string{"door:x=open"}, "only a panic point"},
		{[]string{"panic:Bed=true"}, "not a point name"},
		{[]string{"bounce=door:open"}, "INPUT:TO:COUNT"},
		{[]string{"bounce=door:open:5:fast"}, "not a duration"},
		{[]string{"fault=window"}, "unknown input"},
	} {
		_, err := ParseAssignments(c.fields)
		require.ErrorContains(t, err, c.err, "%q", c.fields)
	}
}
