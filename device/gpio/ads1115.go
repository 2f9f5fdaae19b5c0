package gpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/analog"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ads1x15"

	"github.com/roomd/roomd/device"
)

// ADS1115 registers and config bits (TI SBAS444, 9.6): the pointer byte
// selects the conversion (0) or config (1) register; in the config, OS
// (bit 15) reads 1 once a single-shot conversion is done, MUX (bits 14-12)
// is 100+channel for a single-ended input.
const (
	adsConversion = 0x00
	adsConfig     = 0x01
	adsOSIdle     = 0x8000
	adsMuxShift   = 12
	adsMuxMask    = 0x7
	// ADSDataRate is the rate roomd asks of an ADS1115: its fastest, so
	// that four loops read every 20 ms leave the bus idle half the time.
	ADSDataRate = 860 * physic.Hertz
	// ADSFullScale is the range roomd reads loops at (PGA ±4.096 V): it
	// holds a 3.3 V supply.
	ADSFullScale = 4096 * physic.MilliVolt
)

// ADS1115 is one ADS1115 converter on an I²C bus, read in single-shot
// conversions through periph's ads1x15 driver. Its channels satisfy
// device.AnalogLine.
//
// The driver starts a conversion, sleeps one sample period and reads the
// conversion register: it does not check that the conversion finished,
// and an ADS1115 may convert up to 10% slower than its nominal rate, or
// reset and lose its configuration (a brown-out). So after every read
// roomd reads the config register back: the conversion must be done (OS
// set) and the multiplexer must still select the channel asked for;
// otherwise it waits a sample period and looks once more, and then the
// read fails. A failed read is never a level (device.AnalogLine).
type ADS1115 struct {
	dev *ads1x15.Dev
	reg i2c.Dev

	// turn lets one conversion at a time, with its check, use the
	// converter (a channel rather than a mutex, so that a test's fake clock
	// sees a waiting reader as blocked).
	turn chan struct{}
}

// NewADS1115 returns the converter at addr on bus.
func NewADS1115(bus i2c.Bus, addr uint16) (*ADS1115, error) {
	dev, err := ads1x15.NewADS1115(bus, &ads1x15.Opts{I2cAddress: addr})
	if err != nil {
		return nil, fmt.Errorf("ADS1115 at 0x%02x: %w", addr, err)
	}
	return &ADS1115{dev: dev, reg: i2c.Dev{Bus: bus, Addr: addr}, turn: make(chan struct{}, 1)}, nil
}

// Channel returns single-ended input ch (0 to 3), read at ADSFullScale and
// ADSDataRate.
func (a *ADS1115) Channel(ch int) (device.AnalogLine, error) {
	chans := []ads1x15.Channel{ads1x15.Channel0, ads1x15.Channel1, ads1x15.Channel2, ads1x15.Channel3}
	if ch < 0 || ch >= len(chans) {
		return nil, fmt.Errorf("ADS1115 at 0x%02x: no channel %d (0 to 3)", a.reg.Addr, ch)
	}
	pin, err := a.dev.PinForChannel(chans[ch], ADSFullScale, ADSDataRate, ads1x15.SaveEnergy)
	if err != nil {
		return nil, fmt.Errorf("ADS1115 at 0x%02x channel %d: %w", a.reg.Addr, ch, err)
	}
	return &adsChannel{a: a, pin: pin, ch: ch}, nil
}

type adsChannel struct {
	a   *ADS1115
	pin ads1x15.PinADC
	ch  int
}

// Read converts once and checks the conversion (see ADS1115).
func (c *adsChannel) Read() (analog.Sample, error) {
	c.a.turn <- struct{}{}
	defer func() { <-c.a.turn }()
	s, err := c.pin.Read()
	if err == nil {
		err = c.check()
		if errors.Is(err, errNotDone) {
			// Slow by a few percent: wait one more period, then the result.
			time.Sleep(ADSDataRate.Period())
			if err = c.check(); err == nil {
				s, err = c.conversion()
			}
		}
	}
	if err != nil {
		return analog.Sample{}, fmt.Errorf("ADS1115 0x%02x channel %d: %w", c.a.reg.Addr, c.ch, err)
	}
	return s, nil
}

// conversion reads the conversion register.
func (c *adsChannel) conversion() (analog.Sample, error) {
	var b [2]byte
	if err := c.a.reg.Tx([]byte{adsConversion}, b[:]); err != nil {
		return analog.Sample{}, fmt.Errorf("read conversion: %w", err)
	}
	raw := int16(binary.BigEndian.Uint16(b[:]))
	return analog.Sample{Raw: int32(raw), V: physic.ElectricPotential(raw) * ADSFullScale / (1 << 15)}, nil
}

var errNotDone = errors.New("conversion not finished when read")

// check reads the config register back: done, and still this channel.
func (c *adsChannel) check() error {
	var b [2]byte
	if err := c.a.reg.Tx([]byte{adsConfig}, b[:]); err != nil {
		return fmt.Errorf("read config back: %w", err)
	}
	cfg := binary.BigEndian.Uint16(b[:])
	if want := uint16(4 + c.ch); cfg>>adsMuxShift&adsMuxMask != want {
		return fmt.Errorf("config 0x%04x selects input %d, not %d: the converter lost its configuration (reset?)", cfg, cfg>>adsMuxShift&adsMuxMask, want)
	}
	if cfg&adsOSIdle == 0 {
		return errNotDone
	}
	return nil
}
