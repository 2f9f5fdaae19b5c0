package link

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/controller"
)

// The contract documents must agree with the code: every example decodes
// strictly into the wire types, and every event type, alert kind, action and
// refusal code is documented, with an example.

func loadAsyncAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "asyncapi.yaml"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(data, &doc))
	return doc
}

func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%s: not a mapping", strings.Join(path, "."))
		v, ok = m[p]
		require.True(t, ok, "missing %s", strings.Join(path, "."))
	}
	return v
}

func examples(t *testing.T, doc map[string]any, message string) map[string][]byte {
	t.Helper()
	list, ok := get(t, doc, "components", "messages", message, "examples").([]any)
	require.True(t, ok, "message %s: examples is not a list", message)
	require.NotEmpty(t, list, "message %s has no example", message)
	out := map[string][]byte{}
	for i, e := range list {
		name, _ := get(t, e, "name").(string)
		require.NotEmpty(t, name, "message %s example %d has no name", message, i)
		payload := get(t, e, "payload")
		if s, ok := payload.(string); ok {
			out[name] = []byte(s)
			continue
		}
		b, err := json.Marshal(payload)
		require.NoError(t, err, "message %s example %s", message, name)
		out[name] = b
	}
	return out
}

func TestContractExamplesDecodeStrictly(t *testing.T) {
	doc := loadAsyncAPI(t)
	assert.Equal(t, "3.0.0", get(t, doc, "asyncapi"))
	assert.Equal(t, fmt.Sprint(ContractVersion), get(t, doc, "info", "version"))

	for name, p := range examples(t, doc, "availability") {
		assert.Contains(t, []string{Online, Offline}, string(p), name)
	}
	for name, p := range examples(t, doc, "state") {
		var s StateMessage
		require.NoError(t, strictUnmarshal(p, &s), "state example %s", name)
		assert.Equal(t, ContractVersion, s.Version, name)
		if s.Visit != nil {
			assert.Empty(t, s.Presence, "state example %s shows presence during a visit", name)
		} else {
			assert.NotEmpty(t, s.Presence, "state example %s omits presence outside a visit", name)
		}
	}

	types := map[string]bool{}
	for name, p := range examples(t, doc, "event") {
		var e EventMessage
		require.NoError(t, strictUnmarshal(p, &e), "event example %s", name)
		types[e.Type] = true
		assert.Equal(t, e.Type, strings.TrimSuffix(name, "_vacated"), "event example named after its type")
	}
	for _, et := range controller.EventTypes {
		assert.True(t, types[et.String()], "no event example of type %s", et)
	}

	kinds := map[string]bool{}
	for name, p := range examples(t, doc, "alert") {
		var e EventMessage
		require.NoError(t, strictUnmarshal(p, &e), "alert example %s", name)
		require.NotNil(t, e.Alert, name)
		assert.True(t, strings.HasPrefix(e.Type, "alert_"), name)
		kinds[e.Alert.Kind] = true
	}
	for _, k := range controller.AlertKinds {
		assert.True(t, kinds[k.String()], "no alert example of kind %s", k)
	}

	actions := map[string]bool{}
	for name, p := range examples(t, doc, "command") {
		var c CommandMessage
		require.NoError(t, strictUnmarshal(p, &c), "command example %s", name)
		cmd, cerr := DecodeCommand(p, 0, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		require.Nil(t, cerr, "command example %s refused: %v", name, cerr)
		actions[cmd.Action.String()] = true
	}
	for _, a := range controller.CommandActions {
		assert.True(t, actions[a.String()], "no command example of action %s", a)
	}

	codes := map[string]bool{}
	for name, p := range examples(t, doc, "reply") {
		var r ReplyMessage
		require.NoError(t, strictUnmarshal(p, &r), "reply example %s", name)
		if r.OK {
			assert.NotNil(t, r.State, name)
			assert.Nil(t, r.Error, name)
			continue
		}
		require.NotNil(t, r.Error, name)
		assert.Nil(t, r.State, name)
		codes[r.Error.Code] = true
	}
	for _, c := range allCodes() {
		assert.True(t, codes[string(c)], "no reply example with code %s", c)
	}

	for name, p := range examples(t, doc, "simOutputs") {
		var m map[string]string
		require.NoError(t, strictUnmarshal(p, &m), name)
		for _, o := range controller.Outputs {
			assert.Contains(t, m, o.String(), name)
		}
	}
	for name, p := range examples(t, doc, "simSet") {
		var m map[string]any
		require.NoError(t, strictUnmarshal(p, &m), name)
	}
}

func allCodes() []controller.Code {
	var out []controller.Code
	for _, c := range append(slices.Clone(controller.Codes), LinkCodes...) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func TestContractSchemasListEveryValue(t *testing.T) {
	doc := loadAsyncAPI(t)
	enum := func(path ...string) []string {
		var out []string
		for _, v := range get(t, doc, path...).([]any) {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	schemas := []string{"components", "schemas"}
	types := enum(append(schemas, "Event", "properties", "type", "enum")...)
	for _, et := range controller.EventTypes {
		assert.Contains(t, types, et.String())
	}
	kinds := enum(append(schemas, "Alert", "properties", "kind", "enum")...)
	for _, k := range controller.AlertKinds {
		assert.Contains(t, kinds, k.String())
	}
	codes := enum(append(schemas, "Reply", "properties", "error", "properties", "code", "enum")...)
	for _, c := range allCodes() {
		assert.Contains(t, codes, string(c))
	}
	actions := enum(append(schemas, "Command", "properties", "action", "enum")...)
	for _, a := range controller.CommandActions {
		assert.Contains(t, actions, a.String())
	}
	phases := enum(append(schemas, "State", "properties", "phase", "enum")...)
	for p := controller.PhaseIdle; p <= controller.PhaseOutOfService; p++ {
		assert.Contains(t, phases, p.String())
	}
	// Every channel of Topics is in the document.
	topics := Topics{Base: "{base}", Room: "{room}"}
	var addresses []string
	for _, ch := range get(t, doc, "channels").(map[string]any) {
		addresses = append(addresses, fmt.Sprint(get(t, ch, "address")))
	}
	for _, a := range []string{topics.Availability(), topics.State(), topics.Events(), topics.Alerts(),
		topics.Command(), topics.Reply(), topics.SimSet(), topics.SimOutputs()} {
		assert.Contains(t, addresses, a)
	}
}

func TestContractPageNamesEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "mqtt.md"))
	require.NoError(t, err)
	page := string(data)
	for _, et := range controller.EventTypes {
		assert.Contains(t, page, "`"+et.String()+"`", "docs/mqtt.md does not describe event %s", et)
	}
	for _, k := range controller.AlertKinds {
		assert.Contains(t, page, "`"+k.String()+"`", "docs/mqtt.md does not describe alert kind %s", k)
	}
	for _, c := range allCodes() {
		assert.Contains(t, page, "`"+string(c)+"`", "docs/mqtt.md does not describe code %s", c)
	}
	for _, a := range controller.CommandActions {
		assert.Contains(t, page, "`"+a.String()+"`", "docs/mqtt.md does not describe action %s", a)
	}
}

// TestEncodersMatchContract checks that what the encoders produce decodes
// strictly into the wire types (the examples above are hand-written).
func TestEncodersMatchContract(t *testing.T) {
	ctrl, acts, err := controller.New(testPolicy(), t0)
	require.NoError(t, err)
	d := &pureDriver{t: t, ctrl: ctrl}
	d.apply(acts)
	runVisit(d, scriptA)
	d.event(controller.Fault{At: t0.Add(2 * time.Hour), Source: "outbox", Active: true, Detail: "outbox full", Severity: controller.SeverityCritical})
	seen := map[string]bool{}
	for _, line := range d.out {
		topic, payload, _ := strings.Cut(line, " ")
		var v any
		switch topic {
		case "events", "alerts":
			v = &EventMessage{}
		case "state":
			v = &StateMessage{}
		case "cmd/reply":
			v = &ReplyMessage{}
		}
		require.NoError(t, strictUnmarshal([]byte(payload), v), line)
		seen[topic] = true
	}
	assert.Len(t, seen, 4)
}
