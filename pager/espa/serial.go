package espa

import (
	"fmt"
	"slices"
)

// Parity of a serial character.
type Parity string

// The parities.
const (
	ParityEven Parity = "even"
	ParityOdd  Parity = "odd"
	ParityNone Parity = "none"
)

// Serial is the line's character format and speed.
type Serial struct {
	Baud     int    `yaml:"baud"`
	DataBits int    `yaml:"data_bits"`
	Parity   Parity `yaml:"parity"`
	StopBits int    `yaml:"stop_bits"`
}

// DefaultSerial is the character format of [G 2.1] (seven data bits, even
// parity, two stop bits) at 9600 baud, the fastest rate of [G 5.5]. A
// paging system set to one stop bit reads it too: a second stop bit is only
// a longer pause between characters.
var DefaultSerial = Serial{Baud: 9600, DataBits: 7, Parity: ParityEven, StopBits: 2}

// Rates are the baud rates OpenSerial sets.
var Rates = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400}

// Validate names the first bad field of s.
func (s Serial) Validate() error {
	switch {
	case !slices.Contains(Rates, s.Baud):
		return fmt.Errorf("baud %d: want one of %v", s.Baud, Rates)
	case s.DataBits != 7 && s.DataBits != 8:
		return fmt.Errorf("data_bits %d: want 7 or 8", s.DataBits)
	case s.Parity != ParityEven && s.Parity != ParityOdd && s.Parity != ParityNone:
		return fmt.Errorf("parity %q: want even, odd or none", s.Parity)
	case s.StopBits != 1 && s.StopBits != 2:
		return fmt.Errorf("stop_bits %d: want 1 or 2", s.StopBits)
	}
	return nil
}

// String is the usual short form, 9600 7E2.
func (s Serial) String() string {
	return fmt.Sprintf("%d %d%c%d", s.Baud, s.DataBits, s.Parity[0]-'a'+'A', s.StopBits)
}
