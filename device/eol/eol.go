// Package eol is the arithmetic of end-of-line (EOL) supervised loops: the
// resistance bands of a loop, the presets of the common schemes, the
// voltage divider an ADC reads a loop through, the judgement of one reading
// against the bands and the loop's commissioned baseline, and the debounce
// a judgement must pass before it counts.
//
// A plain normally-closed contact on a GPIO line shows a cut wire (open)
// but not a bridged one: a contact bridged by a wire reads "at rest" for
// ever. With an EOL resistor in the loop, a bridge reads about 0 Ω, a cut
// reads open, and the contact's two states read as two resistances, so
// each failure has its own band.
//
// Everything here is pure: no I/O, no clock (times are passed in).
package eol

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Band is one resistance band of a loop.
type Band uint8

// The bands, in increasing resistance.
const (
	BandShort  Band = iota + 1 // tamper: the loop is bridged (a wire or a foil across it)
	BandLow                    // at rest, but the resistance drifted low
	BandNormal                 // at rest
	BandHigh                   // at rest, but the resistance drifted high
	BandAlarm                  // the contact is acted on (open)
	BandMasked                 // a detector's anti-masking resistor: the sensor is covered
	BandOpen                   // tamper: the loop is cut
)

// AllBands lists every band in increasing resistance.
var AllBands = []Band{BandShort, BandLow, BandNormal, BandHigh, BandAlarm, BandMasked, BandOpen}

var bandNames = [...]string{"", "tamper_short", "low", "normal", "high", "alarm", "masked", "tamper_open"}

func (b Band) String() string {
	if int(b) < len(bandNames) && b != 0 {
		return bandNames[b]
	}
	return fmt.Sprintf("band(%d)", uint8(b))
}

