package contract

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
)

func TestDecodeSimControl(t *testing.T) {
	ok := []struct {
		in   string
		want SimControl
	}{
		{`{"door":"open"}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelActive}}},
		{`{"lock":"locked"}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputLock: controller.LevelActive}}},
		{`{"lock":"unlocked","door":"closed"}`, SimControl{Levels: map[controller.Input]controller.Level{
			controller.InputLock: controller.LevelInactive, controller.InputDoor: controller.LevelInactive}}},
		{`{"presence":true}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputPresence: controller.LevelActive}}},
		{`{"presence":"absent"}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputPresence: controller.LevelInactive}}},
		{`{"panic":true}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputPanic: controller.LevelActive}}},
		{`{"staff":false}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputStaff: controller.LevelInactive}}},
		{`{"door":"unknown"}`, SimControl{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelUnknown}}},
		{`{"fault":"door"}`, SimControl{Fault: controller.InputDoor}},
		{`{"heal":"panic"}`, SimControl{Heal: controller.InputPanic}},
		{`{"points":{"bed":"pressed","toilet":false}}`, SimControl{Points: map[string]controller.Level{"bed": controller.LevelActive, "toilet": controller.LevelInactive}}},
		{`{"points":{"pull_cord":"unknown"}}`, SimControl{Points: map[string]controller.Level{"pull_cord": controller.LevelUnknown}}},
		{`{"fault":"panic:toilet"}`, SimControl{Fault: controller.InputPanic, FaultPoint: "toilet"}},
		{`{"heal":"panic:toilet","stick":"alarm_sounder"}`, SimControl{Heal: controller.InputPanic, HealPoint: "toilet", Stick: controller.OutputAlarmSounder}},
		{`{"unstick":"alarm_light"}`, SimControl{Unstick: controller.OutputAlarmLight}},
		{` {"bounce":{"input":"door","to":"open","count":5}} `, SimControl{Bounce: &SimBounce{
			Input: controller.InputDoor, To: controller.LevelActive, Count: 5, Every: DefaultBounceEvery}}},
		{`{"bounce":{"input":"panic","to":true,"count":3,"every_ms":2}}`, SimControl{Bounce: &SimBounce{
			Input: controller.InputPanic, To: controller.LevelActive, Count: 3, Every: 2 * time.Millisecond}}},
	}
	for _, c := range ok {
		got, err := DecodeSimControl([]byte(c.in))
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
		back, err := DecodeSimControl(got.Encode())
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
		{`{"door":"` + strings.Repeat("x", MaxSimControl) + `"}`, "at most 1024"},
		{`{"door":"open","door":"closed"}`, `"door" given twice`},
		{`{"Door":"open"}`, `unknown field "Door"`},
		{`{"points":{"bed":"pressed","bed":"released"}}`, `points: "bed" given twice`},
		{`{"wire":{"door":"cut","door":"sound"}}`, `wire: "door" given twice`},
		{`{"bounce":{"Input":"door","to":"open","count":3}}`, `bounce: unknown field "Input"`},
		// Malformed inside an array or object: refused, and the key check
		// stops at the bad token instead of spinning on it.
		{`[1 2]`, "sim control: "},
		{`{"points":[1 2]}`, "sim control: "},
		{`[{} {}]`, "sim control: "},
		{`{"wire":{"door" "cut"}}`, "sim control: "},
		{`{"door":"open",}`, "sim control: "},
	}
	for _, c := range bad {
		_, err := DecodeSimControl([]byte(c.in))
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), c.want, c.in)
		assert.True(t, strings.HasPrefix(err.Error(), "sim control: "), err.Error())
	}
}

func TestEncodeSimOutputs(t *testing.T) {
	assert.Equal(t, `{"in_use":"on","warning":"blink","alarm_light":"panic","alarm_sounder":"off","reassurance":"blink"}`,
		string(EncodeSimOutputs(map[controller.Output]controller.Mode{
			controller.OutputInUse: controller.ModeOn, controller.OutputWarning: controller.ModeBlink,
			controller.OutputAlarmLight: controller.ModePanic, controller.OutputReassurance: controller.ModeBlink,
		})))
}

