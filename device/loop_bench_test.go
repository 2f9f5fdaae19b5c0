package device

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/physic"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
)

type constLine struct{ s analog.Sample }

func (c constLine) Read() (analog.Sample, error) { return c.s, nil }

// BenchmarkLoopSample is the CPU one read of a supervised loop costs roomd
// besides the conversion itself: volts to ohms, the bands and the
// baseline, the hold and the flap supervision. A loop is read 100 times a
// second (every 10 ms).
func BenchmarkLoopSample(b *testing.B) {
	table, err := eol.PresetTable(eol.PresetGalaxy, eol.SchemeDouble)
	if err != nil {
		b.Fatal(err)
	}
	loop := Loop{Table: table, Divider: eol.Divider{PullUp: 2200, Supply: 3.3}, Baseline: eol.Baseline{Rest: 1000, Acted: 2000}}.withDefaults()
	v := loop.Divider.Volts(1010)
	w := &loopWatcher{in: controller.InputPanic, loop: loop, flap: Flap{MaxChanges: DefaultFlapMaxChanges, Window: DefaultFlapWindow},
		line: constLine{analog.Sample{V: physic.ElectricPotential(v * float64(physic.Volt))}}}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	w.start(now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Millisecond)
		w.sample(now)
	}
	if w.cur.level != controller.LevelInactive {
		b.Fatalf("a loop at rest reads %s", w.cur.level)
	}
}
