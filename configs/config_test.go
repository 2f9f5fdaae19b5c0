package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

// base is a valid gpio config; tests derive bad ones from it by replacing text.
const base = `room: room-1
policy:
  preset: italy
device:
  backend: gpio
  inputs:
    door:     {pin: GPIO17}
    lock:     {chip: gpiochip0, line: 27}
    presence: [{pin: GPIO22, debounce: 200ms}]
    panic:    {pin: GPIO23, debounce: 20ms}
    staff:    {pin: GPIO24, active_low: true}
  outputs:
    in_use:  {pin: GPIO5}
    warning: {pin: GPIO6}
    alarm:   {pin: GPIO13}
mqtt:
  broker: tls://broker.example:8883
`

// variant returns base with each old replaced by the following new.
func variant(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		require.Contains(t, s, pairs[i], "test setup: base lacks %q", pairs[i])
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// problems returns the messages of every error joined in err.
func problems(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var out []string
	for _, e := range list {
		var fe *FieldError
		require.True(t, errors.As(e, &fe), "not a *FieldError: %v", e)
		out = append(out, e.Error())
	}
	return out
}

func TestBaseParses(t *testing.T) {
	c, err := Parse([]byte(base), "base.yaml")
	require.NoError(t, err)
	assert.Equal(t, "room-1", c.Room)
	assert.Equal(t, "/var/lib/roomd", c.StateDir)
	assert.Equal(t, "italy", c.PolicyPreset)
	assert.Equal(t, "italy", c.Policy.Name)
	assert.Equal(t, 2*time.Hour, c.Policy.MaxDuration)
	assert.Equal(t, 90*24*time.Hour, c.Policy.FunctionTestEvery, "a function test is due quarterly by default")
	assert.Equal(t, BackendGPIO, c.Device.Backend)
	assert.Equal(t, &Line{Pin: "GPIO17", Pull: PullUp, Debounce: 30 * time.Millisecond}, c.Device.Inputs.Door)
	assert.Equal(t, &Line{Chip: "gpiochip0", Line: 27, Pull: PullUp, Debounce: 30 * time.Millisecond}, c.Device.Inputs.Lock)
	assert.Equal(t, []Line{{Pin: "GPIO22", Pull: PullUp, Debounce: 200 * time.Millisecond}}, c.Device.Inputs.Presence)
	assert.True(t, c.Device.Inputs.Staff.ActiveLow)
	assert.Equal(t, Line{Pin: "GPIO13"}, c.Device.Outputs[controller.OutputAlarmLight], "the older key alarm is alarm_light")
	assert.Len(t, c.Device.Outputs, 3)
	assert.Equal(t, []Line{{Pin: "GPIO23", Pull: PullUp, Debounce: 20 * time.Millisecond}}, c.Device.Inputs.Panic, "one unnamed panic point")
	assert.Nil(t, c.Device.Feedback)
	assert.Equal(t, "roomd-room-1", c.MQTT.ClientID)
	assert.Equal(t, Default().Journal, c.Journal)
	assert.Len(t, c.Device.Inputs.ByRole(), 5)
}

// parseFile parses a shipped file without checking the files it names
// (the example names /etc/roomd/..., which is not there on a test machine).
func parseFile(t *testing.T, name string) *Config {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	c, err := Parse(data, name)
	require.NoError(t, err)
	return c
}

func TestShippedFilesParse(t *testing.T) {
	for _, f := range []string{"roomd.example.yaml", "demo.yaml"} {
		t.Run(f, func(t *testing.T) {
			c := parseFile(t, f)
			require.NoError(t, c.Policy.Validate())
		})
	}
	t.Run("example wiring", func(t *testing.T) {
		c := parseFile(t, "roomd.example.yaml")
		assert.Equal(t, BackendGPIO, c.Device.Backend)
		assert.Len(t, c.Device.Inputs.ByRole(), 5)
		assert.Len(t, c.Device.Outputs, 5)
		assert.Len(t, c.Device.Inputs.Panic, 2, "bed and toilet")
		assert.Contains(t, c.Device.Feedback, controller.OutputAlarmSounder)
		assert.True(t, c.Device.Inputs.Staff.ActiveLow, "the staff key switch is normally open, wired active low")
		assert.False(t, c.Device.Inputs.Door.ActiveLow, "NC door contact: a cut wire reads open")
	})
	t.Run("demo", func(t *testing.T) {
		c := parseFile(t, "demo.yaml")
		assert.Equal(t, BackendSim, c.Device.Backend)
		assert.Equal(t, "tcp://127.0.0.1:1883", c.MQTT.Broker)
		assert.Equal(t, "italy", c.PolicyPreset)
		assert.False(t, filepath.IsAbs(c.StateDir))
	})
}

func TestPresets(t *testing.T) {
	assert.Equal(t, []string{"canada", "denmark", "estonia", "italy", "punjab", "spain"}, PresetNames())
	want := map[string]struct {
		max, welfare time.Duration
	}{
		"italy":   {2 * time.Hour, 0},
		"spain":   {3 * time.Hour, 0},
		"canada":  {72 * time.Hour, 4 * time.Hour},
		"denmark": {47 * time.Hour, 4 * time.Hour},
		"estonia": {72 * time.Hour, 4 * time.Hour},
		"punjab":  {2 * time.Hour, 0},
	}
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			p, err := Preset(name)
			require.NoError(t, err)
			require.NoError(t, p.Validate())
			assert.Equal(t, name, p.Name)
			assert.Equal(t, want[name].max, p.MaxDuration)
			assert.Equal(t, want[name].welfare, p.WelfareCheckEvery)
			assert.Equal(t, controller.LockDuringVisit, p.LockScope)

			// Every preset file spells out every field and cites its source.
			data, err := os.ReadFile(filepath.Join("policies", name+".yaml"))
			require.NoError(t, err)
			for _, k := range policyKeys {
				assert.Contains(t, string(data), "\n"+k+":", "preset %s lacks %s", name, k)
			}
			assert.Contains(t, string(data), "Source:")
			assert.Contains(t, string(data), "roomd default")

			// A config naming the preset gets it.
			c, err := Parse([]byte(variant(t, "preset: italy", "preset: "+name)), "")
			require.NoError(t, err)
			assert.Equal(t, p, c.Policy)
		})
	}
	_, err := Preset("atlantis")
	require.ErrorContains(t, err, `unknown preset "atlantis" (known: canada, denmark, estonia, italy, punjab, spain)`)
}

