package device

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

func TestSpecDefaultsAndValidate(t *testing.T) {
	s := Spec{}.WithDefaults()
	assert.Equal(t, DefaultRereadEvery, s.RereadEvery)
	assert.Equal(t, Flap{MaxChanges: DefaultFlapMaxChanges, Window: DefaultFlapWindow}, s.Flap)
	assert.Equal(t, DefaultBlinkPeriod, s.BlinkPeriod)
	require.NoError(t, s.Validate())

	bad := Spec{
		Inputs: map[controller.Input][]LineSpec{
			controller.InputDoor:     {{Pin: "GPIO17"}, {Pin: "GPIO18"}},
			controller.InputLock:     {},
			controller.InputPanic:    {{Pin: "GPIO23", Debounce: -time.Millisecond}},
			controller.InputPresence: make([]LineSpec, maxPresenceLines+1),
			controller.Input(42):     {{Pin: "GPIO5"}},
		},
		Outputs:     map[controller.Output]LineSpec{controller.Output(9): {}},
		RereadEvery: -1,
	}.WithDefaults()
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"reread interval -1ns is negative",
		"input door: 2 lines, only presence may have several",
		"input lock: no line",
		"input panic line 0 (GPIO23): negative debounce",
		"input presence: 9 lines, at most 8",
		"unknown input role 42",
		"unknown output role 9",
	} {
		assert.ErrorContains(t, err, want)
	}
	_, err = NewCore(bad, Lines{}, nil)
	assert.ErrorContains(t, err, "device spec:")
}

func TestParsePull(t *testing.T) {
	for _, p := range []Pull{PullNone, PullUp, PullDown} {
		got, err := ParsePull(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
	_, err := ParsePull("sideways")
	assert.ErrorContains(t, err, `unknown pull "sideways"`)
	assert.Equal(t, "chip0 line 3", LineSpec{Chip: "chip0", Line: 3}.String())
}

func TestNewCoreNeedsEveryLine(t *testing.T) {
	spec := Spec{Inputs: map[controller.Input][]LineSpec{controller.InputDoor: {{Pin: "GPIO17"}}}}
	_, err := NewCore(spec, Lines{}, nil)
	assert.ErrorContains(t, err, "input door: 0 lines opened for 1 wired")
	spec = Spec{Outputs: map[controller.Output]LineSpec{controller.OutputAlarmLight: {Pin: "GPIO26"}}}
	_, err = NewCore(spec, Lines{}, nil)
	assert.ErrorContains(t, err, "output alarm_light (GPIO26): not opened")
}
