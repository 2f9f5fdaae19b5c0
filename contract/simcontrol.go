package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/controller"
)

// MaxSimControl is the largest control payload DecodeSimControl accepts.
const MaxSimControl = 1024

// Maximum burst a bounce control asks for.
const (
	MaxBounceCount = 100
	MaxBounceEvery = 10 * time.Second
)

// DefaultBounceEvery is the interval of a bounce control without every_ms.
const DefaultBounceEvery = 10 * time.Millisecond

// SimControl is one message of the simulator's control surface
// ({base}/{room}/sim/set), for example
//
//	{"door":"open"}  {"lock":"locked"}  {"presence":true}  {"panic":true}
//	{"staff":false}  {"fault":"door"}   {"heal":"door"}
//	{"points":{"bed":"pressed","toilet":false}}
//	{"fault":"panic:toilet"}  {"heal":"panic:toilet"}
//	{"stick":"alarm_sounder"}  {"unstick":"alarm_sounder"}
//	{"bounce":{"input":"door","to":"open","count":5,"every_ms":10}}
//	{"wire":{"panic:bed":"bridged","door":"cut"}}  {"wire":{"panic:bed":"sound"}}
//
// "panic" sets every panic point; "points" sets named ones. "stick" makes
// the relay contact that reads an output back (its feedback line) hold its
// level, as a stuck or welded relay does; "unstick" makes it follow again.
// Several fields may be combined; the simulator applies heal and unstick, then the
// levels, then the points, then fault, then wire, then stick, then bounce.
type SimControl struct {
	// Levels sets inputs to levels; LevelUnknown faults the input. Panic
	// sets every panic point.
	Levels map[controller.Input]controller.Level
	// Points sets panic points, by name, to levels; LevelUnknown faults the point.
	Points map[string]controller.Level
	// Fault makes reads of an input fail (of one panic point, with
	// FaultPoint); zero means none.
	Fault      controller.Input
	FaultPoint string
	// Heal makes reads of an input (of one panic point, with HealPoint)
	// work again; zero means none.
	Heal      controller.Input
	HealPoint string
	// Stick makes the feedback contact of an output hold its level; zero
	// means none. Unstick makes one follow again.
	Stick, Unstick controller.Output
	// Bounce starts a contact bounce; nil means none.
	Bounce *SimBounce
	// Wires does to lines' wires what a person could, by target (an
	// input role, or "panic:POINT" for one panic point; SimTarget): bridge
	// them, cut them, mask the detector, make the loop drift, or mend them.
	Wires map[string]SimWire
}

// SimWire is what the simulator does to a line's wires ("wire").
type SimWire string

// The wire conditions.
const (
	WireSound     SimWire = "sound"      // as installed (mends the others)
	WireBridged   SimWire = "bridged"    // a wire or a foil across the contact
	WireCut       SimWire = "cut"        // the loop cut
	WireMasked    SimWire = "masked"     // a detector covered (its anti-masking resistor)
	WireDriftLow  SimWire = "drift_low"  // the loop's resistance below its band at rest
	WireDriftHigh SimWire = "drift_high" // the loop's resistance above its band at rest
)

// SimWires lists the wire conditions.
var SimWires = []SimWire{WireSound, WireBridged, WireCut, WireMasked, WireDriftLow, WireDriftHigh}

// SimTarget names an input line as "wire" and "fault" do: the role
// ("door"), or the panic input and its point ("panic:bed").
func SimTarget(in controller.Input, point string) string { return simTarget(in, point) }

// ParseSimTarget reads a target of SimTarget.
func ParseSimTarget(s string) (controller.Input, string, error) { return parseSimTarget(s) }

// SimBounce is a burst of Count raw changes, Every apart, ending at To.
type SimBounce struct {
	Input controller.Input
	To    controller.Level
	Count int
	Every time.Duration
}

