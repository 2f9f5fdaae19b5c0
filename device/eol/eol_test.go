package eol

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// edge is one band edge of a preset: just below it reads below, on it and
// just above it reads above.
type edge struct {
	at           float64
	below, above Band
}

func TestPresetEveryEdge(t *testing.T) {
	for _, c := range []struct {
		preset Preset
		scheme Scheme
		edges  []edge
	}{
		{PresetGalaxy, SchemeDouble, []edge{{800, BandShort, BandLow}, {900, BandLow, BandNormal}, {1200, BandNormal, BandHigh},
			{1300, BandHigh, BandAlarm}, {12000, BandAlarm, BandMasked}, {19000, BandMasked, BandOpen}}},
		{PresetGalaxy, SchemeSingle, []edge{{800, BandShort, BandLow}, {900, BandLow, BandNormal}, {1200, BandNormal, BandHigh},
			{1300, BandHigh, BandAlarm}}},
		{PresetTexecom, SchemeDouble, []edge{{1000, BandShort, BandLow}, {1900, BandLow, BandNormal}, {2600, BandNormal, BandHigh},
			{3300, BandHigh, BandAlarm}, {12000, BandAlarm, BandOpen}}},
		{PresetTexecom, SchemeSingle, []edge{{1000, BandShort, BandLow}, {1900, BandLow, BandNormal}, {2600, BandNormal, BandHigh},
			{3300, BandHigh, BandAlarm}}},
	} {
		t.Run(string(c.preset)+"/"+c.scheme.String(), func(t *testing.T) {
			tab, err := PresetTable(c.preset, c.scheme)
			require.NoError(t, err)
			require.NoError(t, tab.Validate())
			require.Len(t, tab.Ranges, len(c.edges)+1, "one band more than edges")
			for _, e := range c.edges {
				assert.Equal(t, e.below, tab.Band(math.Nextafter(e.at, 0)), "just below %v", e.at)
				assert.Equal(t, e.above, tab.Band(e.at), "on %v", e.at)
				assert.Equal(t, e.above, tab.Band(e.at+0.5), "just above %v", e.at)
			}
			assert.Equal(t, BandShort, tab.Band(0), "0 Ω")
			last := c.edges[len(c.edges)-1].above
			assert.Equal(t, last, tab.Band(math.Inf(1)), "open circuit")
			assert.Equal(t, last, tab.Band(math.NaN()), "NaN reads open")
			// The nominal resistances read where they belong.
			assert.Equal(t, StateRest, tab.Judge(tab.Rest, Baseline{}, 0).State)
			assert.Equal(t, StateActed, tab.Judge(tab.Acted, Baseline{}, 0).State)
		})
	}
	_, err := PresetTable("honeywell", SchemeDouble)
	assert.ErrorContains(t, err, `unknown EOL preset "honeywell"`)
	_, err = PresetTable(PresetGalaxy, 0)
	assert.ErrorContains(t, err, "unknown scheme")
}

func TestValidateRefuses(t *testing.T) {
	good, err := PresetTable(PresetGalaxy, SchemeDouble)
	require.NoError(t, err)
	with := func(f func(rs []Range) []Range) Table {
		tab := good
		tab.Ranges = f(append([]Range(nil), good.Ranges...))
		return tab
	}
	for name, c := range map[string]struct {
		tab  Table
		want string
	}{
		"gap":             {with(func(rs []Range) []Range { rs[2].From = 950; return rs }), "gap after low (nothing covers 900 Ω–950 Ω)"},
		"overlap":         {with(func(rs []Range) []Range { rs[2].From = 850; return rs }), "overlaps low (850 Ω–900 Ω)"},
		"not from zero":   {with(func(rs []Range) []Range { rs[0].From = 10; return rs }), "must start at 0 Ω"},
		"not to open":     {with(func(rs []Range) []Range { rs[6].To = 50000; return rs }), "must reach open circuit"},
		"band twice":      {with(func(rs []Range) []Range { rs[3].Band = BandNormal; return rs }), "given twice"},
		"out of order":    {with(func(rs []Range) []Range { rs[1].Band, rs[3].Band = BandHigh, BandLow; return rs }), "increasing resistance"},
		"empty band":      {with(func(rs []Range) []Range { rs[1].To = rs[1].From; return rs }), "must go up"},
		"no normal":       {with(func(rs []Range) []Range { rs[2].Band = BandMasked; return rs }), "no normal band"},
		"double, no open": {with(func(rs []Range) []Range { rs[5].To = math.Inf(1); return rs[:6] }), "no tamper_open band"},
		"single with open": {func() Table {
			tab := good
			tab.Scheme = SchemeSingle
			return tab
		}(), "cannot tell a cut"},
		"no band": {Table{Scheme: SchemeDouble}, "no band"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, c.tab.Validate(), c.want)
		})
	}
}

