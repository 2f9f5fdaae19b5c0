package gpio

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/devicetest"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/wallclock"
)

// The ADS1115's registers as the datasheet (TI SBAS444) gives them: a
// single-shot conversion of single-ended input ch at PGA ±4.096 V
// (gain 0x0200), 860 SPS (0x00E0), comparator off (0x0003), started by OS
// (0x8000) with MUX 100+ch.
func adsConfigWord(ch int) uint16 {
	return 0x8000 | uint16(4+ch)<<12 | 0x0200 | 0x0100 | 0x00E0 | 0x0003
}

func be(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// code is the conversion code for volts at ±4.096 V.
func code(volts float64) uint16 { return uint16(int16(math.Round(volts / 4.096 * 32768))) }

// conversion is the I²C traffic of one read of channel ch that gives
// volts: the config written (start), the conversion read, the config read
// back (done, same channel).
func conversion(addr uint16, ch int, volts float64) []i2ctest.IO {
	cfg := adsConfigWord(ch)
	return []i2ctest.IO{
		{Addr: addr, W: append([]byte{0x01}, be(cfg)...)},
		{Addr: addr, W: []byte{0x00}, R: be(code(volts))},
		{Addr: addr, W: []byte{0x01}, R: be(cfg)},
	}
}

func TestADS1115Playback(t *testing.T) {
	const addr = 0x48
	div := eol.Divider{PullUp: 2200, Supply: 3.3}
	t.Run("a read is a conversion, checked", func(t *testing.T) {
		bus := &i2ctest.Playback{Ops: conversion(addr, 1, div.Volts(1000)), DontPanic: true}
		a, err := NewADS1115(bus, addr)
		require.NoError(t, err)
		ch, err := a.Channel(1)
		require.NoError(t, err)
		s, err := ch.Read()
		require.NoError(t, err)
		assert.InDelta(t, 1000, div.Ohms(float64(s.V)/float64(physic.Volt)), 1, "1 kΩ at rest reads back as 1 kΩ")
		require.NoError(t, bus.Close(), "every transaction played")
	})
	t.Run("a conversion read too early is read again", func(t *testing.T) {
		cfg := adsConfigWord(0)
		ops := []i2ctest.IO{
			{Addr: addr, W: append([]byte{0x01}, be(cfg)...)},
			{Addr: addr, W: []byte{0x00}, R: be(code(div.Volts(1000)))}, // the previous conversion
			{Addr: addr, W: []byte{0x01}, R: be(cfg &^ 0x8000)},         // still converting
			{Addr: addr, W: []byte{0x01}, R: be(cfg)},                   // done
			{Addr: addr, W: []byte{0x00}, R: be(code(div.Volts(0)))},    // the fresh result: bridged
		}
		bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
		a, err := NewADS1115(bus, addr)
		require.NoError(t, err)
		ch, err := a.Channel(0)
		require.NoError(t, err)
		s, err := ch.Read()
		require.NoError(t, err)
		assert.Zero(t, s.Raw, "the fresh conversion, not the stale one")
		require.NoError(t, bus.Close())
	})
	for name, c := range map[string]struct {
		ops  func(cfg uint16) []i2ctest.IO
		want string
	}{
		"a conversion that never finishes": {func(cfg uint16) []i2ctest.IO {
			return []i2ctest.IO{{Addr: addr, W: append([]byte{0x01}, be(cfg)...)}, {Addr: addr, W: []byte{0x00}, R: be(100)},
				{Addr: addr, W: []byte{0x01}, R: be(cfg &^ 0x8000)}, {Addr: addr, W: []byte{0x01}, R: be(cfg &^ 0x8000)}}
		}, "conversion not finished"},
		"a converter that reset": {func(cfg uint16) []i2ctest.IO {
			return []i2ctest.IO{{Addr: addr, W: append([]byte{0x01}, be(cfg)...)}, {Addr: addr, W: []byte{0x00}, R: be(100)},
				{Addr: addr, W: []byte{0x01}, R: be(0x8583)}} // the power-on default: MUX 000
		}, "lost its configuration"},
		"a bus that does not answer": {func(cfg uint16) []i2ctest.IO { return nil }, "ADS1115 0x48 channel 2"},
	} {
		t.Run(name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: c.ops(adsConfigWord(2)), DontPanic: true}
			a, err := NewADS1115(bus, addr)
			require.NoError(t, err)
			ch, err := a.Channel(2)
			require.NoError(t, err)
			_, err = ch.Read()
			require.ErrorContains(t, err, c.want)
		})
	}
	a, err := NewADS1115(&i2ctest.Playback{}, addr)
	require.NoError(t, err)
	_, err = a.Channel(4)
	assert.ErrorContains(t, err, "no channel 4")
}