type wireSimControl struct {
	Door     json.RawMessage            `json:"door,omitempty"`
	Lock     json.RawMessage            `json:"lock,omitempty"`
	Presence json.RawMessage            `json:"presence,omitempty"`
	Panic    json.RawMessage            `json:"panic,omitempty"`
	Staff    json.RawMessage            `json:"staff,omitempty"`
	Points   map[string]json.RawMessage `json:"points,omitempty"`
	Fault    *string                    `json:"fault,omitempty"`
	Heal     *string                    `json:"heal,omitempty"`
	Stick    *string                    `json:"stick,omitempty"`
	Unstick  *string                    `json:"unstick,omitempty"`
	Bounce   *wireSimBounce             `json:"bounce,omitempty"`
	Wire     map[string]string          `json:"wire,omitempty"`
}

type wireSimBounce struct {
	Input   string          `json:"input"`
	To      json.RawMessage `json:"to"`
	Count   int             `json:"count"`
	EveryMS int             `json:"every_ms,omitempty"`
}

func (w *wireSimControl) field(in controller.Input) *json.RawMessage {
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

// simAcceptsBool reports whether input in accepts true/false as well as their words.
func simAcceptsBool(in controller.Input) bool {
	return in == controller.InputPresence || in == controller.InputPanic || in == controller.InputStaff
}

// DecodeSimControl decodes a control payload. It is strict: at most
// MaxSimControl bytes, one JSON object, no unknown fields, at least one
// field, every value valid. The error names the field at fault.
func DecodeSimControl(payload []byte) (SimControl, error) {
	if len(payload) > MaxSimControl {
		return SimControl{}, fmt.Errorf("sim control: %d bytes, at most %d", len(payload), MaxSimControl)
	}
	if err := exactKeys(payload); err != nil {
		return SimControl{}, fmt.Errorf("sim control: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var w wireSimControl
	if err := dec.Decode(&w); err != nil {
		return SimControl{}, fmt.Errorf("sim control: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return SimControl{}, errors.New("sim control: data after the JSON object")
	}
	var c SimControl
	for _, in := range controller.Inputs {
		raw := *w.field(in)
		if raw == nil {
			continue
		}
		l, err := parseSimLevel(in, raw)
		if err != nil {
			return SimControl{}, fmt.Errorf("sim control: %w", err)
		}
		if c.Levels == nil {
			c.Levels = map[controller.Input]controller.Level{}
		}
		c.Levels[in] = l
	}
	if w.Points != nil && len(w.Points) == 0 {
		return SimControl{}, errors.New("sim control: points: empty (want e.g. {\"bed\":\"pressed\"})")
	}
	for name, raw := range w.Points {
		if !controller.ValidPointName(name) {
			return SimControl{}, fmt.Errorf("sim control: points: %q is not a point name", name)
		}
		l, err := parseSimLevel(controller.InputPanic, raw)
		if err != nil {
			return SimControl{}, fmt.Errorf("sim control: points: %s: %w", name, err)
		}
		if c.Points == nil {
			c.Points = map[string]controller.Level{}
		}
		c.Points[name] = l
	}
	var err error
	if w.Fault != nil {
		if c.Fault, c.FaultPoint, err = parseSimTarget(*w.Fault); err != nil {
			return SimControl{}, fmt.Errorf("sim control: fault: %w", err)
		}
	}
	if w.Heal != nil {
		if c.Heal, c.HealPoint, err = parseSimTarget(*w.Heal); err != nil {
			return SimControl{}, fmt.Errorf("sim control: heal: %w", err)
		}
	}
	if w.Stick != nil {
		if c.Stick, err = controller.ParseOutput(*w.Stick); err != nil {
			return SimControl{}, fmt.Errorf("sim control: stick: %w", err)
		}
	}
	if w.Unstick != nil {
		if c.Unstick, err = controller.ParseOutput(*w.Unstick); err != nil {
			return SimControl{}, fmt.Errorf("sim control: unstick: %w", err)
		}
	}
	if w.Bounce != nil {
		b, err := parseSimBounce(w.Bounce)
		if err != nil {
			return SimControl{}, fmt.Errorf("sim control: bounce: %w", err)
		}
		c.Bounce = &b
	}
	if w.Wire != nil && len(w.Wire) == 0 {
		return SimControl{}, errors.New(`sim control: wire: empty (want e.g. {"panic:bed":"bridged"})`)
	}
	for target, cond := range w.Wire {
		in, point, err := parseSimTarget(target)
		if err != nil {
			return SimControl{}, fmt.Errorf("sim control: wire: %w", err)
		}
		if !slices.Contains(SimWires, SimWire(cond)) {
			return SimControl{}, fmt.Errorf("sim control: wire: %s: %q is not a wire condition (want sound, bridged, cut, masked, drift_low or drift_high)", target, cond)
		}
		if c.Wires == nil {
			c.Wires = map[string]SimWire{}
		}
		c.Wires[simTarget(in, point)] = SimWire(cond)
	}
	if c.Levels == nil && c.Points == nil && c.Fault == 0 && c.Heal == 0 && c.Stick == 0 && c.Unstick == 0 && c.Bounce == nil && c.Wires == nil {
		return SimControl{}, errors.New("sim control: empty (want door, lock, presence, panic, staff, points, fault, heal, stick, unstick, bounce or wire)")
	}
	return c, nil
}

// parseSimTarget reads the target of fault or heal: an input role ("door"),
// or one panic point ("panic:bed").
func parseSimTarget(s string) (controller.Input, string, error) {
	name, point, hasPoint := strings.Cut(s, ":")
	in, err := controller.ParseInput(name)
	if err != nil {
		return 0, "", err
	}
	if !hasPoint {
		return in, "", nil
	}
	if in != controller.InputPanic || !controller.ValidPointName(point) {
		return 0, "", fmt.Errorf("%q: only a panic point may follow the input (e.g. panic:bed)", s)
	}
	return in, point, nil
}

func simTarget(in controller.Input, point string) string {
	if point != "" {
		return in.String() + ":" + point
	}
	return in.String()
}

func parseSimLevel(in controller.Input, raw json.RawMessage) (controller.Level, error) {
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
		if !simAcceptsBool(in) {
			return 0, fmt.Errorf("input %s: want %q or %q, not a boolean", in,
				in.Describe(controller.LevelActive), in.Describe(controller.LevelInactive))
		}
		if b {
			return controller.LevelActive, nil
		}
		return controller.LevelInactive, nil
	}
	return 0, fmt.Errorf("input %s: want %q, %q or \"unknown\", got %s", in,
		in.Describe(controller.LevelActive), in.Describe(controller.LevelInactive), clip(raw))
}

func parseSimBounce(w *wireSimBounce) (SimBounce, error) {
	in, err := controller.ParseInput(w.Input)
	if err != nil {
		return SimBounce{}, err
	}
	if w.To == nil {
		return SimBounce{}, errors.New(`missing "to"`)
	}
	to, err := parseSimLevel(in, w.To)
	if err != nil {
		return SimBounce{}, err
	}
	if to == controller.LevelUnknown {
		return SimBounce{}, errors.New(`"to" must be a known level`)
	}
	if w.Count < 1 || w.Count > MaxBounceCount {
		return SimBounce{}, fmt.Errorf("count %d outside 1..%d", w.Count, MaxBounceCount)
	}
	every := DefaultBounceEvery
	if w.EveryMS != 0 {
		every = time.Duration(w.EveryMS) * time.Millisecond
		if w.EveryMS < 0 || every > MaxBounceEvery {
			return SimBounce{}, fmt.Errorf("every_ms %d outside 1..%d", w.EveryMS, MaxBounceEvery.Milliseconds())
		}
	}
	return SimBounce{Input: in, To: to, Count: w.Count, Every: every}, nil
}

func clip(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return s
}

// Encode renders c as a control payload that DecodeSimControl reads back as c
// (levels as words, every_ms in whole milliseconds).
func (c SimControl) Encode() []byte {
	var w wireSimControl
	for in, l := range c.Levels {
		if f := w.field(in); f != nil {
			*f = json.RawMessage(strconv.Quote(in.Describe(l)))
		}
	}
	for name, l := range c.Points {
		if w.Points == nil {
			w.Points = map[string]json.RawMessage{}
		}
		w.Points[name] = json.RawMessage(strconv.Quote(controller.InputPanic.Describe(l)))
	}
	if c.Fault != 0 {
		s := simTarget(c.Fault, c.FaultPoint)
		w.Fault = &s
	}
	if c.Heal != 0 {
		s := simTarget(c.Heal, c.HealPoint)
		w.Heal = &s
	}
	if c.Stick != 0 {
		s := c.Stick.String()
		w.Stick = &s
	}
	if c.Unstick != 0 {
		s := c.Unstick.String()
		w.Unstick = &s
	}
	for target, cond := range c.Wires {
		if w.Wire == nil {
			w.Wire = map[string]string{}
		}
		w.Wire[target] = string(cond)
	}
	if b := c.Bounce; b != nil {
		w.Bounce = &wireSimBounce{Input: b.Input.String(), To: json.RawMessage(strconv.Quote(b.Input.Describe(b.To))),
			Count: b.Count, EveryMS: int(b.Every.Milliseconds())}
	}
	out, _ := json.Marshal(w) // only strings, numbers and raw quoted strings: cannot fail
	return out
}

// EncodeSimOutputs renders the outputs' modes as published by the simulator,
// every output in controller.Outputs order, a missing one as "off":
// {"in_use":"on","warning":"blink","alarm_light":"panic","alarm_sounder":"off","reassurance":"on"}.
func EncodeSimOutputs(m map[controller.Output]controller.Mode) []byte {
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

// ParseSimAssignments reads the simulator's line syntax, KEY=VALUE fields, as
// a tester types them: door=open, lock=locked, presence=present (every
// sensor), panic=pressed (every point), panic:toilet=pressed (one point),
// staff=pressed, fault=door, fault=panic:toilet, heal=door, stick=OUTPUT,
// unstick=OUTPUT, bounce=INPUT:TO:COUNT[:EVERY] (e.g.
// bounce=door:open:5:100ms) and wire:TARGET=CONDITION (wire:panic:bed=bridged,
// wire:door=cut, wire:panic:bed=sound). Levels are the input's words; presence,
// panic and staff take true/false and on/off too. A field starting with {
// is taken as a whole control payload. The result has been through
// DecodeSimControl: it is exactly what the control surface accepts.
func ParseSimAssignments(fields []string) (SimControl, error) {
	if len(fields) == 1 && strings.HasPrefix(strings.TrimSpace(fields[0]), "{") {
		return DecodeSimControl([]byte(fields[0]))
	}
	if len(fields) == 0 {
		return SimControl{}, errors.New("sim: want KEY=VALUE, e.g. door=open")
	}
	w := map[string]any{}
	points := map[string]any{}
	wires := map[string]any{}
	value := func(v string) any {
		switch v {
		case "true", "on":
			return true
		case "false", "off":
			return false
		}
		return v
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" || v == "" {
			return SimControl{}, fmt.Errorf("sim: %q is not KEY=VALUE (e.g. door=open, panic:toilet=pressed)", f)
		}
		if target, isWire := strings.CutPrefix(k, "wire:"); isWire {
			if _, dup := wires[target]; dup {
				return SimControl{}, fmt.Errorf("sim: wire of %s given twice", target)
			}
			wires[target] = v
			continue
		}
		if name, point, isPoint := strings.Cut(k, ":"); isPoint {
			if name != "panic" {
				return SimControl{}, fmt.Errorf("sim: %q: only a panic point may follow a key (panic:POINT=pressed)", f)
			}
			if _, dup := points[point]; dup {
				return SimControl{}, fmt.Errorf("sim: panic point %s given twice", point)
			}
			points[point] = value(v)
			continue
		}
		if _, dup := w[k]; dup {
			return SimControl{}, fmt.Errorf("sim: key %s given twice", k)
		}
		switch k {
		case "door", "lock", "presence", "panic", "staff":
			w[k] = value(v)
		case "fault", "heal", "stick", "unstick":
			w[k] = v
		case "bounce":
			b, err := simBounceAssignment(v)
			if err != nil {
				return SimControl{}, fmt.Errorf("sim: bounce=%s: %w", v, err)
			}
			w[k] = b
		default:
			return SimControl{}, fmt.Errorf("sim: unknown key %q (keys: door, lock, presence, panic, panic:POINT, staff, fault, heal, stick, unstick, bounce, wire:TARGET)", k)
		}
	}
	if len(points) > 0 {
		w["points"] = points
	}
	if len(wires) > 0 {
		w["wire"] = wires
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return SimControl{}, fmt.Errorf("sim: %w", err)
	}
	return DecodeSimControl(payload)
}

// simBounceAssignment reads INPUT:TO:COUNT[:EVERY] into the JSON of a bounce.
func simBounceAssignment(v string) (map[string]any, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 3 || len(parts) > 4 {
		return nil, errors.New("want INPUT:TO:COUNT[:EVERY], e.g. door:open:5:100ms")
	}
	count, err := strconv.Atoi(parts[2])
	if err != nil {
		return nil, fmt.Errorf("count %q is not a number", parts[2])
	}
	b := map[string]any{"input": parts[0], "count": count}
	switch parts[1] {
	case "true", "on":
		b["to"] = true
	case "false", "off":
		b["to"] = false
	default:
		b["to"] = parts[1]
	}
	if len(parts) == 4 {
		every, err := time.ParseDuration(parts[3])
		if err != nil || every < time.Millisecond {
			return nil, fmt.Errorf("interval %q is not a duration of at least 1ms", parts[3])
		}
		b["every_ms"] = every.Milliseconds()
	}
	return b, nil
}

// exactKeys refuses what encoding/json lets through: a key given twice in
// any object (the last would win), and a key whose case differs from the
// field's ("Door" would drive the door). Malformed JSON is left to the
// decoder, which names it: the walk stops at the first bad token (a
// token error consumes nothing, so going on would never end).
func exactKeys(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	errMalformed := errors.New("malformed")
	var walk func(path string, depth int) error
	walk = func(path string, depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return errMalformed
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '[':
			for dec.More() {
				if err := walk(path, depth+1); err != nil {
					return err
				}
			}
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return errMalformed
				}
				key, _ := tok.(string)
				if seen[key] {
					return fmt.Errorf("%s%q given twice", path, key)
				}
				seen[key] = true
				if depth == 0 && !slices.Contains(simControlFields, key) && slices.ContainsFunc(simControlFields, func(f string) bool { return strings.EqualFold(f, key) }) {
					return fmt.Errorf("unknown field %q (field names are lower case)", key)
				}
				if depth == 1 && path == "bounce: " && !slices.Contains(simBounceFields, key) && slices.ContainsFunc(simBounceFields, func(f string) bool { return strings.EqualFold(f, key) }) {
					return fmt.Errorf("bounce: unknown field %q (field names are lower case)", key)
				}
				if err := walk(key+": ", depth+1); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return errMalformed
		}
		return nil
	}
	if err := walk("", 0); err != nil && !errors.Is(err, errMalformed) {
		return err
	}
	return nil
}

var (
	simControlFields = []string{"door", "lock", "presence", "panic", "staff", "points", "fault", "heal", "stick", "unstick", "bounce", "wire"}
	simBounceFields  = []string{"input", "to", "count", "every_ms"}
)
