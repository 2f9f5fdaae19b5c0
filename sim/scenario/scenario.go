// Package scenario replays scripted visits against a simulated room run by
// the real roomd loop, and checks what the room announced.
//
// A scenario is a YAML file (see sim/scenarios for examples):
//
//	name: bolted door
//	policy: italy                 # a preset name, or a policy mapping as in a config
//	steps:                        # run in order
//	  - at: 0s                    # scenario time (on the room's time axis)
//	    command: {action: start_visit, visit_id: v1, duration: 2h}
//	  - at: 30m
//	    set: {lock: locked}       # sensors, as on the simulator's sim/set topic
//	  - after: {alert_raised: door_locked}   # or: once such an event is received
//	    wait: 20s                 # (after the previous step ran), plus wait
//	    set: {lock: unlocked}
//	  - at: 2h5m
//	    command: {action: ack_alert, alert: time_up}   # the active time_up alert, by kind
//	expect:                       # in this order; other events may come between
//	  - {at: 30m10s, alert_raised: door_locked}      # at: within `within` (default 1s)
//	  - {alert_cleared: door_locked}
//	  - {event: visit_ended, reason: vacated}
//	  - {event: door_opened, count: 1}               # count: exactly so many in the whole run
//	forbid:
//	  - {alert_raised: panic}
//
// Steps run in order, each when its time comes; an after step waits for a
// matching event received after the previous step ran, so a script can
// react to the room (acknowledge the alert it raised) whatever the delays.
// A step holds one action: command, set, bounce, fault or heal; note adds a
// line to the transcript. A command step's want is "ok" (the default) or the
// refusal code expected. Bounce timing (every) and the sensors' debounce are
// device time: they are not compressed when a replay runs faster than real
// time.
//
// Scenario time is the room's time axis from the start of the run. Run
// replays on the real loop in-process (under testing/synctest a two-hour
// visit takes milliseconds); Play drives any running room, such as one
// behind a broker with its clock compressed (roomd scenario, roomd -demo).
//
// The run ends once every step has run and every ordered expectation is met,
// settle (default 1m) later; or at timeout (default: the latest time in the
// file plus 1h), when what is still unmet fails.
//
// Parse reports every unknown key, bad duration, unknown input, level, event,
// alert kind or action with its line.
package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Defaults for fields a scenario leaves out.
const (
	DefaultRoom   = "room-1"
	DefaultWithin = time.Second
	DefaultSettle = time.Minute
	// timeoutMargin is added to the latest time in the file for the default timeout.
	timeoutMargin = time.Hour
)

// Scenario is a parsed scenario file.
type Scenario struct {
	Name        string
	Description string
	Source      string // the file name, for messages
	Room        string
	Policy      controller.Policy
	Steps       []Step
	Expect      []Expectation
	Forbid      []Pattern
	Settle      time.Duration
	Timeout     time.Duration
}

// Step is one scripted action. Exactly one trigger applies: At (scenario
// time), or After (an event received after the previous step ran) plus Wait.
type Step struct {
	Line  int
	At    time.Duration
	After *Pattern
	Wait  time.Duration

	Note    string
	Command *CommandStep
	Control *contract.SimControl
}

// CommandStep is a command sent the way the booking system or a guard sends it.
type CommandStep struct {
	Command controller.Command
	// AlertKind, for ack_alert without alert_id: acknowledge the active
	// alert of this kind, as known from the events received so far.
	AlertKind controller.AlertKind
	// Want is the refusal code expected; CodeOK for success.
	Want controller.Code
}

// Pattern selects events. Zero fields match anything.
type Pattern struct {
	Event    controller.EventType
	Alert    controller.AlertKind
	Severity string
	Reason   string
	Input    controller.Input
	Warning  int
	VisitID  string
}

// Expectation is an event that must be received.
type Expectation struct {
	Pattern
	Line int
	// HasAt: the event must come at At (scenario time), within Within.
	HasAt  bool
	At     time.Duration
	Within time.Duration
	// Count > 0: exactly Count matching events in the whole run; such an
	// expectation takes no part in the order.
	Count int
}

