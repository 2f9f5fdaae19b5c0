package configs

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
)

// config reads the top level into c, which holds the defaults.
func (r *reader) config(root *yaml.Node, c *Config) {
	m := r.mapping(root, "", "room", "state_dir", "policy", "device", "mqtt", "homeassistant", "commands", "journal", "log", "metrics")
	top := resolve(root)

	if r.str(m["room"], "room", &c.Room) && !contract.ValidRoom(c.Room) {
		r.bad(m["room"], "room", "%q is not a room id (1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit; not %s)", c.Room, strings.Join(contract.ReservedIDs, ", "))
	} else if m["room"] == nil || resolve(m["room"]) == nil {
		r.bad(top, "room", "is required: the room's id, e.g. room-1")
	}
	if r.str(m["state_dir"], "state_dir", &c.StateDir) && c.StateDir == "" {
		r.bad(m["state_dir"], "state_dir", "must not be empty (default %s)", Default().StateDir)
	}

	// The policy comes first: device checks depend on it (end_on_vacancy).
	r.policy(m["policy"], top, c)
	r.device(m["device"], top, c)
	r.mqtt(m["mqtt"], top, c)
	r.homeAssistant(m["homeassistant"], c)
	r.commands(m["commands"], c)
	r.journal(m["journal"], c)
	r.log(m["log"], c)
	r.metrics(m["metrics"], c)
}

// metrics reads the metrics section.
func (r *reader) metrics(n *yaml.Node, c *Config) {
	m := r.mapping(n, "metrics", "textfile", "every")
	if r.str(m["textfile"], "metrics.textfile", &c.Metrics.Textfile) && c.Metrics.Textfile != "" {
		if !strings.HasPrefix(c.Metrics.Textfile, "/") || !strings.HasSuffix(c.Metrics.Textfile, ".prom") {
			r.bad(m["textfile"], "metrics.textfile", "%q must be an absolute path ending in .prom (node_exporter's textfile collector reads nothing else), or empty for no metrics", c.Metrics.Textfile)
		}
	}
	if r.duration(m["every"], "metrics.every", &c.Metrics.Every) && (c.Metrics.Every < 5*time.Second || c.Metrics.Every > 5*time.Minute) {
		r.bad(m["every"], "metrics.every", "must be between 5s and 5m, got %s", c.Metrics.Every)
	}
}

// homeAssistant reads the homeassistant section (after mqtt: the prefix
// must stay clear of the rooms' topics).
func (r *reader) homeAssistant(n *yaml.Node, c *Config) {
	m := r.mapping(n, "homeassistant", "enabled", "discovery_prefix")
	h := &c.HomeAssistant
	r.boolean(m["enabled"], "homeassistant.enabled", &h.Enabled)
	if !r.str(m["discovery_prefix"], "homeassistant.discovery_prefix", &h.DiscoveryPrefix) {
		return
	}
	if problem := topicProblem(h.DiscoveryPrefix); problem != "" {
		r.bad(m["discovery_prefix"], "homeassistant.discovery_prefix", "%q %s", h.DiscoveryPrefix, problem)
		return
	}
	if b := c.MQTT.Base; h.DiscoveryPrefix == b || strings.HasPrefix(h.DiscoveryPrefix, b+"/") || strings.HasPrefix(b, h.DiscoveryPrefix+"/") {
		r.bad(m["discovery_prefix"], "homeassistant.discovery_prefix", "%q overlaps mqtt.base %q: discovery topics and the rooms' topics must not share a tree", h.DiscoveryPrefix, b)
	}
}

// journal reads the journal section. An earlier layout's mqtt.outbox.max_bytes
// (read by mqtt) stands in for journal.max_bytes when that is not given.
func (r *reader) journal(n *yaml.Node, c *Config) {
	m := r.mapping(n, "journal", "max_bytes", "retention")
	if r.size(m["max_bytes"], "journal.max_bytes", &c.Journal.MaxBytes) && c.Journal.MaxBytes < 256*KiB {
		r.bad(m["max_bytes"], "journal.max_bytes", "must be at least 256KiB, got %d", c.Journal.MaxBytes)
	}
	if r.duration(m["retention"], "journal.retention", &c.Journal.Retention) {
		r.bounded(m["retention"], "journal.retention", "journal.retention", c.Journal.Retention)
	}
}