func FuzzDecodeSimControl(f *testing.F) {
	for _, s := range []string{`{"door":"open"}`, `{"presence":true,"fault":"lock"}`, `{"heal":"door"}`,
		`{"points":{"bed":true},"fault":"panic:toilet","stick":"alarm_light"}`,
		`{"bounce":{"input":"door","to":"open","count":5,"every_ms":3}}`, `{"wire":{"panic:bed":"cut"}}`, `{}`, `null`, `{"door":"open"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := DecodeSimControl(payload)
		if len(payload) > MaxSimControl {
			require.Error(t, err)
		}
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "sim control: "), err.Error())
			return
		}
		require.True(t, c.Levels != nil || c.Points != nil || c.Fault != 0 || c.Heal != 0 || c.Stick != 0 || c.Unstick != 0 || c.Bounce != nil || c.Wires != nil,
			"accepted an empty control")
		for in, l := range c.Levels {
			require.Contains(t, controller.Inputs, in)
			require.LessOrEqual(t, l, controller.LevelActive)
		}
		if b := c.Bounce; b != nil {
			require.True(t, b.Count >= 1 && b.Count <= MaxBounceCount && b.Every > 0 && b.Every <= MaxBounceEvery, "%+v", b)
		}
		enc := c.Encode()
		back, err := DecodeSimControl(enc)
		require.NoError(t, err, "re-encoded %s", enc)
		require.Equal(t, c, back)
		require.False(t, bytes.Contains(enc, []byte("input(")))
	})
}

func TestParseSimAssignments(t *testing.T) {
	for _, c := range []struct {
		fields []string
		want   SimControl
	}{
		{[]string{"door=open"}, SimControl{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelActive}}},
		{[]string{"lock=unlocked", "presence=true", "staff=off"}, SimControl{Levels: map[controller.Input]controller.Level{
			controller.InputLock: controller.LevelInactive, controller.InputPresence: controller.LevelActive, controller.InputStaff: controller.LevelInactive}}},
		{[]string{"panic=pressed"}, SimControl{Levels: map[controller.Input]controller.Level{controller.InputPanic: controller.LevelActive}}},
		{[]string{"panic:toilet=pressed", "panic:bed=false"}, SimControl{Points: map[string]controller.Level{"toilet": controller.LevelActive, "bed": controller.LevelInactive}}},
		{[]string{"fault=panic:bed"}, SimControl{Fault: controller.InputPanic, FaultPoint: "bed"}},
		{[]string{"heal=door", "stick=alarm_sounder"}, SimControl{Heal: controller.InputDoor, Stick: controller.OutputAlarmSounder}},
		{[]string{"bounce=door:open:5:100ms"}, SimControl{Bounce: &SimBounce{Input: controller.InputDoor, To: controller.LevelActive, Count: 5, Every: 100 * time.Millisecond}}},
		{[]string{"bounce=staff:true:3"}, SimControl{Bounce: &SimBounce{Input: controller.InputStaff, To: controller.LevelActive, Count: 3, Every: DefaultBounceEvery}}},
		{[]string{`{"door":"closed"}`}, SimControl{Levels: map[controller.Input]controller.Level{controller.InputDoor: controller.LevelInactive}}},
	} {
		got, err := ParseSimAssignments(c.fields)
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
		_, err := ParseSimAssignments(c.fields)
		require.ErrorContains(t, err, c.err, "%q", c.fields)
	}
}

func TestSimControlWire(t *testing.T) {
	c, err := DecodeSimControl([]byte(`{"wire":{"panic:bed":"bridged","door":"cut"}}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]SimWire{"panic:bed": WireBridged, "door": WireCut}, c.Wires)
	back, err := DecodeSimControl(c.Encode())
	require.NoError(t, err)
	assert.Equal(t, c, back, "Encode reads back")

	typed, err := ParseSimAssignments([]string{"wire:panic:bed=bridged", "wire:door=cut"})
	require.NoError(t, err)
	assert.Equal(t, c, typed, "the line syntax says the same")
	typed, err = ParseSimAssignments([]string{"wire:panic:toilet=drift_high", "door=open"})
	require.NoError(t, err)
	assert.Equal(t, WireDriftHigh, typed.Wires["panic:toilet"])

	for payload, want := range map[string]string{
		`{"wire":{}}`:                    "wire: empty",
		`{"wire":{"panic:bed":"glued"}}`: `"glued" is not a wire condition`,
		`{"wire":{"window":"cut"}}`:      `unknown input "window"`,
		`{"wire":{"door:x":"cut"}}`:      "only a panic point may follow",
		`{"wire":{"panic:bed":true}}`:    "sim control",
	} {
		_, err := DecodeSimControl([]byte(payload))
		assert.ErrorContains(t, err, want, payload)
	}
	_, err = ParseSimAssignments([]string{"wire:door=cut", "wire:door=sound"})
	assert.ErrorContains(t, err, "given twice")
}