// Load reads and parses the scenario file at path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse parses a scenario; source names it in errors. Every problem found
// is reported, joined, each with its line.
func Parse(data []byte, source string) (*Scenario, error) {
	if source == "" {
		source = "scenario"
	}
	p := &parser{source: source}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse scenario %s: %w", source, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("parse scenario %s: the file is empty", source)
	}
	sc := p.scenario(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("parse scenario %s: %w", source, errors.Join(p.errs...))
	}
	return sc, nil
}

type parser struct {
	source string
	errs   []error
}

func (p *parser) bad(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.source, line, fmt.Sprintf(format, args...)))
}

// mapping returns the keys of a mapping node, reporting unknown and
// duplicate keys; nil if n is not a mapping.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.bad(n, "%s: want a mapping", what)
		return nil
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			p.bad(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		case m[k.Value] != nil:
			p.bad(k, "%s: key %q given twice", what, k.Value)
		default:
			m[k.Value] = v
		}
	}
	return m
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (p *parser) str(n *yaml.Node, what string) string {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		p.bad(n, "%s: want a string", what)
		return ""
	}
	return n.Value
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	s := p.str(n, what)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.bad(n, "%s: %q is not a duration (want e.g. 30s, 10m, 2h5m)", what, s)
		return 0
	}
	if d < 0 {
		p.bad(n, "%s: %s must not be negative", what, s)
		return 0
	}
	return d
}

func (p *parser) integer(n *yaml.Node, what string, lo, hi int) int {
	s := p.str(n, what)
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		p.bad(n, "%s: %q is not a whole number within %d..%d", what, s, lo, hi)
		return 0
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	s := p.str(n, what)
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	p.bad(n, "%s: %q is not true or false", what, s)
	return false
}

func (p *parser) sequence(n *yaml.Node, what string) []*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.bad(n, "%s: want a list", what)
		return nil
	}
	return n.Content
}

var topKeys = []string{"name", "description", "room", "policy", "steps", "expect", "forbid", "settle", "timeout"}

func (p *parser) scenario(root *yaml.Node) *Scenario {
	sc := &Scenario{Source: p.source, Room: DefaultRoom, Settle: DefaultSettle}
	m := p.mapping(root, "scenario", topKeys...)
	if m == nil {
		return sc
	}
	for _, req := range []string{"name", "policy", "steps"} {
		if m[req] == nil {
			p.bad(root, "scenario: %q is required", req)
		}
	}
	if n := m["name"]; n != nil {
		sc.Name = p.str(n, "name")
	}
	if n := m["description"]; n != nil {
		sc.Description = p.str(n, "description")
	}
	if n := m["room"]; n != nil {
		sc.Room = p.str(n, "room")
		if !contract.ValidRoom(sc.Room) {
			p.bad(n, "room: %q is not a room id (want 1 to 64 of a-z, 0-9, _ and -)", sc.Room)
		}
	}
	if n := m["policy"]; n != nil {
		sc.Policy = p.policy(n)
	}
	if n := m["steps"]; n != nil {
		for i, s := range p.sequence(n, "steps") {
			sc.Steps = append(sc.Steps, p.step(s, fmt.Sprintf("steps[%d]", i)))
		}
		if len(sc.Steps) == 0 {
			p.bad(n, "steps: the list is empty")
		}
	}
	if n := m["expect"]; n != nil {
		for i, e := range p.sequence(n, "expect") {
			sc.Expect = append(sc.Expect, p.expectation(e, fmt.Sprintf("expect[%d]", i)))
		}
	}
	if n := m["forbid"]; n != nil {
		for i, f := range p.sequence(n, "forbid") {
			what := fmt.Sprintf("forbid[%d]", i)
			pat, _ := p.pattern(f, what, p.mapping(f, what, patternKeys...))
			sc.Forbid = append(sc.Forbid, pat)
		}
	}
	if n := m["settle"]; n != nil {
		sc.Settle = p.duration(n, "settle")
	}
	latest := time.Duration(0)
	for _, s := range sc.Steps {
		latest = max(latest, s.At+s.Wait)
	}
	for _, e := range sc.Expect {
		latest = max(latest, e.At+e.Within)
	}
	sc.Timeout = latest + timeoutMargin
	if n := m["timeout"]; n != nil {
		sc.Timeout = p.duration(n, "timeout")
		if sc.Timeout <= latest {
			p.bad(n, "timeout: %s is not after the latest time in the scenario (%s)", sc.Timeout, latest)
		}
	}
	return sc
}

