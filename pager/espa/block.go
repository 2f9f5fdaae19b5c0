package espa

import (
	"errors"
	"fmt"
	"strings"
)

// The transmission control characters [G 2.3.1] and the information
// separators [G 2.3.2] of IA5.
const (
	SOH byte = 0x01 // start of header
	STX byte = 0x02 // start of text: ends the header
	ETX byte = 0x03 // end of text: the BCC follows
	EOT byte = 0x04 // end of transmission: control returns to the control station
	ENQ byte = 0x05 // enquiry: after an address, a poll or a selection
	ACK byte = 0x06 // positive answer
	NAK byte = 0x15 // negative answer
	RS  byte = 0x1E // record separator
	US  byte = 0x1F // unit separator: between a record's identifier and its data
)

// Header is the type of a data block [G 4.2].
type Header byte

// The headers of [G 4.2].
const (
	HeaderCallToPager    Header = '1'
	HeaderStatusInfo     Header = '2'
	HeaderStatusRequest  Header = '3'
	HeaderCallSubscriber Header = '4'
	HeaderOther          Header = '5'
)

// The data identifiers of the records a call carries [G 4.3].
const (
	RecordCallAddress = "1"
	RecordMessage     = "2"
	RecordBeep        = "3"
	RecordPriority    = "6"
)

// Priority is record 6 of a call.
type Priority uint8

// The priorities.
const (
	PriorityNormal Priority = 1 // '1'
	PriorityHigh   Priority = 2 // '2': an alarm
)

func (p Priority) String() string {
	switch p {
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// ParsePriority reads "normal" or "high".
func ParsePriority(s string) (Priority, error) {
	switch s {
	case "normal":
		return PriorityNormal, nil
	case "high":
		return PriorityHigh, nil
	}
	return 0, fmt.Errorf("priority %q: want normal or high", s)
}

// MaxAddress is the longest call address this package sends.
const MaxAddress = 16

// MaxMessage is the longest display message this package sends. Paging
// systems truncate long messages to what their handsets show; roompager's
// config keeps messages much shorter.
const MaxMessage = 128

// Call is a call to pager: what one data block with header '1' carries.
type Call struct {
	Address  string   // record 1: digits
	Message  string   // record 2: printable IA5 (0x20 to 0x7E)
	Beep     uint8    // record 3, 1 to 9; 0 leaves the record out (the paging system's default)
	Priority Priority // record 6
}

// Validate says what a paging system would not accept in c.
func (c Call) Validate() error {
	if c.Address == "" || len(c.Address) > MaxAddress {
		return fmt.Errorf("call address %q: want 1 to %d digits", c.Address, MaxAddress)
	}
	for i := 0; i < len(c.Address); i++ {
		if c.Address[i] < '0' || c.Address[i] > '9' {
			return fmt.Errorf("call address %q: want digits only", c.Address)
		}
	}
	if len(c.Message) > MaxMessage {
		return fmt.Errorf("message of %d characters: at most %d", len(c.Message), MaxMessage)
	}
	for i := 0; i < len(c.Message); i++ {
		if c.Message[i] < 0x20 || c.Message[i] > 0x7E {
			return fmt.Errorf("message %q: character %#x at %d is not printable IA5", c.Message, c.Message[i], i)
		}
	}
	if c.Beep > 9 {
		return fmt.Errorf("beep coding %d: want 1 to 9, or 0 for none", c.Beep)
	}
	if c.Priority != PriorityNormal && c.Priority != PriorityHigh {
		return fmt.Errorf("priority %d: want 1 (normal) or 2 (high)", c.Priority)
	}
	return nil
}

// Record is one record of a data block.
type Record struct {
	ID   string // the data identifier
	Data string
}

// Block is a data block: a header and its records.
type Block struct {
	Header  Header
	Records []Record
}

// Get returns the data of the first record with identifier id.
func (b Block) Get(id string) (string, bool) {
	for _, r := range b.Records {
		if r.ID == id {
			return r.Data, true
		}
	}
	return "", false
}

// Records returns the records of c in the order of [G 4.3].
func (c Call) Records() []Record {
	rs := []Record{{RecordCallAddress, c.Address}, {RecordMessage, c.Message}}
	if c.Beep != 0 {
		rs = append(rs, Record{RecordBeep, string(rune('0' + c.Beep))})
	}
	return append(rs, Record{RecordPriority, string(rune('0' + c.Priority))})
}

// EncodeCall returns the data block of c, BCC included.
func EncodeCall(c Call) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("encode call: %w", err)
	}
	return Block{Header: HeaderCallToPager, Records: c.Records()}.Encode(), nil
}

// Encode returns SOH header STX records ETX BCC. The caller keeps control
// characters out of identifiers and data.
func (b Block) Encode() []byte {
	out := []byte{SOH, byte(b.Header), STX}
	for i, r := range b.Records {
		if i > 0 {
			out = append(out, RS)
		}
		out = append(out, r.ID...)
		out = append(out, US)
		out = append(out, r.Data...)
	}
	out = append(out, ETX)
	return append(out, BCC(out[1:]))
}

// BCC is the block check character of the characters after SOH up to and
// including ETX: their modulo-2 binary sum, so that the longitudinal
// parity of the block with its BCC is even [G 4.1].
func BCC(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// ErrBCC: a block whose check character does not match.
var ErrBCC = errors.New("block check character does not match")

// DecodeBlock reads a block from SOH to its BCC.
func DecodeBlock(b []byte) (Block, error) {
	if len(b) < 5 || b[0] != SOH || b[len(b)-2] != ETX {
		return Block{}, fmt.Errorf("decode block: not SOH ... ETX BCC")
	}
	if BCC(b[1:len(b)-1]) != b[len(b)-1] {
		return Block{}, fmt.Errorf("decode block: %w", ErrBCC)
	}
	body := string(b[1 : len(b)-2])
	head, text, ok := strings.Cut(body, string(STX))
	if !ok || len(head) != 1 {
		return Block{}, fmt.Errorf("decode block: want a one-character header before STX")
	}
	blk := Block{Header: Header(head[0])}
	if text == "" {
		return blk, nil
	}
	for _, rec := range strings.Split(text, string(RS)) {
		id, data, ok := strings.Cut(rec, string(US))
		if !ok {
			return Block{}, fmt.Errorf("decode block: record %q has no US", rec)
		}
		blk.Records = append(blk.Records, Record{ID: id, Data: data})
	}
	return blk, nil
}