func TestInlineOverridesPreset(t *testing.T) {
	c, err := Parse([]byte(variant(t, "preset: italy\n", "preset: italy\n  max_duration: 90m\n  warnings: []\n  extension: forbidden\n")), "")
	require.NoError(t, err)
	italy, err := Preset("italy")
	require.NoError(t, err)
	want := italy
	want.MaxDuration = 90 * time.Minute
	want.Warnings = nil
	want.Extension = controller.ExtensionForbidden
	assert.Equal(t, want, c.Policy)
	assert.Equal(t, "italy", c.PolicyPreset)
}

func TestInlinePolicyWithoutPreset(t *testing.T) {
	c, err := Parse([]byte(variant(t, "preset: italy", "max_duration: 45m")), "")
	require.NoError(t, err)
	assert.Equal(t, "custom", c.Policy.Name)
	assert.Empty(t, c.PolicyPreset)
	assert.Equal(t, 45*time.Minute, c.Policy.MaxDuration)
	assert.Equal(t, Default().Policy.Warnings, c.Policy.Warnings)
}

func TestUnknownKeysAllReported(t *testing.T) {
	doc := variant(t,
		"room: room-1\n", "room: room-1\ncolour: blue\n",
		"backend: gpio\n", "backend: gpio\n  speed: 9\n",
		"door:     {pin: GPIO17}", "door:     {pin: GPIO17, debounse: 30ms}",
		"broker: tls://broker.example:8883\n", "broker: tls://broker.example:8883\n  password: hunter2\n  tls: {ca: x}\n",
		"preset: italy\n", "preset: italy\n  max_visit: 2h\n",
	)
	got := problems(t, mustFail(t, doc, "bad.yaml"))
	want := []string{
		"bad.yaml:2: colour: unknown key",
		"bad.yaml:5: policy.max_visit: unknown key",
		"bad.yaml:8: device.speed: unknown key",
		"bad.yaml:10: device.inputs.door.debounse: unknown key",
		"bad.yaml:21: mqtt.password: unknown key (the password never goes in the config",
		"bad.yaml:22: mqtt.tls.ca: unknown key (known keys here: ca_file, cert_file, key_file, server_name)",
	}
	require.Len(t, got, len(want), "got:\n%s", strings.Join(got, "\n"))
	for i := range want {
		assert.Contains(t, got[i], want[i])
	}
}

