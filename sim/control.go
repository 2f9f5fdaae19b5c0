package sim

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

// MaxControlSize is the largest control payload ParseControl accepts.
const MaxControlSize = 1024

// DefaultBounceEvery is the interval of a bounce control without every_ms.
const DefaultBounceEvery = 10 * time.Millisecond

// Control is one message of the simulator's control surface
// ({base}/{room}/sim/set), for example
//
//	{"door":"open"}  {"lock":"locked"}  {"presence":true}  {"panic":true}
//	{"staff":false}  {"fault":"door"}   {"heal":"door"}
//	{"points":{"bed":"pressed","toilet":false}}
//	{"fault":"panic:toilet"}  {"heal":"panic:toilet"}
//	{"stick":"alarm_sounder"}  {"unstick":"alarm_sounder"}
//	{"bounce":{"input":"door","to":"open","count":5,"every_ms":10}}
//
// "panic" sets every panic point; "points" sets named ones. "stick" makes
// the relay contact that reads an output back (its feedback line) hold its
// level, as a stuck or welded relay does; "unstick" makes it follow again.
// Several fields may be combined; Apply runs heal and unstick, then the
// levels, then the points, then fault and stick, then bounce.
type Control struct {
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
	Bounce   *wireBounce                `json:"bounce,omitempty"`
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
	if w.Points != nil && len(w.Points) == 0 {
		return Control{}, errors.New("sim control: points: empty (want e.g. {\"bed\":\"pressed\"})")
	}
	for name, raw := range w.Points {
		if !controller.ValidPointName(name) {
			return Control{}, fmt.Errorf("sim control: points: %q is not a point name", name)
		}
		l, err := parseLevel(controller.InputPanic, raw)
		if err != nil {
			return Control{}, fmt.Errorf("sim control: points: %s: %w", name, err)
		}
		if c.Points == nil {
			c.Points = map[string]controller.Level{}
		}
		c.Points[name] = l
	}
	var err error
	if w.Fault != nil {
		if c.Fault, c.FaultPoint, err = parseTarget(*w.Fault); err != nil {
			return Control{}, fmt.Errorf("sim control: fault: %w", err)
		}
	}
	if w.Heal != nil {
		if c.Heal, c.HealPoint, err = parseTarget(*w.Heal); err != nil {
			return Control{}, fmt.Errorf("sim control: heal: %w", err)
		}
	}
	if w.Stick != nil {
		if c.Stick, err = controller.ParseOutput(*w.Stick); err != nil {
			return Control{}, fmt.Errorf("sim control: stick: %w", err)
		}
	}
	if w.Unstick != nil {
		if c.Unstick, err = controller.ParseOutput(*w.Unstick); err != nil {
			return Control{}, fmt.Errorf("sim control: unstick: %w", err)
		}
	}
	if w.Bounce != nil {
		b, err := parseBounce(w.Bounce)
		if err != nil {
			return Control{}, fmt.Errorf("sim control: bounce: %w", err)
		}
		c.Bounce = &b
	}
	if c.Levels == nil && c.Points == nil && c.Fault == 0 && c.Heal == 0 && c.Stick == 0 && c.Unstick == 0 && c.Bounce == nil {
		return Control{}, errors.New("sim control: empty (want door, lock, presence, panic, staff, points, fault, heal, stick, unstick or bounce)")
	}
	return c, nil
}