func TestJudge(t *testing.T) {
	tab, err := PresetTable(PresetGalaxy, SchemeDouble)
	require.NoError(t, err)
	none := Baseline{}
	for _, c := range []struct {
		ohms float64
		base Baseline
		want Verdict
	}{
		{0, none, Verdict{State: StateShort}},
		{850, none, Verdict{State: StateRest, Drift: DriftLow}},
		{1000, none, Verdict{State: StateRest}},
		{1150, none, Verdict{State: StateRest}},
		{1250, none, Verdict{State: StateRest, Drift: DriftHigh}},
		{2000, none, Verdict{State: StateActed}},
		{15000, none, Verdict{State: StateMasked}},
		{math.Inf(1), none, Verdict{State: StateOpen}},
		// Against a baseline of 1,000 Ω at rest and 2,000 Ω acted on (10%).
		{1099, Baseline{1000, 2000}, Verdict{State: StateRest}},
		{1101, Baseline{1000, 2000}, Verdict{State: StateRest, Drift: DriftHigh}},
		{901, Baseline{1000, 2000}, Verdict{State: StateRest}},
		{1150, Baseline{1000, 2000}, Verdict{State: StateRest, Drift: DriftHigh}},
		{1150, Baseline{1100, 2000}, Verdict{State: StateRest}},
		{2300, Baseline{1000, 2000}, Verdict{State: StateActed, Drift: DriftHigh}},
		{1750, Baseline{1000, 2000}, Verdict{State: StateActed, Drift: DriftLow}},
		{850, Baseline{850, 2000}, Verdict{State: StateRest, Drift: DriftLow}}, // the band says drift whatever the baseline
	} {
		assert.Equal(t, c.want, tab.Judge(c.ohms, c.base, 0), "%v Ω against %+v", c.ohms, c.base)
	}
	assert.Equal(t, Verdict{State: StateRest}, tab.Judge(1150, Baseline{1000, 2000}, 0.2), "a wider tolerance")
}

func TestStateWordsCarryNoOhms(t *testing.T) {
	assert.Equal(t, "wire bridged", StateShort.Words())
	assert.Equal(t, "wire cut", StateOpen.Words())
	assert.Equal(t, "masked", StateMasked.Words())
	assert.Empty(t, StateRest.Words())
	for _, s := range []State{StateShort, StateOpen, StateMasked} {
		assert.True(t, s.Tamper(), s.String())
	}
	assert.False(t, StateFailed.Tamper())
}

func TestDivider(t *testing.T) {
	d := Divider{PullUp: 2200, Supply: 3.3}
	require.NoError(t, d.Validate())
	for _, ohms := range []float64{1, 800, 1000, 2000, 12000, 19000, 100000} {
		assert.InEpsilon(t, ohms, d.Ohms(d.Volts(ohms)), 1e-9, "round trip of %v Ω", ohms)
	}
	assert.Equal(t, 0.0, d.Ohms(-0.01))
	assert.True(t, math.IsInf(d.Ohms(3.3), 1))
	assert.True(t, math.IsInf(d.Ohms(3.5), 1))
	assert.InDelta(t, 1.03125, d.Volts(1000), 1e-9)
	assert.Equal(t, 3.3, d.Volts(math.Inf(1)))
	assert.ErrorContains(t, Divider{}.Validate(), "pull-up")
	assert.ErrorContains(t, Divider{PullUp: 1000, Supply: 12}.Validate(), "supply 12 V")
}

func TestDebounce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rest, acted := Verdict{State: StateRest}, Verdict{State: StateActed}
	short := Verdict{State: StateShort}
	d := Debouncer{Hold: DefaultHold}
	_, ok := d.Settled()
	require.False(t, ok)
	v, since, changed := d.Observe(at(0), rest)
	require.True(t, changed, "the first reading counts at once")
	assert.Equal(t, rest, v)
	assert.Equal(t, at(0), since)

	// A press that lasts 299 ms does not count.
	for ms := 20; ms < 320; ms += 20 {
		_, _, changed = d.Observe(at(ms), acted)
		assert.False(t, changed, "at %d ms", ms)
	}
	_, _, changed = d.Observe(at(320), rest)
	assert.False(t, changed)
	pendingSince, pending := d.Pending()
	assert.False(t, pending, "back at rest: nothing waits (%s)", pendingSince)

	// One that holds 300 ms counts, dated from its first reading.
	for ms := 340; ms < 640; ms += 20 {
		_, _, changed = d.Observe(at(ms), short)
		require.False(t, changed, "at %d ms", ms)
		pendingSince, pending = d.Pending()
		assert.True(t, pending)
		assert.Equal(t, at(340), pendingSince)
	}
	v, since, changed = d.Observe(at(640), short)
	require.True(t, changed, "held 300 ms")
	assert.Equal(t, short, v)
	assert.Equal(t, at(340), since)

	// A burst of other verdicts restarts the hold each time.
	d2 := Debouncer{Hold: 100 * time.Millisecond}
	d2.Observe(at(0), rest)
	seq := []Verdict{acted, short, acted, short, acted}
	for i, v := range seq {
		_, _, changed = d2.Observe(at(10+i*50), v)
		assert.False(t, changed, "step %d", i)
	}
	v, since, changed = d2.Observe(at(10+4*50+100), acted)
	require.True(t, changed)
	assert.Equal(t, acted, v)
	assert.Equal(t, at(210), since)
}

func TestParse(t *testing.T) {
	for _, b := range AllBands {
		got, err := ParseBand(b.String())
		require.NoError(t, err)
		assert.Equal(t, b, got)
	}
	_, err := ParseBand("alarmed")
	assert.ErrorContains(t, err, "unknown band")
	s, err := ParseScheme("double")
	require.NoError(t, err)
	assert.Equal(t, SchemeDouble, s)
	_, err = ParseScheme("triple")
	assert.Error(t, err)
	assert.Equal(t, "1,200 Ω", Ohms(1200))
	assert.Equal(t, "19,000 Ω", Ohms(19000))
	assert.Equal(t, "∞", Ohms(math.Inf(1)))
}