func mustFail(t *testing.T, doc, source string) error {
	t.Helper()
	_, err := Parse([]byte(doc), source)
	require.Error(t, err)
	return err
}

func TestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // one entry per expected problem, in order
	}{
		{"bad duration", variant(t, "{pin: GPIO17}", "{pin: GPIO17, debounce: 50xs}"),
			[]string{`device.inputs.door.debounce: "50xs" is not a duration`}},
		{"negative debounce", variant(t, "{pin: GPIO17}", "{pin: GPIO17, debounce: -1ms}"),
			[]string{`device.inputs.door.debounce: must be between 0s and 5s, got -1ms`}},
		{"debounce too long", variant(t, "{pin: GPIO17}", "{pin: GPIO17, debounce: 6s}"),
			[]string{`device.inputs.door.debounce: must be between 0s and 5s, got 6s`}},
		{"several at once", variant(t, "{pin: GPIO17}", "{pin: GPIO17, pull: sideways, active_low: yes}", "room: room-1", "room: Room 1"),
			[]string{`room: "Room 1" is not a room id`, `device.inputs.door.active_low: "yes" is not a boolean`, `device.inputs.door.pull: "sideways" is not one of up, down, none`}},
		{"negative policy duration", variant(t, "preset: italy\n", "preset: italy\n  lock_grace: -5s\n"),
			[]string{"policy.lock_grace: must be between 0s and 1h, got -5s"}},
		{"warning not shorter than max", variant(t, "preset: italy\n", "preset: italy\n  warnings: [10m, 2h]\n"),
			[]string{"base.yaml:4: policy.warnings[1]: 2h0m0s is not shorter than max_duration 2h0m0s"}},
		{"preset value contradicts inline max", variant(t, "preset: italy\n", "preset: italy\n  max_duration: 5m\n"),
			[]string{"policy.warnings[0]: 10m0s is not shorter than max_duration 5m0s (from preset italy)"}},
		{"negative function test interval", variant(t, "preset: italy\n", "preset: italy\n  function_test_every: -24h\n"),
			[]string{"base.yaml:4: policy.function_test_every: must be between 1h and 8784h (or 0s: off), got -24h0m0s"}},
		{"welfare not shorter than max", variant(t, "preset: italy\n", "preset: italy\n  welfare_check_every: 3h\n"),
			[]string{"policy.welfare_check_every: 3h0m0s is not shorter than max_duration"}},
		{"no policy", variant(t, "policy:\n  preset: italy\n", ""),
			[]string{"policy: is required: name a preset (policy.preset: one of canada, denmark, estonia, italy, punjab, spain) or give at least policy.max_duration"}},
		{"unknown preset", variant(t, "preset: italy", "preset: narnia"),
			[]string{`policy.preset: unknown preset "narnia"`}},
		{"no room", variant(t, "room: room-1\n", ""), []string{"room: is required"}},
		{"missing inputs and outputs", variant(t, "    door:     {pin: GPIO17}\n", "", "    panic:    {pin: GPIO23, debounce: 20ms}\n", "", "    alarm:   {pin: GPIO13}\n", ""),
			[]string{"device.inputs.door: is required with backend gpio", "device.inputs.panic: is required with backend gpio: a private visit room must have a panic button", "device.outputs.alarm_light: is required with backend gpio"}},
		{"alarm and alarm_light", variant(t, "alarm:   {pin: GPIO13}", "alarm:   {pin: GPIO13}\n    alarm_light: {pin: GPIO12}"),
			[]string{"device.outputs.alarm: is the older name of alarm_light, which is given too"}},
		{"panic list without names", variant(t, "panic:    {pin: GPIO23, debounce: 20ms}", "panic:\n      - {name: bed, pin: GPIO23}\n      - {pin: GPIO25}\n      - {name: bed, pin: GPIO26}\n      - {name: Toilet, pin: GPIO16}"),
			[]string{"device.inputs.panic[1]: needs a name", "device.inputs.panic[2].name: \"bed\" is already the name of device.inputs.panic[0]", "device.inputs.panic[3].name: \"Toilet\" is not a point name"}},
		{"panic empty list", variant(t, "panic:    {pin: GPIO23, debounce: 20ms}", "panic: []"),
			[]string{"device.inputs.panic: is an empty list"}},
		{"panic point on a used line", variant(t, "panic:    {pin: GPIO23, debounce: 20ms}", "panic: [{name: bed, pin: GPIO23}, {name: toilet, pin: GPIO17}]"),
			[]string{"device.inputs.panic[1]: line GPIO17 is already used by device.inputs.door"}},
		{"name outside panic", variant(t, "{pin: GPIO17}", "{pin: GPIO17, name: front}"),
			[]string{"device.inputs.door.name: unknown key"}},
		{"feedback", variant(t, "alarm:   {pin: GPIO13}", "alarm:   {pin: GPIO13, feedback: {pin: GPIO5, debounce: 5ms}}"),
			[]string{"device.outputs.alarm.feedback.debounce: unknown key", "device.outputs.alarm.feedback: line GPIO5 is already used by device.outputs.in_use"}},
		{"feedback grace", variant(t, "backend: gpio\n", "backend: gpio\n  blink_period: 300ms\n  feedback_grace: 200ms\n"),
			[]string{"device.feedback_grace: must be at least 10ms and shorter than 150ms"}},
		{"inspection not a boolean", variant(t, "preset: italy\n", "preset: italy\n  inspection_after_visit: sometimes\n"),
			[]string{`policy.inspection_after_visit: "sometimes" is not a boolean`}},
		{"no presence with end_on_vacancy", variant(t, "[{pin: GPIO22, debounce: 200ms}]", "[]"),
			[]string{"device.inputs.presence: is empty, but policy.end_on_vacancy is true"}},
		{"presence not a list", variant(t, "[{pin: GPIO22, debounce: 200ms}]", "{pin: GPIO22}"),
			[]string{"device.inputs.presence: must be a list of lines"}},
		{"pin and chip", variant(t, "{pin: GPIO17}", "{pin: GPIO17, chip: gpiochip0, line: 17}"),
			[]string{"device.inputs.door: give either pin or chip and line, not both"}},
		{"neither pin nor chip", variant(t, "{pin: GPIO17}", "{pull: up}"),
			[]string{"device.inputs.door: names no line"}},
		{"chip without line", variant(t, "{pin: GPIO17}", "{chip: gpiochip0}"),
			[]string{"device.inputs.door: chip and line go together"}},
		{"bad pin name", variant(t, "{pin: GPIO17}", `{pin: "GPIO 17"}`),
			[]string{`device.inputs.door.pin: "GPIO 17" is not a pin name`}},
		{"duplicate pin", variant(t, "alarm:   {pin: GPIO13}", "alarm:   {pin: gpio17}"),
			[]string{"device.outputs.alarm: line gpio17 is already used by device.inputs.door"}},
		{"duplicate pin beside another error", variant(t, "alarm:   {pin: GPIO13}", "alarm:   {pin: GPIO17, active_low: 2}"),
			[]string{"device.outputs.alarm.active_low: \"2\" is not a boolean", "device.outputs.alarm: line GPIO17 is already used by device.inputs.door"}},
		{"duplicate chip line", variant(t, "staff:    {pin: GPIO24, active_low: true}", "staff:    {chip: gpiochip0, line: 27}"),
			[]string{"device.inputs.staff: line gpiochip0:27 is already used by device.inputs.lock"}},
		{"output pull", variant(t, "in_use:  {pin: GPIO5}", "in_use:  {pin: GPIO5, pull: up}"),
			[]string{"device.outputs.in_use.pull: unknown key"}},
		{"keepalive too long", variant(t, "broker: tls://broker.example:8883\n", "broker: tls://broker.example:8883\n  keepalive: 11s\n"),
			[]string{"mqtt.keepalive: 11s is too long"}},
		{"keepalive fraction", variant(t, "broker: tls://broker.example:8883\n", "broker: tls://broker.example:8883\n  keepalive: 1500ms\n"),
			[]string{"mqtt.keepalive: must be a positive whole number of seconds"}},
		{"broker scheme", variant(t, "tls://broker.example:8883", "ws://broker.example:8883"),
			[]string{"mqtt.broker: \"ws://broker.example:8883\": scheme ws is not supported"}},
		{"broker port", variant(t, "tls://broker.example:8883", "tls://broker.example"),
			[]string{"mqtt.broker: \"tls://broker.example\" needs a host and a port"}},
		{"no broker", variant(t, "mqtt:\n  broker: tls://broker.example:8883\n", ""),
			[]string{"mqtt.broker: is required"}},
		{"tls on tcp", variant(t, "tls://broker.example:8883\n", "tcp://127.0.0.1:1883\n  tls: {ca_file: /x}\n"),
			[]string{"mqtt.tls: is set but mqtt.broker uses tcp://"}},
		{"cert without key", variant(t, "tls://broker.example:8883\n", "tls://broker.example:8883\n  tls: {cert_file: /x}\n"),
			[]string{"mqtt.tls: cert_file and key_file go together"}},
		{"password without user", variant(t, "tls://broker.example:8883\n", "tls://broker.example:8883\n  password_file: /x\n"),
			[]string{"mqtt.password_file: is set but mqtt.username is empty"}},
		{"base wildcard", variant(t, "tls://broker.example:8883\n", "tls://broker.example:8883\n  base: rooms/#\n"),
			[]string{`mqtt.base: "rooms/#" contains a wildcard`}},
		{"sizes", variant(t, "tls://broker.example:8883\n", "tls://broker.example:8883\n  max_payload: 4MB\n  outbox: {max_entries: 0, max_bytes: 1KiB}\n"),
			[]string{`mqtt.max_payload: "4MB" is not a byte size`, "mqtt.outbox.max_entries: must be at least 1, got 0", "mqtt.outbox.max_bytes: must be at least 256KiB, got 1024"}},
		{"homeassistant", base + "homeassistant: {enabled: yes please, discovery_prefix: ha/#, entities: all}\n",
			[]string{`homeassistant.entities: unknown key`, `homeassistant.enabled: "yes please" is not a boolean`, `homeassistant.discovery_prefix: "ha/#" contains a wildcard`}},
		{"homeassistant prefix under the base", base + "homeassistant: {enabled: true, discovery_prefix: visitrooms/ha}\n",
			[]string{`homeassistant.discovery_prefix: "visitrooms/ha" overlaps mqtt.base "visitrooms"`}},
		{"homeassistant prefix is the base", variant(t, "tls://broker.example:8883\n", "tls://broker.example:8883\n  base: site/rooms\n") + "homeassistant: {discovery_prefix: site}\n",
			[]string{`homeassistant.discovery_prefix: "site" overlaps mqtt.base "site/rooms"`}},
		{"log", base + "log: {format: xml, level: loud}\n",
			[]string{`log.format: "xml" is not one of text, json`, `log.level: "loud" is not one of debug, info, warn, error`}},
		{"metrics", base + "metrics: {textfile: roomd.txt, every: 1s, listen: \":9100\"}\n",
			[]string{`metrics.listen: unknown key`, `metrics.textfile: "roomd.txt" must be an absolute path ending in .prom`, "metrics.every: must be between 5s and 5m, got 1s"}},
		{"duplicate key", base + "room: room-2\n",
			[]string{"base.yaml:18: room: given twice (first on line 1)"}},
		{"wrong kind", variant(t, "backend: gpio", "backend: [gpio]"),
			[]string{"device.backend: must be a single value, got a list"}},
		{"flap", variant(t, "backend: gpio\n", "backend: gpio\n  flap: {max_changes: 1, window: 0s}\n"),
			[]string{"device.flap.max_changes: must be at least 2", "device.flap.window: must be between 1s and 1h, got 0s"}},
		{"second document", base + "---\nroom: x\n", []string{"base.yaml:18: the file holds a second YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, mustFail(t, tc.doc, "base.yaml"))
			require.Len(t, got, len(tc.want), "got:\n%s", strings.Join(got, "\n"))
			for i := range tc.want {
				assert.Contains(t, got[i], tc.want[i])
				assert.True(t, strings.HasPrefix(got[i], "base.yaml:"), "no file:line in %q", got[i])
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse([]byte("room: [\n"), "x.yaml")
	require.ErrorContains(t, err, "parse x.yaml: yaml:")
}

func TestSimNeedsNoLines(t *testing.T) {
	c, err := Parse([]byte("room: r\npolicy: {max_duration: 1h}\ndevice: {backend: sim}\nmqtt: {broker: tcp://127.0.0.1:1883}\n"), "")
	require.NoError(t, err)
	assert.Nil(t, c.Device.Outputs)
	assert.Empty(t, c.Device.Inputs.ByRole())
}

func TestEndOnVacancyOffAllowsNoPresence(t *testing.T) {
	_, err := Parse([]byte(variant(t, "[{pin: GPIO22, debounce: 200ms}]", "[]", "preset: italy\n", "preset: italy\n  end_on_vacancy: false\n")), "")
	require.NoError(t, err)
}

func TestYAMLRoundTrips(t *testing.T) {
	docs := map[string]string{
		"base":                     base,
		"named single panic point": variant(t, "panic:    {pin: GPIO23, debounce: 20ms}", "panic:    {name: pull_cord, pin: GPIO23}"),
		"custom": variant(t, "preset: italy", "max_duration: 1h30m\n  warnings: []\n  welfare_check_every: 20m\n  panic_reset: ack\n  lock_scope: always\n  inspection_after_visit: true",
			"tls://broker.example:8883\n", "tls://broker.example:8883\n  max_payload: 12345\n  outbox: {max_entries: 7, max_bytes: 1MiB}\n  username: u\n  password_file: /p\n  tls: {ca_file: /ca, cert_file: /c, key_file: /k, server_name: b}\n",
			"alarm:   {pin: GPIO13}", "alarm_light: {chip: gpiochip4, line: 13, active_low: true, feedback: {chip: gpiochip4, line: 14, pull: down}}\n    alarm_sounder: {pin: GPIO12, feedback: {pin: GPIO16, active_low: true}}\n    reassurance: {pin: GPIO20}",
			"panic:    {pin: GPIO23, debounce: 20ms}", "panic: [{name: bed, pin: GPIO23}, {name: toilet, chip: gpiochip4, line: 2, active_low: true}]",
			"backend: gpio\n", "backend: gpio\n  feedback_grace: 50ms\n",
			"[{pin: GPIO22, debounce: 200ms}]", "[{pin: GPIO22, debounce: 200ms}, {chip: gpiochip4, line: 26, pull: down}]") +
			"log: {format: json, level: warn}\nstate_dir: ./state\nhomeassistant: {enabled: true, discovery_prefix: ha}\n",
	}
	docs["supervised loops and power"] = variant(t,
		"panic:    {pin: GPIO23, debounce: 20ms}", "panic: [{name: bed, eol: {preset: galaxy, adc: {address: 0x48, channel: 0}}}, "+
			"{name: toilet, eol: {preset: texecom, scheme: single, adc: {bus: '1', address: 0x49, channel: 3}, pull_up: 4700, supply_mv: 3300, hold: 500ms}}]",
		"door:     {pin: GPIO17}", "door: {eol: {bands: [{band: tamper_short, to: 500}, {band: normal, to: 1500}, {band: alarm, to: 10000}, {band: tamper_open}], pull_up: 2200, adc: {channel: 1}}}",
		"backend: gpio\n", "backend: gpio\n  power: {mains_fail: {pin: GPIO5, active_low: true}, battery_low: {chip: gpiochip0, line: 6}}\n  healthy: {pin: GPIO12}\n",
		"in_use:  {pin: GPIO5}", "in_use:  {pin: GPIO7}")
	for _, f := range []string{"roomd.example.yaml", "demo.yaml"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		docs[f] = string(data)
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(doc), name)
			require.NoError(t, err)
			out, err := c.YAML()
			require.NoError(t, err)
			again, err := Parse(out, name+" (effective)")
			require.NoError(t, err, "YAML output:\n%s", out)
			assert.Equal(t, c, again)
			out2, err := again.YAML()
			require.NoError(t, err)
			assert.Equal(t, string(out), string(out2))
		})
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	assert.Equal(t, "/var/lib/roomd", d.StateDir)
	assert.Equal(t, BackendGPIO, d.Device.Backend)
	assert.Equal(t, 5*time.Second, d.MQTT.Keepalive)
	assert.Equal(t, int64(64*MiB), d.Journal.MaxBytes)
	assert.Equal(t, HomeAssistant{Enabled: false, DiscoveryPrefix: "homeassistant"}, d.HomeAssistant, "opt-in")
	d.Policy.MaxDuration = time.Hour
	require.NoError(t, d.Policy.Validate(), "the default policy with a max_duration is valid")
}

func TestFormatting(t *testing.T) {
	for d, s := range map[time.Duration]string{0: "0s", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 10 * time.Minute: "10m",
		500 * time.Millisecond: "500ms", 61 * time.Second: "1m1s", 3601 * time.Second: "1h0m1s"} {
		assert.Equal(t, s, formatDuration(d))
	}
	for n, s := range map[int64]string{0: "0", 1000: "1000", 4096: "4KiB", 64 * MiB: "64MiB", 2 * GiB: "2GiB"} {
		assert.Equal(t, s, formatSize(n))
	}
}

func TestEmptyFile(t *testing.T) {
	got := problems(t, mustFail(t, "", "empty.yaml"))
	require.Len(t, got, 4, "got:\n%s", strings.Join(got, "\n"))
	assert.Equal(t, "empty.yaml: room: is required: the room's id, e.g. room-1", got[0])
	assert.Contains(t, got[1], "empty.yaml: policy: is required")
	assert.Contains(t, got[2], "empty.yaml: device: is required")
	assert.Contains(t, got[3], "empty.yaml: mqtt.broker: is required")
}

func TestAliasesAreFollowed(t *testing.T) {
	doc := variant(t, "door:     {pin: GPIO17}", "door:     &contact {pin: GPIO17, debounce: 40ms}") + "# end\n"
	c, err := Parse([]byte(doc), "")
	require.NoError(t, err)
	assert.Equal(t, 40*time.Millisecond, c.Device.Inputs.Door.Debounce)
}

// FuzzParse checks that Parse never panics, that it fails only with
// *FieldErrors or a syntax error, and that whatever it accepts round-trips.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	for _, name := range []string{"roomd.example.yaml", "demo.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		out, err := c.YAML()
		require.NoError(t, err)
		again, err := Parse(out, "fuzz (effective)")
		require.NoError(t, err, "effective config:\n%s", out)
		require.Equal(t, c, again)
	})
}