var policyKeys = []string{"max_duration", "extension", "warnings", "escalate_after", "repeat_every",
	"reannounce_after", "lock_scope", "lock_grace", "end_on_vacancy", "vacancy_hold", "vacate_timeout",
	"welfare_check_every", "panic_reset", "inspection_after_visit", "function_test_every"}

// policyFields reads the policy keys present in m into p.
func (r *reader) policyFields(m map[string]*yaml.Node, path string, p *controller.Policy) {
	f := func(k string) (*yaml.Node, string) { return m[k], join(path, k) }
	n, k := f("max_duration")
	if r.duration(n, k, &p.MaxDuration) {
		r.bounded(n, k, "policy.max_duration", p.MaxDuration)
	}
	n, k = f("extension")
	if i := r.enum(n, k, "up_to_max", "forbidden"); i >= 0 {
		p.Extension = []controller.Extension{controller.ExtensionUpToMax, controller.ExtensionForbidden}[i]
	}
	n, k = f("warnings")
	if r.durations(n, k, &p.Warnings) && len(p.Warnings) == 0 {
		p.Warnings = nil
	}
	if rn := resolve(n); rn != nil && rn.Kind == yaml.SequenceNode && len(rn.Content) == len(p.Warnings) {
		for i, w := range p.Warnings {
			r.bounded(rn.Content[i], fmt.Sprintf("%s[%d]", k, i), "policy.warnings", w)
		}
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{
		{"escalate_after", &p.EscalateAfter}, {"repeat_every", &p.RepeatEvery},
		{"reannounce_after", &p.ReannounceAfter}, {"lock_grace", &p.LockGrace},
		{"vacancy_hold", &p.VacancyHold}, {"vacate_timeout", &p.VacateTimeout},
		{"welfare_check_every", &p.WelfareCheckEvery},
		{"function_test_every", &p.FunctionTestEvery},
	} {
		n, k = f(d.key)
		if r.duration(n, k, d.dst) {
			r.bounded(n, k, "policy."+d.key, *d.dst)
		}
	}
	n, k = f("lock_scope")
	if i := r.enum(n, k, "visit", "always"); i >= 0 {
		p.LockScope = []controller.LockScope{controller.LockDuringVisit, controller.LockAlways}[i]
	}
	n, k = f("end_on_vacancy")
	r.boolean(n, k, &p.EndOnVacancy)
	n, k = f("panic_reset")
	if i := r.enum(n, k, "on_site", "ack"); i >= 0 {
		p.PanicReset = []controller.PanicReset{controller.PanicResetOnSite, controller.PanicResetAck}[i]
	}
	n, k = f("inspection_after_visit")
	r.boolean(n, k, &p.InspectionAfterVisit)
}

// policy reads the policy section: the preset, then the inline fields over it.
func (r *reader) policy(n, top *yaml.Node, c *Config) {
	const path = "policy"
	m := r.mapping(n, path, append([]string{"preset"}, policyKeys...)...)
	before := len(r.errs)
	p := defaultPolicy()
	origin := "roomd default"
	var preset string
	if r.str(m["preset"], "policy.preset", &preset) {
		pp, err := Preset(preset)
		if err != nil {
			r.bad(m["preset"], "policy.preset", "%v", err)
		} else {
			p, origin, c.PolicyPreset = pp, "from preset "+preset, preset
		}
	}
	r.policyFields(m, path, &p)
	c.Policy = p
	if preset == "" && resolve(m["max_duration"]) == nil {
		r.bad(lineNode(resolve(n), top), path, "is required: name a preset (policy.preset: one of %s) or give at least policy.max_duration",
			strings.Join(PresetNames(), ", "))
		return
	}
	r.policyValidate(p, m, resolve(n), path, origin, unreadKeys(r.errs[before:], path, m))
}

// policyValidate runs Policy.Validate and reports its errors under path,
// pointing at the inline key if the value was given there, or naming where
// it came from otherwise.
//
// unread names the keys whose value could not be read: p holds a default
// or the preset's value there instead, so their own problems, and the
// problems that depend on them, are left out rather than reported wrongly.
func (r *reader) policyValidate(p controller.Policy, m map[string]*yaml.Node, n *yaml.Node, path, origin string, unread map[string]bool) {
	if unread["max_duration"] {
		p.MaxDuration = 0 // Validate compares nothing with an unknown maximum
	}
	if unread["end_on_vacancy"] {
		unread["vacancy_hold"] = true // its rule depends on end_on_vacancy
	}
	err := p.Validate()
	if err == nil {
		return
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var fe *controller.FieldError
		if !errors.As(e, &fe) {
			r.bad(n, path, "%v", e)
			continue
		}
		key, _, _ := strings.Cut(fe.Field, "[")
		if unread[key] {
			continue
		}
		if v := resolve(m[key]); v != nil {
			if i, ok := index(fe.Field); ok && v.Kind == yaml.SequenceNode && i < len(v.Content) {
				v = v.Content[i]
			}
			r.bad(v, join(path, fe.Field), "%s", fe.Constraint)
		} else {
			r.bad(n, join(path, fe.Field), "%s (%s)", fe.Constraint, origin)
		}
	}
}

// unreadKeys returns the policy keys named by the problems found while
// reading them (errs, for fields under path). A preset that could not be
// read leaves max_duration unknown unless it is given inline.
func unreadKeys(errs []*FieldError, path string, m map[string]*yaml.Node) map[string]bool {
	unread := map[string]bool{}
	for _, e := range errs {
		key, ok := strings.CutPrefix(e.Field, path+".")
		if !ok {
			continue
		}
		key, _, _ = strings.Cut(key, "[")
		unread[key] = true
	}
	if unread["preset"] && resolve(m["max_duration"]) == nil {
		unread["max_duration"] = true
	}
	return unread
}

// index returns i of a field "name[i]".
func index(field string) (int, bool) {
	_, rest, ok := strings.Cut(field, "[")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	return i, err == nil
}

func (r *reader) device(n, top *yaml.Node, c *Config) {
	const path = "device"
	m := r.mapping(n, path, "backend", "reread_every", "flap", "blink_period", "feedback_grace", "inputs", "outputs", "power", "healthy")
	dn := lineNode(resolve(n), top)
	d := &c.Device
	if resolve(n) == nil {
		r.bad(top, path, "is required: the room's GPIO lines (device.inputs, device.outputs), or {backend: sim} for the simulator")
		return
	}
	if i := r.enum(m["backend"], "device.backend", "gpio", "sim"); i >= 0 {
		d.Backend = []Backend{BackendGPIO, BackendSim}[i]
	}
	if r.duration(m["reread_every"], "device.reread_every", &d.RereadEvery) {
		r.bounded(m["reread_every"], "device.reread_every", "device.reread_every", d.RereadEvery)
	}
	fm := r.mapping(m["flap"], "device.flap", "max_changes", "window")
	r.integer(fm["max_changes"], "device.flap.max_changes", &d.Flap.MaxChanges, 2, math.MaxInt32)
	if r.duration(fm["window"], "device.flap.window", &d.Flap.Window) {
		r.bounded(fm["window"], "device.flap.window", "device.flap.window", d.Flap.Window)
	}
	if r.duration(m["blink_period"], "device.blink_period", &d.BlinkPeriod) {
		r.bounded(m["blink_period"], "device.blink_period", "device.blink_period", d.BlinkPeriod)
	}
	if r.duration(m["feedback_grace"], "device.feedback_grace", &d.FeedbackGrace) {
		limit := min(d.BlinkPeriod/2, 250*time.Millisecond)
		if d.FeedbackGrace < 10*time.Millisecond || d.FeedbackGrace >= limit {
			r.bad(m["feedback_grace"], "device.feedback_grace", "must be at least 10ms and shorter than %s (half of blink_period, and the 250ms phases of the panic pattern), got %s",
				limit, d.FeedbackGrace)
		}
	}

	used := map[string]string{} // physical line -> the role path that uses it
	claim := func(n *yaml.Node, path string, l Line) {
		key := strings.ToUpper(l.Name())
		if first, dup := used[key]; dup {
			r.bad(n, path, "line %s is already used by %s; each role needs its own line", l.Name(), first)
			return
		}
		used[key] = path
	}

	in := r.mapping(m["inputs"], "device.inputs", "door", "lock", "presence", "panic", "staff")
	inNode := lineNode(resolve(m["inputs"]), dn)
	for _, role := range []struct {
		key string
		dst **Line
	}{{"door", &d.Inputs.Door}, {"lock", &d.Inputs.Lock}, {"presence", nil}, {"panic", nil}, {"staff", &d.Inputs.Staff}} {
		p := "device.inputs." + role.key
		switch role.key {
		case "presence":
			d.Inputs.Presence = r.presence(in["presence"], p, claim)
			continue
		case "panic":
			d.Inputs.Panic = r.panicPoints(in["panic"], p, claim)
			continue
		}
		l, named, ok := r.line(in[role.key], p, lineInput)
		if named {
			claim(in[role.key], p, l)
		}
		if ok {
			*role.dst = &l
		}
	}

	// "alarm" is the older name of alarm_light, read in its place.
	outKeys := []string{"in_use", "warning", "alarm_light", "alarm", "alarm_sounder", "reassurance"}
	out := r.mapping(m["outputs"], "device.outputs", outKeys...)
	outNode := lineNode(resolve(m["outputs"]), dn)
	if resolve(out["alarm"]) != nil && resolve(out["alarm_light"]) != nil {
		r.bad(out["alarm"], "device.outputs.alarm", "is the older name of alarm_light, which is given too: keep one of them")
	}
	for _, key := range outKeys {
		o := controller.OutputAlarmLight
		if key != "alarm" {
			o, _ = controller.ParseOutput(key)
		} else if resolve(out["alarm_light"]) != nil {
			continue
		}
		p := "device.outputs." + key
		l, named, ok := r.line(out[key], p, lineOutput)
		if named {
			claim(out[key], p, l)
		}
		if ok {
			if d.Outputs == nil {
				d.Outputs = map[controller.Output]Line{}
			}
			d.Outputs[o] = l
		}
		if fn := resolve(child(out[key], "feedback")); fn != nil {
			fp := p + ".feedback"
			fl, fnamed, fok := r.line(fn, fp, lineFeedback)
			if fnamed {
				claim(fn, fp, fl)
			}
			if fok {
				if d.Feedback == nil {
					d.Feedback = map[controller.Output]Line{}
				}
				d.Feedback[o] = fl
			}
		}
	}
	pm := r.mapping(m["power"], "device.power", "mains_fail", "battery_low")
	for _, st := range []struct {
		key string
		dst **Line
	}{{"mains_fail", &d.MainsFail}, {"battery_low", &d.BatteryLow}} {
		p := "device.power." + st.key
		l, named, ok := r.line(pm[st.key], p, lineFeedback)
		if named {
			claim(pm[st.key], p, l)
		}
		if ok {
			*st.dst = &l
		}
	}
	if l, named, ok := r.line(m["healthy"], "device.healthy", lineHealthy); ok {
		if named {
			claim(m["healthy"], "device.healthy", l)
		}
		d.Healthy = &l
	}

	if len(d.Feedback) > 0 && resolve(m["feedback_grace"]) == nil && d.FeedbackGrace >= min(d.BlinkPeriod/2, 250*time.Millisecond) {
		r.bad(lineNode(resolve(m["blink_period"]), dn), "device.feedback_grace", "the default %s is not shorter than half of blink_period %s: set feedback_grace",
			d.FeedbackGrace, d.BlinkPeriod)
	}

	if d.Backend != BackendGPIO {
		return
	}
	need := func(given bool, key, why string) {
		if !given && resolve(in[key]) == nil {
			r.bad(inNode, "device.inputs."+key, "is required with backend gpio: %s", why)
		}
	}
	need(d.Inputs.Door != nil, "door", "the door contact decides when a visit may start and when the room is vacated")
	need(d.Inputs.Lock != nil, "lock", "the lock sensor is how roomd sees a bolted door, the main danger it guards against")
	need(len(d.Inputs.Panic) > 0, "panic", "a private visit room must have a panic button, and roomd must watch it so that a press reaches staff")
	if pn := resolve(in["presence"]); len(d.Inputs.Presence) == 0 && c.Policy.EndOnVacancy &&
		(pn == nil || pn.Kind == yaml.SequenceNode && len(pn.Content) == 0) {
		r.bad(inNode, "device.inputs.presence", "is empty, but policy.end_on_vacancy is true: ending a visit on vacancy needs a presence sensor (add one, or set policy.end_on_vacancy: false)")
	}
	for _, o := range []controller.Output{controller.OutputInUse, controller.OutputWarning, controller.OutputAlarmLight} {
		given := resolve(out[o.String()]) != nil || o == controller.OutputAlarmLight && resolve(out["alarm"]) != nil
		if _, ok := d.Outputs[o]; !ok && !given {
			r.bad(outNode, "device.outputs."+o.String(), "is required with backend gpio (in_use, warning and alarm_light are needed; alarm_sounder and reassurance are optional)")
		}
	}
}

// child returns the value of key in mapping n, or nil; it reports nothing
// (the mapping's own reader does).
func child(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// panicPoints reads the panic input: one line ({pin: GPIO23}, the point
// "panic" unless it has a name), or a list of named points
// ([{name: bed, pin: GPIO23}, ...]); nil if absent.
func (r *reader) panicPoints(n *yaml.Node, path string, claim func(*yaml.Node, string, Line)) []Line {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l, named, ok := r.line(n, path, linePanic)
		if named {
			claim(n, path, l)
		}
		if ok {
			return []Line{l}
		}
		return nil
	}
	if len(n.Content) == 0 {
		r.bad(n, path, "is an empty list; give one line, e.g. {pin: GPIO23}, or named points, e.g. [{name: bed, pin: GPIO23}]")
		return nil
	}
	if len(n.Content) > 8 {
		r.bad(n, path, "has %d points, at most 8", len(n.Content))
	}
	var out []Line
	names := map[string]string{}
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		l, named, ok := r.line(item, p, linePanic)
		if named {
			claim(item, p, l)
		}
		if !ok {
			if resolve(item) == nil {
				r.bad(item, p, "is empty; give a named point, e.g. {name: bed, pin: GPIO23}")
			}
			continue
		}
		switch first, dup := names[l.Point]; {
		case l.Point == "":
			r.bad(item, p, "needs a name: in a list every panic point is named (e.g. bed, toilet, pull_cord)")
		case dup:
			r.bad(item, p+".name", "%q is already the name of %s", l.Point, first)
		default:
			names[l.Point] = p
			out = append(out, l)
		}
	}
	return out
}

