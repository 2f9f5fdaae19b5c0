package homeassistant

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func topics(t *testing.T, base, room string) contract.Topics {
	t.Helper()
	tp, err := contract.NewTopics(base, room)
	require.NoError(t, err)
	return tp
}

// TestDiscoveryGolden compares the discovery messages with the files in
// testdata (go test ./link/homeassistant -update rewrites them).
func TestDiscoveryGolden(t *testing.T) {
	for _, tc := range []struct{ base, room, version, file string }{
		{"visitrooms", "room-1", "1.4.0", "visitrooms-room-1.json"},
		{"prison-a/wing-b", "b_12", "1.4.0-3-gabcdef", "prison-a-wing-b-b_12.json"},
	} {
		var out bytes.Buffer
		require.NoError(t, json.Indent(&out, Payload(topics(t, tc.base, tc.room), tc.version), "", "  "))
		out.WriteByte('\n')
		path := filepath.Join("testdata", tc.file)
		if *update {
			require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test ./link/homeassistant -update to write it")
		assert.Equal(t, string(want), out.String(), "%s (run with -update after a deliberate change)", path)
	}
	assert.Equal(t, "homeassistant/device/roomd_room-1/config", DiscoveryTopic(DefaultPrefix, "room-1"))
	assert.Equal(t, "ha/status", StatusTopic("ha"))
}

// allowed is every value a template may read, per topic: what each entity
// needs and nothing that identifies a visit or a person.
var allowed = map[string][]string{
	"state":  {"door", "lock", "phase", "alerts", "visit", "visit.ends_at"},
	"alerts": {"type", "alert.id", "alert.kind", "alert.severity"},
}

// allowedAttrs are the alert fields that selectattr/rejectattr may test.
var allowedAttrs = []string{"kind", "cleared_at"}

// forbiddenWords never appear in a template, a name or a device class.
var forbiddenWords = []string{"presence", "occupancy", "motion", "visit_id", "visit.id", "by", "operator", "request_id"}

var (
	valueRef = regexp.MustCompile(`value_json((?:\.[a-z_]+)*)`)
	attrRef  = regexp.MustCompile(`(?:select|reject)attr\('([a-z_]+)'`)
	word     = regexp.MustCompile(`[a-z_.]+`)
)

// privacyProblems checks a discovery payload against the privacy rules and
// returns what breaks them: no presence entity, no attributes Home
// Assistant's recorder would store, templates that read only what they may
// of the state and alerts topics, and no other topic.
func privacyProblems(payload []byte, t contract.Topics) []string {
	var d map[string]any
	if err := json.Unmarshal(payload, &d); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	topicKind := map[string]string{t.State(): "state", t.Alerts(): "alerts"}
	if d["avty_t"] != t.Availability() {
		bad("availability topic %v, want %s", d["avty_t"], t.Availability())
	}
	cmps, _ := d["cmps"].(map[string]any)
	if len(cmps) == 0 {
		bad("no components")
	}
	for key, v := range cmps {
		c, _ := v.(map[string]any)
		for k := range c {
			switch k {
			case "p", "name", "uniq_id", "dev_cla", "stat_t", "val_tpl", "ops", "evt_typ":
			default:
				bad("%s: key %q (only keys that carry no recorded attribute)", key, k)
			}
		}
		kind, ok := topicKind[fmt.Sprint(c["stat_t"])]
		if !ok {
			bad("%s: reads %v, not the state or alerts topic", key, c["stat_t"])
			continue
		}
		text := strings.ToLower(fmt.Sprint(key, " ", c["name"], " ", c["dev_cla"], " ", c["val_tpl"]))
		for _, w := range word.FindAllString(text, -1) {
			parts := strings.Split(w, ".")
			for _, f := range forbiddenWords {
				if (strings.Contains(f, ".") && strings.Contains(w, f)) || contains(parts, f) {
					bad("%s: mentions %q", key, f)
				}
			}
		}
		tpl := fmt.Sprint(c["val_tpl"])
		for _, m := range valueRef.FindAllStringSubmatch(tpl, -1) {
			path := strings.TrimPrefix(m[1], ".")
			if !contains(allowed[kind], path) {
				bad("%s: template reads value_json.%s of %s", key, path, kind)
			}
		}
		for _, m := range attrRef.FindAllStringSubmatch(tpl, -1) {
			if !contains(allowedAttrs, m[1]) {
				bad("%s: template tests the alert field %q", key, m[1])
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestDiscoveryKeepsThePrivacyRules(t *testing.T) {
	tp := topics(t, "visitrooms", "room-1")
	payload := Payload(tp, "1.4.0")
	assert.Empty(t, privacyProblems(payload, tp))

	// The check catches what it is for.
	breakIt := func(edit func(d *Discovery)) []byte {
		d := New(tp, "1.4.0")
		edit(&d)
		b, err := json.Marshal(d)
		require.NoError(t, err)
		return b
	}
	for name, tc := range map[string]struct {
		payload []byte
		want    string
	}{
		"presence entity": {breakIt(func(d *Discovery) {
			d.Components["presence"] = Component{Platform: "binary_sensor", Name: "Presence", DeviceClass: "occupancy",
				StateTopic: tp.State(), ValueTemplate: "{{ value_json.presence }}"}
		}), `presence: mentions "presence"`},
		"visit id in a template": {breakIt(func(d *Discovery) {
			c := d.Components["visit_end"]
			c.ValueTemplate = "{{ value_json.visit.id }}"
			d.Components["visit_end"] = c
		}), "visit_end: template reads value_json.visit.id of state"},
		"operator in the event": {breakIt(func(d *Discovery) {
			c := d.Components["alert"]
			c.ValueTemplate = "{{ {'event_type': value_json.type, 'who': value_json.by} | to_json }}"
			d.Components["alert"] = c
		}), "alert: template reads value_json.by of alerts"},
		"events topic": {breakIt(func(d *Discovery) {
			c := d.Components["alert"]
			c.StateTopic = tp.Events()
			d.Components["alert"] = c
		}), "alert: reads visitrooms/room-1/events"},
	} {
		assert.Contains(t, strings.Join(privacyProblems(tc.payload, tp), "\n"), tc.want, name)
	}
	var withAttrs map[string]any
	require.NoError(t, json.Unmarshal(payload, &withAttrs))
	withAttrs["cmps"].(map[string]any)["door"].(map[string]any)["json_attr_t"] = tp.State()
	b, err := json.Marshal(withAttrs)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(privacyProblems(b, tp), "\n"), `door: key "json_attr_t"`)
}

// sample messages, as roomd publishes them, with a visit id and an
// operator in them that must never reach a rendered value.
const (
	visitID  = "B-1742-secret"
	operator = "guard-secret"
)

func samples(t *testing.T) map[string]any {
	t.Helper()
	at := contract.T(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	ends := contract.T(time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC))
	alert := func(id, kind, severity string, cleared bool) contract.AlertMessage {
		a := contract.AlertMessage{ID: id, Kind: kind, Severity: severity, RaisedAt: at, Announcements: 1}
		if cleared {
			a.ClearedAt = at
		}
		return a
	}
	visit := &contract.VisitMessage{ID: visitID, StartedAt: at, EndsAt: ends, RemainingS: 5400, MaxS: 7200}
	state := func(phase string, v *contract.VisitMessage, door, lock string, alerts ...contract.AlertMessage) contract.StateMessage {
		return contract.StateMessage{Version: 2, Room: "room-1", Epoch: "5f0c2a9e81d4b377", Seq: 7, At: at, Phase: phase, Visit: v,
			Door: door, Lock: lock, Alerts: append([]contract.AlertMessage{}, alerts...), Outputs: map[string]string{"in_use": "on"}}
	}
	acked := alert("panic-3", "panic", "critical", false)
	acked.Acked, acked.AckedAt = true, at
	return map[string]any{
		"idle":      state("idle", nil, "closed", "unlocked"),
		"visit":     state("in_visit", visit, "open", "locked", alert("panic-3", "panic", "critical", false), alert("sensor_fault-4", "sensor_fault", "warning", false)),
		"unknown":   state("overtime", visit, "unknown", "unknown", alert("time_up-5", "time_up", "critical", false), alert("panic-2", "panic", "critical", true)),
		"fault":     state("out_of_service", nil, "closed", "unlocked", alert("system_fault-9", "system_fault", "critical", false)),
		"raised":    contract.EventMessage{Room: "room-1", Epoch: "5f0c2a9e81d4b377", Seq: 8, At: at, Type: "alert_raised", Alert: &acked},
		"acked":     contract.EventMessage{Room: "room-1", Epoch: "5f0c2a9e81d4b377", Seq: 9, At: at, Type: "alert_acked", By: operator, Alert: &acked},
		"inspected": contract.EventMessage{Room: "room-1", Epoch: "5f0c2a9e81d4b377", Seq: 10, At: at, Type: "alert_cleared", By: operator, VisitID: visitID, Alert: &acked},
	}
}

// TestTemplatesRenderWithJinja renders every template with Jinja2, the
// engine Home Assistant's templates run on (with its to_json filter), over
// messages as roomd publishes them, and checks each value, and that no
// visit id or operator id comes out. It needs python3 with jinja2 (Debian
// python3-jinja2): skipped without, failed under CI=true.
func TestTemplatesRenderWithJinja(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil || exec.Command("python3", "-c", "import jinja2").Run() != nil {
		testtier.Missing(t, "python3 with jinja2 is needed (apt-get install python3-jinja2)")
	}
	tp := topics(t, "visitrooms", "room-1")
	d := New(tp, "1.4.0")
	// Each template over the messages of its topic.
	type job struct {
		Template string         `json:"template"`
		Messages map[string]any `json:"messages"`
	}
	jobs := map[string]job{}
	for k, c := range d.Components {
		j := job{Template: c.ValueTemplate, Messages: map[string]any{}}
		for name, m := range samples(t) {
			if _, isEvent := m.(contract.EventMessage); isEvent == (c.StateTopic == tp.Alerts()) {
				j.Messages[name] = m
			}
		}
		jobs[k] = j
	}
	in, err := json.Marshal(jobs)
	require.NoError(t, err)
	cmd := exec.Command("python3", filepath.Join("testdata", "render.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "render.py: %s", stderr.String())
	var got map[string]map[string]string // template → message → rendered
	require.NoError(t, json.Unmarshal(out, &got))

	want := map[string]map[string]string{
		"door":      {"idle": "OFF", "visit": "ON", "unknown": "None", "fault": "OFF"},
		"lock":      {"idle": "ON", "visit": "OFF", "unknown": "None", "fault": "ON"},
		"panic":     {"idle": "OFF", "visit": "ON", "unknown": "OFF", "fault": "OFF"},
		"fault":     {"idle": "OFF", "visit": "ON", "unknown": "OFF", "fault": "ON"},
		"phase":     {"idle": "idle", "visit": "in_visit", "unknown": "overtime", "fault": "out_of_service"},
		"visit_end": {"idle": "None", "visit": "2026-03-01T10:30:00.000Z", "unknown": "2026-03-01T10:30:00.000Z", "fault": "None"},
	}
	for tpl, byMsg := range want {
		for msg, v := range byMsg {
			assert.Equal(t, v, got[tpl][msg], "template %s on %s", tpl, msg)
		}
	}
	for _, msg := range []string{"raised", "acked", "inspected"} {
		var ev map[string]string
		require.NoError(t, json.Unmarshal([]byte(got["alert"][msg]), &ev), "alert on %s: %q", msg, got["alert"][msg])
		typ := samples(t)[msg].(contract.EventMessage).Type
		assert.Equal(t, map[string]string{"event_type": typ, "alert_id": "panic-3", "kind": "panic", "severity": "critical"}, ev, msg)
		assert.Contains(t, AlertEventTypes, typ)
	}
	for tpl, byMsg := range got {
		for msg, v := range byMsg {
			assert.NotContains(t, v, visitID, "template %s on %s", tpl, msg)
			assert.NotContains(t, v, operator, "template %s on %s", tpl, msg)
		}
	}
}