// ParseBand returns the band named s (as String gives it).
func ParseBand(s string) (Band, error) {
	for _, b := range AllBands {
		if b.String() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown band %q (want tamper_short, low, normal, high, alarm, masked or tamper_open)", s)
}

// Scheme is how the resistors are wired around a normally-closed contact.
type Scheme uint8

// The schemes.
const (
	// SchemeSingle: one resistor in series with the contact. At rest the
	// loop reads the resistor, acted on (or cut) it reads open: a cut wire
	// reads as the contact acted on, as a plain contact does, but a bridge
	// is seen.
	SchemeSingle Scheme = iota + 1
	// SchemeDouble: one resistor in series, one across the contact. At rest
	// the loop reads the series resistor, acted on both; a cut reads open
	// and a bridge reads 0 Ω, each told apart from the contact's states.
	SchemeDouble
)

func (s Scheme) String() string {
	switch s {
	case SchemeSingle:
		return "single"
	case SchemeDouble:
		return "double"
	}
	return fmt.Sprintf("scheme(%d)", uint8(s))
}

// ParseScheme accepts "single" and "double".
func ParseScheme(s string) (Scheme, error) {
	switch s {
	case "single":
		return SchemeSingle, nil
	case "double":
		return SchemeDouble, nil
	}
	return 0, fmt.Errorf("unknown EOL scheme %q (want single or double)", s)
}

// Range is one band of a table: From (inclusive) up to To (exclusive), in
// ohms. The last range of a table has To = +Inf.
type Range struct {
	Band     Band
	From, To float64
}

// Table is a loop's band table: ranges in increasing resistance that
// cover 0 Ω to +Inf without gap or overlap. A reading exactly on an edge
// belongs to the upper band.
type Table struct {
	Scheme Scheme
	Ranges []Range
	// Rest and Acted are the nominal resistances of the contact at rest and
	// acted on (what the resistors add up to), used by the simulator and as
	// a baseline's sanity check.
	Rest, Acted float64
}

// Preset names a band table shipped with roomd.
type Preset string

// The presets.
const (
	// Honeywell Galaxy, 1 kΩ + 1 kΩ (double) or 1 kΩ (single): at rest
	// 1 kΩ, acted on 2 kΩ.
	PresetGalaxy Preset = "galaxy"
	// Texecom, 2k2 + 4k7 (double: 2k2 secure, 6k9 alarm) or 2k2 (single).
	PresetTexecom Preset = "texecom"
)

// Presets lists the presets.
var Presets = []Preset{PresetGalaxy, PresetTexecom}

var inf = math.Inf(1)

// PresetTable returns the band table of preset p for scheme s.
//
// Galaxy (double), after Honeywell's table: tamper short 0–800 Ω, low
// 800–900, normal 900–1,200, high 1,200–1,300, alarm 1,300–12,000, masked
// 12,000–19,000, tamper open above 19,000. Single: the same up to 1,300,
// then alarm (a cut reads as acted on).
//
// Texecom (double), 2k2 secure and 6k9 alarm: tamper short 0–1,000, low
// 1,000–1,900, normal 1,900–2,600, high 2,600–3,300, alarm 3,300–12,000,
// tamper open above 12,000; no masked band. Single: alarm above 3,300.
func PresetTable(p Preset, s Scheme) (Table, error) {
	if s != SchemeSingle && s != SchemeDouble {
		return Table{}, fmt.Errorf("preset %s: unknown scheme %d", p, s)
	}
	var t Table
	switch p {
	case PresetGalaxy:
		t = Table{Scheme: s, Rest: 1000, Acted: 2000, Ranges: []Range{
			{BandShort, 0, 800}, {BandLow, 800, 900}, {BandNormal, 900, 1200}, {BandHigh, 1200, 1300},
			{BandAlarm, 1300, 12000}, {BandMasked, 12000, 19000}, {BandOpen, 19000, inf}}}
	case PresetTexecom:
		t = Table{Scheme: s, Rest: 2200, Acted: 6900, Ranges: []Range{
			{BandShort, 0, 1000}, {BandLow, 1000, 1900}, {BandNormal, 1900, 2600}, {BandHigh, 2600, 3300},
			{BandAlarm, 3300, 12000}, {BandOpen, 12000, inf}}}
	default:
		return Table{}, fmt.Errorf("unknown EOL preset %q (want galaxy or texecom)", p)
	}
	if s == SchemeSingle {
		// One resistor: open is the contact acted on; nothing above alarm.
		n := 0
		for _, r := range t.Ranges {
			if r.Band == BandAlarm {
				r.To = inf
				t.Ranges[n] = r
				n++
				break
			}
			t.Ranges[n] = r
			n++
		}
		t.Ranges = t.Ranges[:n]
		t.Acted = inf
	}
	return t, nil
}

// Validate reports every problem of t: the ranges must start at 0 Ω, each
// begin where the one before ends (no gap, no overlap), end at +Inf, be in
// increasing band order with each band at most once, and include normal and
// alarm (a double scheme also tamper open; every scheme tamper short).
func (t Table) Validate() error {
	var errs []error
	if t.Scheme != SchemeSingle && t.Scheme != SchemeDouble {
		errs = append(errs, fmt.Errorf("unknown scheme %d", t.Scheme))
	}
	if len(t.Ranges) == 0 {
		return errors.Join(append(errs, errors.New("no band"))...)
	}
	seen := map[Band]bool{}
	var prev Range
	for i, r := range t.Ranges {
		name := fmt.Sprintf("band %s (%s–%s)", r.Band, Ohms(r.From), Ohms(r.To))
		switch {
		case r.Band < BandShort || r.Band > BandOpen:
			errs = append(errs, fmt.Errorf("%s: unknown band", name))
		case seen[r.Band]:
			errs = append(errs, fmt.Errorf("%s: given twice", name))
		case i > 0 && r.Band < prev.Band:
			errs = append(errs, fmt.Errorf("%s: after %s, but bands go in increasing resistance (%v)", name, prev.Band, AllBands))
		}
		seen[r.Band] = true
		if math.IsNaN(r.From) || math.IsNaN(r.To) || r.From < 0 || r.To <= r.From {
			errs = append(errs, fmt.Errorf("%s: must go up from at least 0 Ω", name))
		}
		switch {
		case i == 0 && r.From != 0:
			errs = append(errs, fmt.Errorf("%s: the first band must start at 0 Ω (nothing covers 0–%s)", name, Ohms(r.From)))
		case i > 0 && r.From > prev.To:
			errs = append(errs, fmt.Errorf("%s: gap after %s (nothing covers %s–%s)", name, prev.Band, Ohms(prev.To), Ohms(r.From)))
		case i > 0 && r.From < prev.To:
			errs = append(errs, fmt.Errorf("%s: overlaps %s (%s–%s)", name, prev.Band, Ohms(r.From), Ohms(prev.To)))
		}
		prev = r
	}
	if last := t.Ranges[len(t.Ranges)-1]; !math.IsInf(last.To, 1) {
		errs = append(errs, fmt.Errorf("band %s: the last band must reach open circuit (nothing covers above %s)", last.Band, Ohms(last.To)))
	}
	need := []Band{BandShort, BandNormal, BandAlarm}
	if t.Scheme == SchemeDouble {
		need = append(need, BandOpen)
	}
	for _, b := range need {
		if !seen[b] {
			errs = append(errs, fmt.Errorf("no %s band (a %s EOL loop needs %v)", b, t.Scheme, need))
		}
	}
	if t.Scheme == SchemeSingle && (seen[BandOpen] || seen[BandMasked]) {
		errs = append(errs, errors.New("a single EOL loop cannot tell a cut from the contact acted on: no tamper_open or masked band (use double EOL)"))
	}
	return errors.Join(errs...)
}

// Band returns the band of a reading of ohms (NaN counts as open).
func (t Table) Band(ohms float64) Band {
	if math.IsNaN(ohms) {
		ohms = inf
	}
	for _, r := range t.Ranges {
		if ohms < r.To {
			return r.Band
		}
	}
	return t.Ranges[len(t.Ranges)-1].Band
}

// Range returns the range of band b, and false if t has none.
func (t Table) Range(b Band) (Range, bool) {
	for _, r := range t.Ranges {
		if r.Band == b {
			return r, true
		}
	}
	return Range{}, false
}

// Ohms formats a resistance for messages ("1,200 Ω", "open").
func Ohms(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "∞"
	case math.IsNaN(v):
		return "NaN"
	}
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s + " Ω"
}

