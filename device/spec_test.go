package device

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"

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
		"input door: 2 lines, only presence and panic may have several",
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
	spec = Spec{
		Outputs:  map[controller.Output]LineSpec{controller.OutputAlarmLight: {Pin: "GPIO26"}},
		Feedback: map[controller.Output]LineSpec{controller.OutputAlarmLight: {Pin: "GPIO5"}},
	}
	_, err = NewCore(spec, Lines{Outputs: map[controller.Output]OutputLine{controller.OutputAlarmLight: nopOut{}}}, nil)
	assert.ErrorContains(t, err, "feedback of output alarm_light (GPIO5): not opened")
}

type nopOut struct{}

func (nopOut) Out(gpio.Level) error { return nil }

func TestSpecPanicPointsAndFeedback(t *testing.T) {
	one := Spec{Inputs: map[controller.Input][]LineSpec{controller.InputPanic: {{Pin: "GPIO23"}}}}.WithDefaults()
	require.NoError(t, one.Validate(), "one unnamed panic line")
	assert.Equal(t, controller.DefaultPanicPoint, one.PanicPoint(0))

	two := Spec{Inputs: map[controller.Input][]LineSpec{controller.InputPanic: {{Pin: "GPIO23", Name: "bed"}, {Pin: "GPIO24", Name: "toilet"}}}}.WithDefaults()
	require.NoError(t, two.Validate())
	assert.Equal(t, "toilet", two.PanicPoint(1))

	bad := Spec{
		Inputs: map[controller.Input][]LineSpec{
			controller.InputPanic: {{Pin: "GPIO1", Name: "bed"}, {Pin: "GPIO2"}, {Pin: "GPIO3", Name: "Bed!"}, {Pin: "GPIO4", Name: "bed"}},
			controller.InputDoor:  {{Pin: "GPIO5", Name: "front"}},
		},
		Outputs: map[controller.Output]LineSpec{controller.OutputAlarmSounder: {Pin: "GPIO6"}},
		Feedback: map[controller.Output]LineSpec{
			controller.OutputAlarmSounder: {Pin: "GPIO7"},
			controller.OutputReassurance:  {Pin: "GPIO8"},
			controller.Output(9):          {Pin: "GPIO9"},
		},
		FeedbackGrace: 300 * time.Millisecond,
	}.WithDefaults()
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"input door line 0 (GPIO5): only panic points have names",
		"input panic line 1 (GPIO2): several panic points need a name each",
		`input panic line 2 (GPIO3): "Bed!" is not a point name`,
		`input panic line 3 (GPIO4): point "bed" named twice`,
		"feedback of output reassurance (GPIO8): the output is not wired",
		"feedback of unknown output role 9",
		"feedback grace 300ms: must be positive and shorter than the shortest pattern phase 250ms",
	} {
		assert.ErrorContains(t, err, want)
	}
	many := Spec{Inputs: map[controller.Input][]LineSpec{controller.InputPanic: make([]LineSpec, maxPanicPoints+1)}}
	assert.ErrorContains(t, many.Validate(), "input panic: 9 points, at most 8")
}