// policy reads a preset name or a policy mapping as in a config's policy section.
func (p *parser) policy(n *yaml.Node) controller.Policy {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		pol, err := configs.Preset(n.Value)
		if err != nil {
			p.bad(n, "policy: %v", err)
		}
		return pol
	}
	if n.Kind != yaml.MappingNode {
		p.bad(n, "policy: want a preset name or a mapping")
		return controller.Policy{}
	}
	// Let the config loader read (and check) it, inside a minimal config.
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "room"}, {Kind: yaml.ScalarNode, Value: "scenario"},
		{Kind: yaml.ScalarNode, Value: "device"}, {Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "backend"}, {Kind: yaml.ScalarNode, Value: "sim"}}},
		{Kind: yaml.ScalarNode, Value: "mqtt"}, {Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "broker"}, {Kind: yaml.ScalarNode, Value: "tcp://127.0.0.1:1883"}}},
		{Kind: yaml.ScalarNode, Value: "policy"}, n,
	}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		p.bad(n, "policy: %v", err)
		return controller.Policy{}
	}
	cfg, err := configs.Parse(data, "")
	if err != nil {
		var problems []string
		for _, e := range unjoin(err) {
			var fe *configs.FieldError
			if errors.As(e, &fe) {
				problems = append(problems, fe.Field+": "+fe.Constraint)
			} else {
				problems = append(problems, e.Error())
			}
		}
		p.bad(n, "policy: %s", strings.Join(problems, "; "))
		return controller.Policy{}
	}
	return cfg.Policy
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var stepKeys = []string{"at", "after", "wait", "note", "command", "set", "bounce", "fault", "heal"}

func (p *parser) step(n *yaml.Node, what string) Step {
	s := Step{Line: n.Line}
	m := p.mapping(n, what, stepKeys...)
	if m == nil {
		return s
	}
	switch {
	case m["at"] != nil && m["after"] != nil:
		p.bad(n, "%s: give at or after, not both", what)
	case m["at"] != nil:
		s.At = p.duration(m["at"], what+".at")
		if m["wait"] != nil {
			p.bad(m["wait"], "%s.wait: only with after", what)
		}
	case m["after"] != nil:
		pat, _ := p.pattern(m["after"], what+".after", p.mapping(m["after"], what+".after", patternKeys...))
		s.After = &pat
		if m["wait"] != nil {
			s.Wait = p.duration(m["wait"], what+".wait")
		}
	default:
		p.bad(n, "%s: say when: at (scenario time) or after (an event)", what)
	}
	if m["note"] != nil {
		s.Note = p.str(m["note"], what+".note")
	}
	var actions []string
	for _, k := range []string{"command", "set", "bounce", "fault", "heal"} {
		if m[k] != nil {
			actions = append(actions, k)
		}
	}
	switch {
	case len(actions) > 1:
		p.bad(n, "%s: one action per step, got %s", what, strings.Join(actions, " and "))
		return s
	case len(actions) == 0 && s.Note == "":
		p.bad(n, "%s: no action (want command, set, bounce, fault, heal or note)", what)
		return s
	case len(actions) == 0:
		return s
	}
	k := actions[0]
	v := m[k]
	switch k {
	case "command":
		s.Command = p.command(v, what+".command")
	case "set":
		s.Control = p.set(v, what+".set")
	case "bounce":
		s.Control = p.bounce(v, what+".bounce")
	case "fault", "heal":
		in, err := controller.ParseInput(p.str(v, what+"."+k))
		if err != nil {
			p.bad(v, "%s.%s: %v", what, k, err)
			break
		}
		if k == "fault" {
			s.Control = &contract.SimControl{Fault: in}
		} else {
			s.Control = &contract.SimControl{Heal: in}
		}
	}
	return s
}