// presence reads the list of presence sensors; nil if none.
func (r *reader) presence(n *yaml.Node, path string, claim func(*yaml.Node, string, Line)) []Line {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		r.bad(n, path, "must be a list of lines, e.g. [{pin: GPIO22, debounce: 200ms}], got %s", kindName(n))
		return nil
	}
	var out []Line
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		l, named, ok := r.line(item, p, lineInput)
		if named {
			claim(item, p, l)
		}
		if ok {
			out = append(out, l)
		} else if resolve(item) == nil {
			r.bad(item, p, "is empty; give a line, e.g. {pin: GPIO22}")
		}
	}
	return out
}

var (
	pinPattern  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`)
	chipPattern = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,64}$`)
)

// lineKind says which keys a line has.
type lineKind uint8

const (
	lineInput    lineKind = iota // pin, chip, line, active_low, pull, debounce
	linePanic                    // an input line with a point name
	lineOutput                   // pin, chip, line, active_low (and feedback, read by the caller)
	lineFeedback                 // pin, chip, line, active_low, pull: no debounce
	lineHealthy                  // pin, chip, line, active_low: an output without feedback
)

// line reads one GPIO line; input lines have a pull and a debounce. named
// reports whether the line's identity (pin, or chip and line) is usable, ok
// whether the whole line is.
func (r *reader) line(n *yaml.Node, path string, kind lineKind) (l Line, named, ok bool) {
	keys := []string{"pin", "chip", "line", "active_low"}
	switch kind {
	case lineInput:
		keys = append(keys, "pull", "debounce", "eol")
		l = defaultLine()
	case linePanic:
		keys = append(keys, "pull", "debounce", "name", "eol")
		l = defaultLine()
	case lineOutput:
		keys = append(keys, "feedback")
	case lineFeedback:
		keys = append(keys, "pull")
		l = Line{Pull: PullUp}
	}
	m := r.mapping(n, path, keys...)
	if m == nil {
		return Line{}, false, false
	}
	n = resolve(n)
	before := len(r.errs)
	hasPin := r.str(m["pin"], path+".pin", &l.Pin)
	hasChip := r.str(m["chip"], path+".chip", &l.Chip)
	hasLine := resolve(m["line"]) != nil
	lineOK := r.integer(m["line"], path+".line", &l.Line, 0, 1023)
	r.boolean(m["active_low"], path+".active_low", &l.ActiveLow)
	if kind != lineOutput {
		if i := r.enum(m["pull"], path+".pull", "up", "down", "none"); i >= 0 {
			l.Pull = []Pull{PullUp, PullDown, PullNone}[i]
		}
	}
	if kind == lineInput || kind == linePanic {
		if r.duration(m["debounce"], path+".debounce", &l.Debounce) {
			lim := "device.inputs.debounce"
			if kind == linePanic {
				lim = "device.inputs.panic.debounce"
			}
			r.bounded(m["debounce"], path+".debounce", lim, l.Debounce)
		}
	}
	if kind == linePanic && r.str(m["name"], path+".name", &l.Point) && !controller.ValidPointName(l.Point) {
		r.bad(m["name"], path+".name", "%q is not a point name (1 to 32 of a-z, 0-9 and '_', starting with a letter, e.g. bed, toilet, pull_cord)", l.Point)
	}
	if en := resolve(m["eol"]); en != nil {
		switch {
		case hasPin || hasChip || hasLine:
			r.bad(n, path, "an end-of-line loop is read through its ADC (eol.adc): give no pin, chip or line")
		case resolve(m["active_low"]) != nil || resolve(m["pull"]) != nil || resolve(m["debounce"]) != nil:
			r.bad(n, path, "an end-of-line loop has no active_low, pull or debounce: its bands say what is active, eol.hold how long a band must hold")
		}
		l.Pull, l.Debounce, l.ActiveLow = PullNone, 0, false
		l.EOL = r.eol(en, path+".eol")
		return l, l.EOL != nil, len(r.errs) == before
	}
	identErrs := len(r.errs)
	switch {
	case hasPin && (hasChip || hasLine):
		r.bad(n, path, "give either pin or chip and line, not both")
	case hasPin:
		if !pinPattern.MatchString(l.Pin) {
			r.bad(m["pin"], path+".pin", "%q is not a pin name (e.g. GPIO17)", l.Pin)
		}
	case hasChip != hasLine:
		r.bad(n, path, "chip and line go together (e.g. chip: gpiochip0, line: 27)")
	case hasChip:
		if !chipPattern.MatchString(l.Chip) {
			r.bad(m["chip"], path+".chip", "%q is not a GPIO chip name (e.g. gpiochip0)", l.Chip)
		}
	case len(r.errs) == before:
		r.bad(n, path, "names no line: give pin (e.g. GPIO17) or chip and line (e.g. gpiochip0, 27)")
	}
	named = (hasPin || hasChip && hasLine && lineOK) && len(r.errs) == identErrs
	return l, named, len(r.errs) == before
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func (r *reader) mqtt(n, top *yaml.Node, c *Config) {
	const path = "mqtt"
	m := r.mapping(n, path, "broker", "base", "client_id", "username", "password_file", "tls",
		"keepalive", "connect_timeout", "heartbeat", "max_payload", "outbox")
	mn := lineNode(resolve(n), top)
	q := &c.MQTT
	scheme := ""
	if r.str(m["broker"], "mqtt.broker", &q.Broker) {
		scheme = r.broker(m["broker"], q.Broker)
	} else if resolve(m["broker"]) == nil {
		r.bad(mn, "mqtt.broker", "is required: the broker's URL, e.g. tls://broker.example:8883")
	}
	if r.str(m["base"], "mqtt.base", &q.Base) {
		if problem := topicProblem(q.Base); problem != "" {
			r.bad(m["base"], "mqtt.base", "%q %s", q.Base, problem)
		}
	}
	if r.str(m["client_id"], "mqtt.client_id", &q.ClientID) && q.ClientID != "" && !clientIDPattern.MatchString(q.ClientID) {
		r.bad(m["client_id"], "mqtt.client_id", "%q is not a client id (1 to 128 of A-Z, a-z, 0-9, '.', '_', ':' and '-'; empty for roomd-ROOM)", q.ClientID)
	}
	if q.ClientID == "" && c.Room != "" {
		q.ClientID = "roomd-" + c.Room
	}
	r.str(m["username"], "mqtt.username", &q.Username)
	if r.str(m["password_file"], "mqtt.password_file", &q.PasswordFile) && q.PasswordFile != "" && q.Username == "" {
		r.bad(m["password_file"], "mqtt.password_file", "is set but mqtt.username is empty (MQTT 3.1.1 sends no password without a user name)")
	}

	tm := r.mapping(m["tls"], "mqtt.tls", "ca_file", "cert_file", "key_file", "server_name")
	r.str(tm["ca_file"], "mqtt.tls.ca_file", &q.TLS.CAFile)
	r.str(tm["cert_file"], "mqtt.tls.cert_file", &q.TLS.CertFile)
	r.str(tm["key_file"], "mqtt.tls.key_file", &q.TLS.KeyFile)
	r.str(tm["server_name"], "mqtt.tls.server_name", &q.TLS.ServerName)
	if (q.TLS.CertFile == "") != (q.TLS.KeyFile == "") {
		r.bad(lineNode(resolve(m["tls"]), mn), "mqtt.tls", "cert_file and key_file go together (a client certificate needs its key)")
	}
	if scheme == "tcp" && q.TLS != (TLS{}) {
		r.bad(lineNode(resolve(m["tls"]), mn), "mqtt.tls", "is set but mqtt.broker uses tcp:// (no TLS); use tls:// or ssl://, or drop mqtt.tls")
	}

	if r.duration(m["keepalive"], "mqtt.keepalive", &q.Keepalive) {
		switch {
		case q.Keepalive <= 0 || q.Keepalive%time.Second != 0:
			r.bad(m["keepalive"], "mqtt.keepalive", "must be a positive whole number of seconds, got %s", q.Keepalive)
		case q.Keepalive*3/2 > 15*time.Second:
			r.bad(m["keepalive"], "mqtt.keepalive", "%s is too long: the broker declares a client dead after 1.5 x keepalive, and guards must see a dead room within 15s (at most 10s)", q.Keepalive)
		}
	}
	if r.duration(m["connect_timeout"], "mqtt.connect_timeout", &q.ConnectTimeout) {
		r.bounded(m["connect_timeout"], "mqtt.connect_timeout", "mqtt.connect_timeout", q.ConnectTimeout)
	}
	if r.duration(m["heartbeat"], "mqtt.heartbeat", &q.Heartbeat) {
		r.bounded(m["heartbeat"], "mqtt.heartbeat", "mqtt.heartbeat", q.Heartbeat)
	}
	var payload int64
	if r.size(m["max_payload"], "mqtt.max_payload", &payload) {
		if payload < 256 || payload > 268435455 {
			r.bad(m["max_payload"], "mqtt.max_payload", "must be between 256 and 268435455 bytes (the MQTT limit), got %d", payload)
		} else {
			q.MaxPayload = int(payload)
		}
	}
	// mqtt.outbox is the earlier name of the journal's bound: max_bytes is
	// taken as journal.max_bytes, max_entries is accepted and unused.
	om := r.mapping(m["outbox"], "mqtt.outbox", "max_entries", "max_bytes")
	var entries int
	r.integer(om["max_entries"], "mqtt.outbox.max_entries", &entries, 1, math.MaxInt32)
	if r.size(om["max_bytes"], "mqtt.outbox.max_bytes", &c.Journal.MaxBytes) && c.Journal.MaxBytes < 256*KiB {
		r.bad(om["max_bytes"], "mqtt.outbox.max_bytes", "must be at least 256KiB, got %d (it now bounds the journal: use journal.max_bytes)", c.Journal.MaxBytes)
	}
}

// broker checks the broker URL and returns its scheme ("" if bad).
func (r *reader) broker(n *yaml.Node, s string) string {
	const path = "mqtt.broker"
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		r.bad(n, path, "%q is not a broker URL (want e.g. tls://broker.example:8883)", s)
		return ""
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls":
	default:
		r.bad(n, path, "%q: scheme %s is not supported (want tcp://, ssl:// or tls://)", s, u.Scheme)
		return ""
	}
	if u.User != nil {
		r.bad(n, path, "%q carries credentials; use mqtt.username and mqtt.password_file", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		r.bad(n, path, "%q has a path or query; a broker URL is scheme://host:port", s)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 || u.Hostname() == "" {
		r.bad(n, path, "%q needs a host and a port (e.g. :8883)", s)
	}
	return u.Scheme
}

// topicProblem says what makes base unusable as a topic prefix; "" if nothing.
func topicProblem(base string) string {
	switch {
	case base == "":
		return "is empty"
	case strings.ContainsAny(base, "+#\x00"):
		return "contains a wildcard (+ or #) or NUL"
	case strings.HasPrefix(base, "$"):
		return "starts with $ (reserved for the broker)"
	case strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") || strings.Contains(base, "//"):
		return "has an empty topic level (leading, trailing or doubled /)"
	}
	return ""
}

func (r *reader) log(n *yaml.Node, c *Config) {
	m := r.mapping(n, "log", "format", "level")
	if i := r.enum(m["format"], "log.format", "text", "json"); i >= 0 {
		c.Log.Format = []LogFormat{LogText, LogJSON}[i]
	}
	if i := r.enum(m["level"], "log.level", "debug", "info", "warn", "error"); i >= 0 {
		c.Log.Level = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[i]
	}
}

// eol reads an end-of-line loop: {preset: galaxy, scheme: double,
// adc: {bus: "1", address: 0x48, channel: 0}, pull_up: 2200,
// supply_mv: 3300, hold: 300ms}, or bands of its own instead of a preset:
// bands: [{band: tamper_short, to: 800}, {band: normal, from: 800, to: 1300}, ...].
func (r *reader) eol(n *yaml.Node, path string) *EOL {
	m := r.mapping(n, path, "preset", "scheme", "bands", "adc", "pull_up", "supply_mv", "hold")
	if m == nil {
		return nil
	}
	before := len(r.errs)
	e := &EOL{Scheme: eol.SchemeDouble, Bus: "1", Address: 0x48, SupplyMV: 3300, Hold: eol.DefaultHold}
	if i := r.enum(m["preset"], path+".preset", "galaxy", "texecom"); i >= 0 {
		e.Preset = []string{"galaxy", "texecom"}[i]
		e.PullUp = map[string]int{"galaxy": 2200, "texecom": 4700}[e.Preset]
	}
	if i := r.enum(m["scheme"], path+".scheme", "single", "double"); i >= 0 {
		e.Scheme = []eol.Scheme{eol.SchemeSingle, eol.SchemeDouble}[i]
	}
	if bn := resolve(m["bands"]); bn != nil {
		if e.Preset != "" {
			r.bad(bn, path+".bands", "give either preset or bands, not both")
		}
		e.Bands = r.bands(bn, path+".bands")
	} else if e.Preset == "" && resolve(m["preset"]) == nil {
		r.bad(n, path, "needs a preset (galaxy or texecom) or bands of its own")
	}
	am := r.mapping(m["adc"], path+".adc", "bus", "address", "channel")
	if resolve(m["adc"]) == nil {
		r.bad(n, path+".adc", "is required: the ADS1115 input the loop is read through, e.g. {address: 0x48, channel: 0}")
	}
	if r.str(am["bus"], path+".adc.bus", &e.Bus) && !chipPattern.MatchString(e.Bus) {
		r.bad(am["bus"], path+".adc.bus", "%q is not an I²C bus (e.g. 1 for /dev/i2c-1)", e.Bus)
	}
	r.integer(am["address"], path+".adc.address", &e.Address, 0x48, 0x4B)
	r.integer(am["channel"], path+".adc.channel", &e.Channel, 0, 3)
	r.integer(m["pull_up"], path+".pull_up", &e.PullUp, 100, 1000000)
	if e.PullUp == 0 && resolve(m["pull_up"]) == nil {
		r.bad(n, path+".pull_up", "is required with bands of your own: the divider's resistor to the supply, in ohms")
	}
	r.integer(m["supply_mv"], path+".supply_mv", &e.SupplyMV, 1000, 5500)
	if r.duration(m["hold"], path+".hold", &e.Hold) && (e.Hold < 0 || e.Hold > 5*time.Second) {
		r.bad(m["hold"], path+".hold", "must be between 0s and 5s, got %s", e.Hold)
	}
	if len(r.errs) == before {
		if err := e.Table().Validate(); err != nil {
			for _, p := range unjoin(err) {
				r.bad(lineNode(resolve(m["bands"]), n), path+".bands", "%s", p.Error())
			}
		}
	}
	return e
}

// bands reads a band table of one's own.
func (r *reader) bands(n *yaml.Node, path string) []eol.Range {
	if n.Kind != yaml.SequenceNode {
		r.bad(n, path, "must be a list of {band, from, to}, got %s", kindName(n))
		return nil
	}
	var out []eol.Range
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		m := r.mapping(item, p, "band", "from", "to")
		if m == nil {
			continue
		}
		var name string
		var b eol.Band
		if r.str(m["band"], p+".band", &name) {
			var err error
			if b, err = eol.ParseBand(name); err != nil {
				r.bad(m["band"], p+".band", "%s", err.Error())
			}
		} else {
			r.bad(item, p+".band", "is required")
		}
		from, to := 0, -1
		r.integer(m["from"], p+".from", &from, 0, 100000000)
		r.integer(m["to"], p+".to", &to, 0, 100000000)
		rg := eol.Range{Band: b, From: float64(from), To: math.Inf(1)}
		if to >= 0 {
			rg.To = float64(to)
		}
		if resolve(m["from"]) == nil && len(out) > 0 {
			rg.From = out[len(out)-1].To // from where the band before ends
		}
		out = append(out, rg)
	}
	return out
}

// unjoin splits a joined error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