// State is what a loop says about its contact.
type State uint8

// The states of a loop.
const (
	StateRest   State = iota + 1 // the contact at rest (door closed, button released)
	StateActed                   // the contact acted on (door open, button pressed)
	StateShort                   // tamper: bridged
	StateOpen                    // tamper: cut
	StateMasked                  // the detector is covered
	StateFailed                  // the loop could not be read (ADC or bus error)
)

func (s State) String() string {
	switch s {
	case StateRest:
		return "rest"
	case StateActed:
		return "acted"
	case StateShort:
		return "short"
	case StateOpen:
		return "open"
	case StateMasked:
		return "masked"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Tamper reports whether s is a tamper of the loop (bridged, cut or masked).
func (s State) Tamper() bool { return s == StateShort || s == StateOpen || s == StateMasked }

// Words is what a fault of state s says, as it leaves the room: no ohms,
// no band ("wire bridged", "wire cut", "masked"); empty for the contact's
// own states.
func (s State) Words() string {
	switch s {
	case StateShort:
		return "wire bridged"
	case StateOpen:
		return "wire cut"
	case StateMasked:
		return "masked"
	}
	return ""
}

// Drift says whether a loop's resistance has moved from where it belongs.
type Drift uint8

// The drifts.
const (
	DriftNone Drift = iota
	DriftLow
	DriftHigh
)

func (d Drift) String() string {
	switch d {
	case DriftLow:
		return "low"
	case DriftHigh:
		return "high"
	}
	return "none"
}

// Baseline is what commissioning measured on a loop: the resistance at
// rest and acted on (0 when not measured).
type Baseline struct {
	Rest, Acted float64
}

// DefaultTolerance is how far (a fraction) a reading may move from its
// baseline before it counts as drift.
const DefaultTolerance = 0.10

// Verdict is the judgement of one reading.
type Verdict struct {
	State State
	Drift Drift
}

// Judge maps a reading of ohms to the contact's state and its drift. The
// band decides the state; the low and high bands are drift of the state at
// rest. With a baseline, a reading of the state at rest (or acted on) that
// lies more than tol (a fraction; 0 means DefaultTolerance) from the
// baseline of that state is drift too: drift is judged against what the
// loop measured when it was commissioned.
func (t Table) Judge(ohms float64, base Baseline, tol float64) Verdict {
	if tol <= 0 {
		tol = DefaultTolerance
	}
	v := Verdict{}
	switch t.Band(ohms) {
	case BandShort:
		return Verdict{State: StateShort}
	case BandOpen:
		return Verdict{State: StateOpen}
	case BandMasked:
		return Verdict{State: StateMasked}
	case BandLow:
		return Verdict{State: StateRest, Drift: DriftLow}
	case BandHigh:
		return Verdict{State: StateRest, Drift: DriftHigh}
	case BandNormal:
		v.State = StateRest
		v.Drift = drift(ohms, base.Rest, tol)
	case BandAlarm:
		v.State = StateActed
		v.Drift = drift(ohms, base.Acted, tol)
	}
	return v
}

func drift(ohms, base, tol float64) Drift {
	if base <= 0 || math.IsInf(base, 1) || math.IsInf(ohms, 1) {
		return DriftNone
	}
	switch {
	case ohms < base*(1-tol):
		return DriftLow
	case ohms > base*(1+tol):
		return DriftHigh
	}
	return DriftNone
}

// Divider is how an ADC channel reads a loop: the loop runs from the
// channel to ground, and a pull-up resistor from the channel to a supply of
// Supply volts. The ADC reads V = Supply·R/(R+PullUp).
type Divider struct {
	PullUp float64 // ohms
	Supply float64 // volts
}

// Validate reports a divider that cannot be used.
func (d Divider) Validate() error {
	var errs []error
	if !(d.PullUp > 0) || math.IsInf(d.PullUp, 0) {
		errs = append(errs, fmt.Errorf("pull-up %v Ω: must be positive", d.PullUp))
	}
	if !(d.Supply > 0) || d.Supply > 5.5 {
		errs = append(errs, fmt.Errorf("supply %v V: must be above 0 V and at most 5.5 V (the ADS1115's limit)", d.Supply))
	}
	return errors.Join(errs...)
}

// Ohms returns the loop's resistance for a reading of volts: 0 at or below
// 0 V, +Inf at or above the supply.
func (d Divider) Ohms(volts float64) float64 {
	switch {
	case volts <= 0:
		return 0
	case volts >= d.Supply:
		return inf
	}
	return d.PullUp * volts / (d.Supply - volts)
}

// Volts returns what the ADC reads across a loop of ohms.
func (d Divider) Volts(ohms float64) float64 {
	if math.IsInf(ohms, 1) {
		return d.Supply
	}
	if ohms <= 0 {
		return 0
	}
	return d.Supply * ohms / (ohms + d.PullUp)
}

// DefaultHold is how long a verdict must hold to count (Honeywell Galaxy's
// 300 ms).
const DefaultHold = 300 * time.Millisecond

// Debouncer turns a stream of verdicts into settled ones: a new verdict
// counts once every reading for Hold has given it. The first reading
// counts at once. Its zero value, with Hold set, is ready.
type Debouncer struct {
	Hold time.Duration

	settled   Verdict
	has       bool
	cand      Verdict
	candSince time.Time
}

// Observe takes the verdict of a reading at at. It returns the settled
// verdict, when it began to hold (for a change: the first reading of it),
// and whether it changed with this reading.
func (d *Debouncer) Observe(at time.Time, v Verdict) (Verdict, time.Time, bool) {
	if !d.has {
		d.has, d.settled, d.cand, d.candSince = true, v, v, at
		return v, at, true
	}
	if v != d.cand {
		d.cand, d.candSince = v, at
	}
	if d.cand != d.settled && at.Sub(d.candSince) >= d.Hold {
		d.settled = d.cand
		return d.settled, d.candSince, true
	}
	return d.settled, time.Time{}, false
}

// Settled returns the settled verdict, and false before the first reading.
func (d *Debouncer) Settled() (Verdict, bool) { return d.settled, d.has }

// Pending reports whether a different verdict is waiting to settle, and
// since when.
func (d *Debouncer) Pending() (time.Time, bool) {
	return d.candSince, d.has && d.cand != d.settled
}