var commandKeys = []string{"action", "visit_id", "duration", "by", "alert", "alert_id", "in_service", "reason", "want"}

func (p *parser) command(n *yaml.Node, what string) *CommandStep {
	m := p.mapping(n, what, commandKeys...)
	if m == nil {
		return nil
	}
	cs := &CommandStep{}
	if m["action"] == nil {
		p.bad(n, "%s: action is required", what)
		return cs
	}
	a, err := controller.ParseCommandAction(p.str(m["action"], what+".action"))
	if err != nil {
		p.bad(m["action"], "%s.action: %v", what, err)
		return cs
	}
	cs.Command.Action = a
	allowed := map[controller.CommandAction][]string{
		controller.ActionStartVisit:  {"visit_id", "duration"},
		controller.ActionExtendVisit: {"by"},
		controller.ActionAckAlert:    {"alert", "alert_id"},
		controller.ActionSetService:  {"in_service", "reason"},
	}[a]
	for _, k := range commandKeys[1:] {
		if m[k] != nil && k != "want" && !slices.Contains(allowed, k) {
			p.bad(m[k], "%s: %s does not take %q", what, a, k)
		}
	}
	if m["visit_id"] != nil {
		cs.Command.VisitID = p.str(m["visit_id"], what+".visit_id")
	}
	if m["duration"] != nil {
		cs.Command.Duration = p.duration(m["duration"], what+".duration")
	}
	if m["by"] != nil {
		cs.Command.Duration = p.duration(m["by"], what+".by")
	}
	if m["alert_id"] != nil {
		cs.Command.AlertID = p.str(m["alert_id"], what+".alert_id")
	}
	if m["alert"] != nil {
		cs.AlertKind = p.alertKind(m["alert"], what+".alert")
	}
	if m["in_service"] != nil {
		cs.Command.InService = p.boolean(m["in_service"], what+".in_service")
	}
	if m["reason"] != nil {
		cs.Command.Reason = p.str(m["reason"], what+".reason")
	}
	switch a {
	case controller.ActionStartVisit:
		if m["visit_id"] == nil || m["duration"] == nil {
			p.bad(n, "%s: start_visit needs visit_id and duration", what)
		}
	case controller.ActionExtendVisit:
		if m["by"] == nil {
			p.bad(n, "%s: extend_visit needs by", what)
		}
	case controller.ActionAckAlert:
		if (m["alert"] == nil) == (m["alert_id"] == nil) {
			p.bad(n, "%s: ack_alert needs alert (a kind) or alert_id", what)
		}
	case controller.ActionSetService:
		if m["in_service"] == nil {
			p.bad(n, "%s: set_service needs in_service", what)
		}
	}
	if m["want"] != nil {
		w := p.str(m["want"], what+".want")
		known := append([]controller.Code{}, controller.Codes...)
		known = append(known, contract.LinkCodes...)
		switch {
		case w == "ok":
		case slices.Contains(known, controller.Code(w)):
			cs.Want = controller.Code(w)
		default:
			p.bad(m["want"], "%s.want: %q is not ok or a refusal code", what, w)
		}
	}
	return cs
}

// set reads a mapping of inputs to levels, as the simulator's control surface does.
func (p *parser) set(n *yaml.Node, what string) *contract.SimControl {
	m := p.mapping(n, what, "door", "lock", "presence", "panic", "staff")
	if m == nil {
		return nil
	}
	obj := map[string]any{}
	for k, v := range m {
		s := p.str(v, what+"."+k)
		if s == "true" || s == "false" {
			obj[k] = s == "true"
		} else {
			obj[k] = s
		}
	}
	if len(obj) == 0 {
		p.bad(n, "%s: empty (want door, lock, presence, panic or staff)", what)
		return nil
	}
	payload, _ := json.Marshal(obj)
	c, err := contract.DecodeSimControl(payload)
	if err != nil {
		p.bad(n, "%s: %s", what, strings.TrimPrefix(err.Error(), "sim control: "))
		return nil
	}
	return &c
}