func TestSupervisedLoops(t *testing.T) {
	c, err := Parse([]byte(variant(t, "panic:    {pin: GPIO23, debounce: 20ms}",
		"panic: [{name: bed, eol: {preset: galaxy, adc: {address: 0x48, channel: 0}}}]",
		"backend: gpio\n", "backend: gpio\n  power: {mains_fail: {pin: GPIO20, active_low: true}, battery_low: {pin: GPIO21}}\n  healthy: {pin: GPIO12}\n")), "t")
	require.NoError(t, err)
	bed := c.Device.Inputs.Panic[0]
	require.NotNil(t, bed.EOL)
	assert.Equal(t, "bed", bed.Point)
	assert.Equal(t, 2200, bed.EOL.PullUp, "Galaxy's divider by default")
	assert.Equal(t, 0x48, bed.EOL.Address)
	assert.Equal(t, 300*time.Millisecond, bed.EOL.Hold)
	require.NoError(t, bed.EOL.Table().Validate())
	require.NotNil(t, c.Device.MainsFail)
	assert.True(t, c.Device.MainsFail.ActiveLow)
	require.NotNil(t, c.Device.Healthy)
	assert.Equal(t, "GPIO12", c.Device.Healthy.Pin)

	for name, c := range map[string]struct {
		old, new string
		want     []string
	}{
		"bands overlap": {"door:     {pin: GPIO17}", "door: {eol: {bands: [{band: tamper_short, to: 500}, {band: normal, from: 400, to: 1500}, {band: alarm, to: 10000}, {band: tamper_open}], pull_up: 2200, adc: {channel: 1}}}",
			[]string{"device.inputs.door.eol.bands: band normal (400 Ω–1,500 Ω): overlaps tamper_short (400 Ω–500 Ω)"}},
		"bands leave a gap": {"door:     {pin: GPIO17}", "door: {eol: {bands: [{band: tamper_short, to: 500}, {band: normal, from: 600, to: 1500}, {band: alarm}], scheme: single, pull_up: 2200, adc: {channel: 1}}}",
			[]string{"gap after tamper_short (nothing covers 500 Ω–600 Ω)"}},
		"bands do not reach open": {"door:     {pin: GPIO17}", "door: {eol: {bands: [{band: tamper_short, to: 500}, {band: normal, to: 1500}, {band: alarm, to: 9000}], scheme: single, pull_up: 2200, adc: {channel: 1}}}",
			[]string{"must reach open circuit"}},
		"preset and bands": {"door:     {pin: GPIO17}", "door: {eol: {preset: galaxy, bands: [{band: normal}], adc: {channel: 1}}}",
			[]string{"give either preset or bands, not both"}},
		"no adc":               {"door:     {pin: GPIO17}", "door: {eol: {preset: galaxy}}", []string{"device.inputs.door.eol.adc: is required"}},
		"a pin too":            {"door:     {pin: GPIO17}", "door: {pin: GPIO17, eol: {preset: galaxy, adc: {channel: 1}}}", []string{"give no pin, chip or line"}},
		"channel out of range": {"door:     {pin: GPIO17}", "door: {eol: {preset: galaxy, adc: {channel: 4}}}", []string{"device.inputs.door.eol.adc.channel: must be between 0 and 3"}},
		"unknown preset":       {"door:     {pin: GPIO17}", "door: {eol: {preset: honeywell, adc: {channel: 1}}}", []string{`"honeywell" is not one of galaxy, texecom`}},
		"one ADC input twice": {"door:     {pin: GPIO17}", "door: {eol: {preset: galaxy, adc: {channel: 1}}}\n    staff: {eol: {preset: galaxy, adc: {channel: 1}}}",
			[]string{"line i2c-1:0x48:1 is already used by device.inputs.door"}},
	} {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(variant(t, c.old, c.new), "    staff:    {pin: GPIO24, active_low: true}\n", "", 1)
			_, err := Parse([]byte(doc), "t")
			got := strings.Join(problems(t, err), "\n")
			for _, w := range c.want {
				assert.Contains(t, got, w)
			}
		})
	}
}