// TestSimControlSchemaAgreesWithDecoder: the simSet schema of
// docs/asyncapi.yaml accepts exactly the controls DecodeSimControl accepts,
// so that a test harness written from the schema sends nothing roomd
// refuses (sim/set gets no reply: a refused control is only logged) and
// refuses nothing roomd takes. What a schema cannot say (the size limit,
// data after the object) is left to TestDecodeSimControl.
func TestSimControlSchemaAgreesWithDecoder(t *testing.T) {
	s := contracttest.Load(t)
	for _, c := range []struct {
		payload string
		valid   bool
	}{
		{`{"door":"open"}`, true},
		{`{"lock":"unknown","door":"closed"}`, true},
		{`{"presence":true}`, true},
		{`{"presence":"absent"}`, true},
		{`{"panic":"pressed"}`, true},
		{`{"staff":false}`, true},
		{`{"points":{"bed":"pressed","toilet":false,"pull_cord":"unknown"}}`, true},
		{`{"fault":"door"}`, true},
		{`{"fault":"panic:toilet"}`, true},
		{`{"heal":"panic"}`, true},
		{`{"stick":"alarm_sounder","unstick":"alarm_light"}`, true},
		{`{"bounce":{"input":"door","to":"open","count":5}}`, true},
		{`{"bounce":{"input":"panic","to":true,"count":3,"every_ms":2}}`, true},
		{`{"bounce":{"input":"staff","to":"released","count":100,"every_ms":10000}}`, true},
		{`{"wire":{"panic:bed":"bridged","door":"cut"}}`, true},
		{`{"wire":{"panic":"sound","presence":"masked","lock":"drift_low","staff":"drift_high"}}`, true},
		{`{"door":"open","wire":{"door":"sound"},"heal":"door"}`, true},

		{`{}`, false},
		{`{"door":"ajar"}`, false},
		{`{"door":true}`, false},
		{`{"lock":"open"}`, false},
		{`{"presence":"pressed"}`, false},
		{`{"panic":"present"}`, false},
		{`{"staff":"open"}`, false},
		{`{"door":null}`, false},
		{`{"door":1}`, false},
		{`{"window":"open"}`, false},
		{`{"points":{}}`, false},
		{`{"points":{"Bed":true}}`, false},
		{`{"points":{"bed":"open"}}`, false},
		{`{"points":{"bed":"absent"}}`, false},
		{`{"fault":"roof"}`, false},
		{`{"heal":""}`, false},
		{`{"fault":"door:bed"}`, false},
		{`{"fault":"panic:Bed"}`, false},
		{`{"fault":"panic:"}`, false},
		{`{"stick":"alarm"}`, false},
		{`{"unstick":"door"}`, false},
		{`{"bounce":{"input":"door","to":"open","count":0}}`, false},
		{`{"bounce":{"input":"door","to":"open","count":101}}`, false},
		{`{"bounce":{"input":"door","to":"unknown","count":3}}`, false},
		{`{"bounce":{"input":"door","to":true,"count":3}}`, false},
		{`{"bounce":{"input":"door","to":"pressed","count":3}}`, false},
		{`{"bounce":{"input":"lock","to":"open","count":3}}`, false},
		{`{"bounce":{"input":"window","to":"open","count":3}}`, false},
		{`{"bounce":{"input":"door","count":3}}`, false},
		{`{"bounce":{"input":"door","to":"open","count":3,"every_ms":-1}}`, false},
		{`{"bounce":{"input":"door","to":"open","count":3,"every_ms":10001}}`, false},
		{`{"bounce":{"input":"door","to":"open","count":3,"extra":1}}`, false},
		{`{"wire":{}}`, false},
		{`{"wire":{"panic:bed":"glued"}}`, false},
		{`{"wire":{"window":"cut"}}`, false},
		{`{"wire":{"door:x":"cut"}}`, false},
		{`{"wire":{"panic:bed":true}}`, false},
	} {
		_, err := DecodeSimControl([]byte(c.payload))
		require.Equal(t, c.valid, err == nil, "DecodeSimControl(%s): %v", c.payload, err)
		if c.valid {
			assert.NoError(t, s.Validate(t, "simSet", []byte(c.payload)), "the simSet schema refuses what roomd takes: %s", c.payload)
		} else {
			assert.Error(t, s.Validate(t, "simSet", []byte(c.payload)), "the simSet schema accepts what roomd refuses: %s", c.payload)
		}
	}
}

// The exact-key check's field lists are the wire structs' JSON names.
func TestSimControlFieldListsMatchTheWireStructs(t *testing.T) {
	names := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			out = append(out, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		return out
	}
	assert.ElementsMatch(t, names(wireSimControl{}), simControlFields)
	assert.ElementsMatch(t, names(wireSimBounce{}), simBounceFields)
}