// parseTarget reads the target of fault or heal: an input role ("door"),
// or one panic point ("panic:bed").
func parseTarget(s string) (controller.Input, string, error) {
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

func target(in controller.Input, point string) string {
	if point != "" {
		return in.String() + ":" + point
	}
	return in.String()
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
	for name, l := range c.Points {
		if w.Points == nil {
			w.Points = map[string]json.RawMessage{}
		}
		w.Points[name] = json.RawMessage(strconv.Quote(controller.InputPanic.Describe(l)))
	}
	if c.Fault != 0 {
		s := target(c.Fault, c.FaultPoint)
		w.Fault = &s
	}
	if c.Heal != 0 {
		s := target(c.Heal, c.HealPoint)
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
	if b := c.Bounce; b != nil {
		w.Bounce = &wireBounce{Input: b.Input.String(), To: json.RawMessage(strconv.Quote(b.Input.Describe(b.To))),
			Count: b.Count, EveryMS: int(b.Every.Milliseconds())}
	}
	out, _ := json.Marshal(w) // only strings, numbers and raw quoted strings: cannot fail
	return out
}

// Apply carries out c on the room: heal and unstick, levels (in
// controller.Inputs order), points (by name), fault and stick, bounce. It
// stops at the first error, which names the input, point or output.
func (r *Room) Apply(c Control) error {
	if c.Heal != 0 {
		if err := r.setFaultAt(c.Heal, c.HealPoint, false); err != nil {
			return err
		}
	}
	if c.Unstick != 0 {
		if err := r.StickFeedback(c.Unstick, false); err != nil {
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
	names := make([]string, 0, len(c.Points))
	for name := range c.Points {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := r.SetPoint(name, c.Points[name]); err != nil {
			return err
		}
	}
	if c.Fault != 0 {
		if err := r.setFaultAt(c.Fault, c.FaultPoint, true); err != nil {
			return err
		}
	}
	if c.Stick != 0 {
		if err := r.StickFeedback(c.Stick, true); err != nil {
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

// ParseAssignments reads the simulator's line syntax, KEY=VALUE fields, as
// a tester types them: door=open, lock=locked, presence=present (every
// sensor), panic=pressed (every point), panic:toilet=pressed (one point),
// staff=pressed, fault=door, fault=panic:toilet, heal=door, stick=OUTPUT,
// unstick=OUTPUT and bounce=INPUT:TO:COUNT[:EVERY] (e.g.
// bounce=door:open:5:100ms). Levels are the input's words; presence,
// panic and staff take true/false and on/off too. A field starting with {
// is taken as a whole control payload. The result has been through
// ParseControl: it is exactly what the control surface accepts.
func ParseAssignments(fields []string) (Control, error) {
	if len(fields) == 1 && strings.HasPrefix(strings.TrimSpace(fields[0]), "{") {
		return ParseControl([]byte(fields[0]))
	}
	if len(fields) == 0 {
		return Control{}, errors.New("sim: want KEY=VALUE, e.g. door=open")
	}
	w := map[string]any{}
	points := map[string]any{}
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
			return Control{}, fmt.Errorf("sim: %q is not KEY=VALUE (e.g. door=open, panic:toilet=pressed)", f)
		}
		if name, point, isPoint := strings.Cut(k, ":"); isPoint {
			if name != "panic" {
				return Control{}, fmt.Errorf("sim: %q: only a panic point may follow a key (panic:POINT=pressed)", f)
			}
			if _, dup := points[point]; dup {
				return Control{}, fmt.Errorf("sim: panic point %s given twice", point)
			}
			points[point] = value(v)
			continue
		}
		if _, dup := w[k]; dup {
			return Control{}, fmt.Errorf("sim: key %s given twice", k)
		}
		switch k {
		case "door", "lock", "presence", "panic", "staff":
			w[k] = value(v)
		case "fault", "heal", "stick", "unstick":
			w[k] = v
		case "bounce":
			b, err := bounceAssignment(v)
			if err != nil {
				return Control{}, fmt.Errorf("sim: bounce=%s: %w", v, err)
			}
			w[k] = b
		default:
			return Control{}, fmt.Errorf("sim: unknown key %q (keys: door, lock, presence, panic, panic:POINT, staff, fault, heal, stick, unstick, bounce)", k)
		}
	}
	if len(points) > 0 {
		w["points"] = points
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return Control{}, fmt.Errorf("sim: %w", err)
	}
	return ParseControl(payload)
}

// bounceAssignment reads INPUT:TO:COUNT[:EVERY] into the JSON of a bounce.
func bounceAssignment(v string) (map[string]any, error) {
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
