package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/controller"
)

// MaxControlSize is the largest control payload ParseControl accepts.
const MaxControlSize = 1024

// DefaultBounceEvery is the interval of a bounce control without every_ms.
const DefaultBounceEvery = 10 * time.Millisecond

// Control is one message of the simulator's control surface
// ({base}/{room}/sim/set), for example
//
//	{"door":"open"}  {"lock":"locked"}  {"presence":true}  {"panic":true}
//	{"staff":false}  {"fault":"door"}   {"heal":"door"}
//	{"bounce":{"input":"door","to":"open","count":5,"every_ms":10}}
//
// Several fields may be combined; Apply runs heal, then the levels, then
// fault, then bounce.
type Control struct {
	// Levels sets inputs to levels; LevelUnknown faults the input.
	Levels map[controller.Input]controller.Level
	// Fault makes reads of an input fail; zero means none.
	Fault controller.Input
	// Heal makes reads of an input work again; zero means none.
	Heal controller.Input
	// Bounce starts a contact bounce; nil means none.
	Bounce *BounceControl
}

// BounceControl is a burst of Count raw changes, Every apart, ending at To.
type BounceControl struct {
	Input controller.Input
	To    controller.Level
	Count int
	Every time.Duration
}

type wireControl struct {
	Door     json.RawMessage `json:"door,omitempty"`
	Lock     json.RawMessage `json:"lock,omitempty"`
	Presence json.RawMessage `json:"presence,omitempty"`
	Panic    json.RawMessage `json:"panic,omitempty"`
	Staff    json.RawMessage `json:"staff,omitempty"`
	Fault    *string         `json:"fault,omitempty"`
	Heal     *string         `json:"heal,omitempty"`
	Bounce   *wireBounce     `json:"bounce,omitempty"`
}

type wireBounce struct {
	Input   string          `json:"input"`
	To      json.RawMessage `json:"to"`
	Count   int             `json:"count"`
	EveryMS int             `json:"every_ms,omitempty"`
}

func (w *wireControl) field(in controller.Input) *json.RawMessage {
	switch in {
	case controller.InputDoor:
		return &w.Door
	case controller.InputLock:
		return &w.Lock
	case controller.InputPresence:
		return &w.Presence
	case controller.InputPanic:
		return &w.Panic
	case controller.InputStaff:
		return &w.Staff
	}
	return nil
}

// acceptsBool reports whether input in accepts true/false as well as their words.
func acceptsBool(in controller.Input) bool {
	return in == controller.InputPresence || in == controller.InputPanic || in == controller.InputStaff
}