// playbackADCs opens every channel on one bus.
type playbackADCs struct {
	bus    *i2ctest.Playback
	closed bool
}

func (p *playbackADCs) Open(ch device.ADCChannel) (device.AnalogLine, error) {
	a, err := NewADS1115(p.bus, ch.Address)
	if err != nil {
		return nil, err
	}
	return a.Channel(ch.Channel)
}

func (p *playbackADCs) Close() error { p.closed = true; return nil }

// TestADS1115PlaybackLoop: a panic loop read at rest and then bridged, cut
// or drifted, transaction by transaction as the ADS1115 answers, gives the
// documented reading within the hold and 100 ms; a bus that stops
// answering is a fault, not silence.
func TestADS1115PlaybackLoop(t *testing.T) {
	for _, c := range []struct {
		name   string
		ohms   float64
		level  controller.Level
		tamper bool
		detail string
		drift  controller.Drift
	}{
		{"bridged", 0, controller.LevelUnknown, true, "wire bridged", controller.DriftNone},
		{"cut", math.Inf(1), controller.LevelUnknown, true, "wire cut", controller.DriftNone},
		{"masked", 15000, controller.LevelUnknown, true, "masked", controller.DriftNone},
		{"drifted low", 850, controller.LevelInactive, false, "", controller.DriftLow},
		{"pressed", 2000, controller.LevelActive, false, "", controller.DriftNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := devicetest.LoopSpec()
				loop := spec.Inputs[controller.InputPanic][0]
				spec.Inputs = map[controller.Input][]device.LineSpec{controller.InputPanic: {loop}}
				spec.Outputs = nil
				const rest, then = 100, 100 // reads, 10 ms apart
				var ops []i2ctest.IO
				for range rest {
					ops = append(ops, conversion(0x48, 0, loop.Loop.Divider.Volts(1000))...)
				}
				for range then {
					ops = append(ops, conversion(0x48, 0, loop.Loop.Divider.Volts(c.ohms))...)
				}
				adcs := &playbackADCs{bus: &i2ctest.Playback{Ops: ops, DontPanic: true}}
				b, err := OpenWith(spec, nil, adcs, nil)
				require.NoError(t, err)
				out := make(chan device.Reading, 8)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				start := wallclock.Now()
				go func() { done <- b.Run(ctx, out) }()
				rd := <-out
				require.Equal(t, controller.LevelInactive, rd.Level, "at rest: %+v", rd)
				rd = <-out
				got := wallclock.Since(start)
				assert.Equal(t, c.level, rd.Level)
				assert.Equal(t, c.tamper, rd.Tamper)
				assert.Equal(t, c.detail, rd.Detail)
				assert.Equal(t, c.drift, rd.Drift)
				changedAt := rest * devicetest.LoopEvery
				assert.GreaterOrEqual(t, got, changedAt+devicetest.LoopHold, "held first")
				assert.LessOrEqual(t, got, changedAt+devicetest.LoopHold+100*time.Millisecond, "within the hold and 100 ms")
				// The script ends: the bus answers no more, which is a fault.
				rd = <-out
				assert.Equal(t, controller.LevelUnknown, rd.Level)
				assert.False(t, rd.Tamper)
				assert.Contains(t, rd.Detail, device.DetailReadFailed+"ADS1115 0x48 channel 0")
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)
				require.NoError(t, b.Close())
				assert.True(t, adcs.closed, "Close releases the buses")
			})
		})
	}
}

// fakeADS1115 is an ADS1115 on an I²C bus as the datasheet describes its
// registers: a config write with OS starts a single-shot conversion of the
// input MUX selects at the PGA's range; the conversion register holds its
// result; the config reads back with OS set. The volts at each input, and
// inputs whose conversions fail (the bus NACKs), are set by the test.
type fakeADS1115 struct {
	mu    sync.Mutex
	cfg   uint16
	conv  uint16
	volts [4]float64
	fail  [4]bool
}