func (p *parser) bounce(n *yaml.Node, what string) *contract.SimControl {
	m := p.mapping(n, what, "input", "to", "count", "every")
	if m == nil {
		return nil
	}
	missing := false
	for _, req := range []string{"input", "to", "count"} {
		if m[req] == nil {
			p.bad(n, "%s: %s is required", what, req)
			missing = true
		}
	}
	if missing {
		return nil
	}
	in, err := controller.ParseInput(p.str(m["input"], what+".input"))
	if err != nil {
		p.bad(m["input"], "%s.input: %v", what, err)
		return nil
	}
	to, err := in.ParseLevel(p.str(m["to"], what+".to"))
	if err != nil || to == controller.LevelUnknown {
		p.bad(m["to"], "%s.to: want %q or %q", what, in.Describe(controller.LevelActive), in.Describe(controller.LevelInactive))
		return nil
	}
	b := &contract.SimBounce{Input: in, To: to, Count: p.integer(m["count"], what+".count", 1, contract.MaxBounceCount),
		Every: contract.DefaultBounceEvery}
	if m["every"] != nil {
		b.Every = p.duration(m["every"], what+".every")
		if b.Every <= 0 || b.Every > contract.MaxBounceEvery {
			p.bad(m["every"], "%s.every: %s outside (0, %s]", what, b.Every, contract.MaxBounceEvery)
		}
	}
	return &contract.SimControl{Bounce: b}
}

var shorthand = map[string]controller.EventType{
	"alert_raised":      controller.EventAlertRaised,
	"alert_escalated":   controller.EventAlertEscalated,
	"alert_repeated":    controller.EventAlertRepeated,
	"alert_reannounced": controller.EventAlertReannounced,
	"alert_acked":       controller.EventAlertAcked,
	"alert_cleared":     controller.EventAlertCleared,
}

var patternKeys = []string{"event", "alert_raised", "alert_escalated", "alert_repeated", "alert_reannounced", "alert_acked", "alert_cleared",
	"alert", "severity", "reason", "input", "warning", "visit_id"}

// pattern reads the pattern keys of m (which may hold other keys, already checked).
func (p *parser) pattern(n *yaml.Node, what string, m map[string]*yaml.Node) (Pattern, bool) {
	var pat Pattern
	if m == nil {
		return pat, false
	}
	ok := true
	set := 0
	if v := m["event"]; v != nil {
		set++
		s := p.str(v, what+".event")
		i := slices.IndexFunc(controller.EventTypes, func(t controller.EventType) bool { return t.String() == s })
		if i < 0 {
			p.bad(v, "%s.event: unknown event %q", what, s)
			ok = false
		} else {
			pat.Event = controller.EventTypes[i]
		}
	}
	for k, t := range shorthand {
		if v := m[k]; v != nil {
			set++
			pat.Event = t
			pat.Alert = p.alertKind(v, what+"."+k)
		}
	}
	if set != 1 {
		p.bad(n, "%s: name one event: event, alert_raised, alert_escalated, alert_repeated, alert_reannounced, alert_acked or alert_cleared", what)
		return pat, false
	}
	if v := m["alert"]; v != nil {
		if pat.Alert != 0 {
			p.bad(v, "%s.alert: the kind is already given", what)
		}
		pat.Alert = p.alertKind(v, what+".alert")
	}
	if v := m["severity"]; v != nil {
		pat.Severity = p.str(v, what+".severity")
		if !slices.Contains([]string{"info", "warning", "critical"}, pat.Severity) {
			p.bad(v, "%s.severity: %q is not info, warning or critical", what, pat.Severity)
		}
	}
	if v := m["reason"]; v != nil {
		pat.Reason = p.str(v, what+".reason")
	}
	if v := m["input"]; v != nil {
		in, err := controller.ParseInput(p.str(v, what+".input"))
		if err != nil {
			p.bad(v, "%s.input: %v", what, err)
		}
		pat.Input = in
	}
	if v := m["warning"]; v != nil {
		pat.Warning = p.integer(v, what+".warning", 1, 100)
	}
	if v := m["visit_id"]; v != nil {
		pat.VisitID = p.str(v, what+".visit_id")
	}
	if (pat.Alert != 0 || pat.Severity != "") && pat.Event != 0 && !pat.Event.IsAlert() {
		p.bad(n, "%s: alert and severity only go with alert events, not %s", what, pat.Event)
	}
	return pat, ok
}