// ParseControl decodes a control payload. It is strict: at most
// MaxControlSize bytes, one JSON object, no unknown fields, at least one
// field, every value valid. The error names the field at fault.
func ParseControl(payload []byte) (Control, error) {
	if len(payload) > MaxControlSize {
		return Control{}, fmt.Errorf("sim control: %d bytes, at most %d", len(payload), MaxControlSize)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var w wireControl
	if err := dec.Decode(&w); err != nil {
		return Control{}, fmt.Errorf("sim control: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Control{}, errors.New("sim control: data after the JSON object")
	}
	var c Control
	for _, in := range controller.Inputs {
		raw := *w.field(in)
		if raw == nil {
			continue
		}
		l, err := parseLevel(in, raw)
		if err != nil {
			return Control{}, fmt.Errorf("sim control: %w", err)
		}
		if c.Levels == nil {
			c.Levels = map[controller.Input]controller.Level{}
		}
		c.Levels[in] = l
	}
	var err error
	if w.Fault != nil {
		if c.Fault, err = controller.ParseInput(*w.Fault); err != nil {
			return Control{}, fmt.Errorf("sim control: fault: %w", err)
		}
	}
	if w.Heal != nil {
		if c.Heal, err = controller.ParseInput(*w.Heal); err != nil {
			return Control{}, fmt.Errorf("sim control: heal: %w", err)
		}
	}
	if w.Bounce != nil {
		b, err := parseBounce(w.Bounce)
		if err != nil {
			return Control{}, fmt.Errorf("sim control: bounce: %w", err)
		}
		c.Bounce = &b
	}
	if c.Levels == nil && c.Fault == 0 && c.Heal == 0 && c.Bounce == nil {
		return Control{}, errors.New("sim control: empty (want door, lock, presence, panic, staff, fault, heal or bounce)")
	}
	return c, nil
}

func parseLevel(in controller.Input, raw json.RawMessage) (controller.Level, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return 0, fmt.Errorf("input %s: null level", in)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		l, err := in.ParseLevel(s)
		if err != nil {
			return 0, err
		}
		return l, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if !acceptsBool(in) {
			return 0, fmt.Errorf("input %s: want %q or %q, not a boolean", in,
				in.Describe(controller.LevelActive), in.Describe(controller.LevelInactive))
		}
		if b {
			return controller.LevelActive, nil
		}
		return controller.LevelInactive, nil
	}
	return 0, fmt.Errorf("input %s: want %q, %q or \"unknown\", got %s", in,
		in.Describe(controller.LevelActive), in.Describe(controller.LevelInactive), truncate(raw))
}

func parseBounce(w *wireBounce) (BounceControl, error) {
	in, err := controller.ParseInput(w.Input)
	if err != nil {
		return BounceControl{}, err
	}
	if w.To == nil {
		return BounceControl{}, errors.New(`missing "to"`)
	}
	to, err := parseLevel(in, w.To)
	if err != nil {
		return BounceControl{}, err
	}
	if to == controller.LevelUnknown {
		return BounceControl{}, errors.New(`"to" must be a known level`)
	}
	if w.Count < 1 || w.Count > MaxBounceCount {
		return BounceControl{}, fmt.Errorf("count %d outside 1..%d", w.Count, MaxBounceCount)
	}
	every := DefaultBounceEvery
	if w.EveryMS != 0 {
		every = time.Duration(w.EveryMS) * time.Millisecond
		if w.EveryMS < 0 || every > MaxBounceEvery {
			return BounceControl{}, fmt.Errorf("every_ms %d outside 1..%d", w.EveryMS, MaxBounceEvery.Milliseconds())
		}
	}
	return BounceControl{Input: in, To: to, Count: w.Count, Every: every}, nil
}

func truncate(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return s
}

// Encode renders c as a control payload that ParseControl reads back as c
// (levels as words, every_ms in whole milliseconds).
func (c Control) Encode() []byte {
	var w wireControl
	for in, l := range c.Levels {
		if f := w.field(in); f != nil {
			*f = json.RawMessage(strconv.Quote(in.Describe(l)))
		}
	}
	if c.Fault != 0 {
		s := c.Fault.String()
		w.Fault = &s
	}
	if c.Heal != 0 {
		s := c.Heal.String()
		w.Heal = &s
	}
	if b := c.Bounce; b != nil {
		w.Bounce = &wireBounce{Input: b.Input.String(), To: json.RawMessage(strconv.Quote(b.Input.Describe(b.To))),
			Count: b.Count, EveryMS: int(b.Every.Milliseconds())}
	}
	out, _ := json.Marshal(w) // only strings, numbers and raw quoted strings: cannot fail
	return out
}

// Apply carries out c on the room: heal, levels (in controller.Inputs
// order), fault, bounce. It stops at the first error, which names the input.
func (r *Room) Apply(c Control) error {
	if c.Heal != 0 {
		if err := r.Heal(c.Heal); err != nil {
			return err
		}
	}
	for _, in := range controller.Inputs {
		l, ok := c.Levels[in]
		if !ok {
			continue
		}
		if err := r.SetInput(in, l); err != nil {
			return err
		}
	}
	if c.Fault != 0 {
		if err := r.Fault(c.Fault); err != nil {
			return err
		}
	}
	if b := c.Bounce; b != nil {
		return r.Bounce(b.Input, b.To, b.Count, b.Every)
	}
	return nil
}

// EncodeOutputs renders the outputs' modes as published by the simulator,
// every output in controller.Outputs order, a missing one as "off":
// {"in_use":"on","warning":"blink","alarm_light":"panic","alarm_sounder":"off","reassurance":"on"}.
func EncodeOutputs(m map[controller.Output]controller.Mode) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, o := range controller.Outputs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", o.String(), m[o].String())
	}
	b.WriteByte('}')
	return b.Bytes()
}