func (f *fakeADS1115) String() string                  { return "fake ADS1115" }
func (f *fakeADS1115) SetSpeed(physic.Frequency) error { return nil }
func (f *fakeADS1115) set(ch int, volts float64)       { f.mu.Lock(); f.volts[ch] = volts; f.mu.Unlock() }
func (f *fakeADS1115) setFail(ch int, fail bool)       { f.mu.Lock(); f.fail[ch] = fail; f.mu.Unlock() }
func (f *fakeADS1115) input() int                      { return int(f.cfg>>12&7) - 4 }
func (f *fakeADS1115) Tx(addr uint16, w, r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr != 0x48 || len(w) == 0 {
		return errors.New("i2c: no answer")
	}
	if in := f.input(); w[0] != 0x01 || len(w) != 3 {
		if in >= 0 && in < 4 && f.fail[in] {
			return errors.New("i2c: NACK")
		}
	}
	switch {
	case w[0] == 0x01 && len(w) == 3:
		f.cfg = binary.BigEndian.Uint16(w[1:])
		in := f.input()
		if in < 0 || in > 3 {
			return errors.New("fake ADS1115: differential inputs not modelled")
		}
		if f.fail[in] {
			return errors.New("i2c: NACK")
		}
		fsr := map[uint16]float64{0: 6.144, 1: 4.096, 2: 2.048, 3: 1.024, 4: 0.512, 5: 0.256}[f.cfg>>9&7]
		f.conv = uint16(int16(math.Max(-32768, math.Min(32767, math.Round(f.volts[in]/fsr*32768)))))
	case w[0] == 0x00 && len(r) == 2:
		binary.BigEndian.PutUint16(r, f.conv)
	case w[0] == 0x01 && len(r) == 2:
		binary.BigEndian.PutUint16(r, f.cfg|0x8000)
	default:
		return errors.New("fake ADS1115: unexpected transaction")
	}
	return nil
}

// fakeADCs opens the channels of one fake converter, through one driver
// as HostADCs does (one conversion at a time).
type fakeADCs struct {
	dev *fakeADS1115
	ads *ADS1115
}

func (f *fakeADCs) Open(ch device.ADCChannel) (device.AnalogLine, error) {
	if f.ads == nil {
		a, err := NewADS1115(f.dev, ch.Address)
		if err != nil {
			return nil, err
		}
		f.ads = a
	}
	return f.ads.Channel(ch.Channel)
}
func (*fakeADCs) Close() error { return nil }

// loopHarness is the GPIO harness with the panic points on a fake ADS1115.
type loopHarness struct {
	*harness
	adc *fakeADS1115
}

func (h loopHarness) SetRaw(in controller.Input, i int, high, edge bool) {
	if h.spec.Inputs[in][i].Loop == nil {
		h.harness.SetRaw(in, i, high, edge)
	}
}

func (h loopHarness) FailReads(in controller.Input, i int, fail bool) {
	if l := h.spec.Inputs[in][i].Loop; l != nil {
		h.adc.setFail(l.ADC.Channel, fail)
		return
	}
	h.harness.FailReads(in, i, fail)
}

func (h loopHarness) SetOhms(in controller.Input, i int, ohms float64) {
	l := h.spec.Inputs[in][i].Loop
	h.adc.set(l.ADC.Channel, l.Divider.Volts(ohms))
}

func (h loopHarness) FailLoop(in controller.Input, i int, fail bool) {
	h.adc.setFail(h.spec.Inputs[in][i].Loop.ADC.Channel, fail)
}

func TestLoopBehaviour(t *testing.T) {
	devicetest.RunLoops(t, func(t *testing.T, spec device.Spec) devicetest.LoopHarness {
		chip, pins := fakeChip("gpiochip3", "roomtest", 16, nil)
		adc := &fakeADS1115{}
		b, err := OpenWith(spec, []Chip{chip}, &fakeADCs{dev: adc}, nil)
		require.NoError(t, err)
		return loopHarness{harness: &harness{b: b, pins: pins, spec: spec}, adc: adc}
	})
}