func (p *parser) alertKind(n *yaml.Node, what string) controller.AlertKind {
	s := p.str(n, what)
	i := slices.IndexFunc(controller.AlertKinds, func(k controller.AlertKind) bool { return k.String() == s })
	if i < 0 {
		names := make([]string, len(controller.AlertKinds))
		for j, k := range controller.AlertKinds {
			names[j] = k.String()
		}
		p.bad(n, "%s: unknown alert kind %q (known: %s)", what, s, strings.Join(names, ", "))
		return 0
	}
	return controller.AlertKinds[i]
}

func (p *parser) expectation(n *yaml.Node, what string) Expectation {
	e := Expectation{Line: n.Line}
	m := p.mapping(n, what, append([]string{"at", "within", "count"}, patternKeys...)...)
	e.Pattern, _ = p.pattern(n, what, m)
	if m == nil {
		return e
	}
	if v := m["at"]; v != nil {
		e.HasAt = true
		e.At = p.duration(v, what+".at")
		e.Within = DefaultWithin
	}
	if v := m["within"]; v != nil {
		if !e.HasAt {
			p.bad(v, "%s.within: only with at", what)
		}
		e.Within = p.duration(v, what+".within")
	}
	if v := m["count"]; v != nil {
		e.Count = p.integer(v, what+".count", 0, 1000)
		if e.Count == 0 {
			p.bad(v, "%s.count: 0 is a forbid entry, not an expectation", what)
		}
		if e.HasAt {
			p.bad(v, "%s: count and at do not go together", what)
		}
	}
	return e
}

// Matches reports whether ev matches the pattern.
func (pat Pattern) Matches(ev *contract.EventMessage) bool {
	if pat.Event != 0 && ev.Type != pat.Event.String() {
		return false
	}
	if pat.Alert != 0 || pat.Severity != "" || pat.Input != 0 {
		if ev.Alert == nil {
			return false
		}
		if pat.Alert != 0 && ev.Alert.Kind != pat.Alert.String() {
			return false
		}
		if pat.Severity != "" && ev.Alert.Severity != pat.Severity {
			return false
		}
		if pat.Input != 0 && ev.Alert.Input != pat.Input.String() {
			return false
		}
	}
	if pat.Reason != "" && ev.Reason != pat.Reason {
		return false
	}
	if pat.Warning != 0 && ev.Warning != pat.Warning {
		return false
	}
	if pat.VisitID != "" && ev.VisitID != pat.VisitID {
		return false
	}
	return true
}

// String renders the pattern as it is written in a file.
func (pat Pattern) String() string {
	var b bytes.Buffer
	if pat.Event.IsAlert() && pat.Alert != 0 {
		fmt.Fprintf(&b, "%s: %s", pat.Event, pat.Alert)
	} else {
		fmt.Fprintf(&b, "event: %s", pat.Event)
		if pat.Alert != 0 {
			fmt.Fprintf(&b, ", alert: %s", pat.Alert)
		}
	}
	if pat.Severity != "" {
		fmt.Fprintf(&b, ", severity: %s", pat.Severity)
	}
	if pat.Reason != "" {
		fmt.Fprintf(&b, ", reason: %s", pat.Reason)
	}
	if pat.Input != 0 {
		fmt.Fprintf(&b, ", input: %s", pat.Input)
	}
	if pat.Warning != 0 {
		fmt.Fprintf(&b, ", warning: %d", pat.Warning)
	}
	if pat.VisitID != "" {
		fmt.Fprintf(&b, ", visit_id: %s", pat.VisitID)
	}
	return "{" + b.String() + "}"
}
