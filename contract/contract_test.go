package contract

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
)

// The contract documents must agree with the code: docs/asyncapi.yaml reads
// strictly, every example validates against its schema and decodes strictly
// into the wire types, and every event type, alert kind, action, refusal
// code and fault source is documented in both docs/asyncapi.yaml and
// docs/mqtt.md, with an example.

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

// examples returns the examples of a message by name, as JSON (a string
// payload as its text).
func examples(t *testing.T, s *contracttest.Schemas, message string) map[string][]byte {
	t.Helper()
	list, ok := get(t, s.Doc, "components", "messages", message, "examples").([]any)
	require.True(t, ok, "message %s: examples is not a list", message)
	require.NotEmpty(t, list, "message %s has no example", message)
	out := map[string][]byte{}
	for i, e := range list {
		name, _ := get(t, e, "name").(string)
		require.NotEmpty(t, name, "message %s example %d has no name", message, i)
		require.NotContains(t, out, name, "message %s: two examples named %s", message, name)
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

func TestContractAsyncAPIReadsStrictly(t *testing.T) {
	data, err := os.ReadFile(contracttest.AsyncAPIPath(t))
	require.NoError(t, err)
	assert.Empty(t, contracttest.CheckAsyncAPI(data))
}

// TestContractStrictReaderCatchesTraps: the strict reader finds the mistakes
// a loose YAML reader lets through.
func TestContractStrictReaderCatchesTraps(t *testing.T) {
	head := "asyncapi: 3.0.0\ninfo: {title: t, version: '2'}\ncomponents:\n  schemas:\n"
	for name, c := range map[string]struct{ yaml, want string }{
		"comma in a flow mapping": {
			yaml: "    Visit:\n      type: object\n      properties:\n        id: {type: string, description: the id, opaque}\n",
			want: `"opaque" is not a JSON Schema draft 7 or AsyncAPI schema keyword`,
		},
		"null value": {
			yaml: "    Visit:\n      type: object\n      description:\n",
			want: "null value",
		},
		"key twice": {
			yaml: "    Visit:\n      type: object\n      type: string\n",
			want: `key "type" given twice`,
		},
		"unknown keyword": {
			yaml: "    Visit:\n      type: object\n      additionalProperty: false\n",
			want: `"additionalProperty" is not a JSON Schema draft 7`,
		},
		"reference that does not resolve": {
			yaml: "    Visit:\n      $ref: '#/components/schemas/Nowhere'\n",
			want: "does not resolve",
		},
		"unknown field of an object": {
			yaml: "    Visit: {type: object}\n  mesages: {}\n",
			want: `"mesages" is not a field of the components object`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			problems := contracttest.CheckAsyncAPI([]byte(head + c.yaml))
			require.NotEmpty(t, problems)
			assert.Contains(t, strings.Join(problems, "\n"), c.want)
		})
	}
	assert.Empty(t, contracttest.CheckAsyncAPI([]byte(head+"    Visit:\n      type: object\n      properties:\n        id: {type: string, description: 'the id, opaque'}\n")),
		"the same, quoted, is fine")
}

var exampleNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestContractExamplesDecodeStrictly(t *testing.T) {
	s := contracttest.Load(t)
	assert.Equal(t, "3.0.0", get(t, s.Doc, "asyncapi"))
	assert.Equal(t, fmt.Sprint(ContractVersion), get(t, s.Doc, "info", "version"))
	millis := regexp.MustCompile(`"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]*)?[^"]*"`)
	threeDigits := regexp.MustCompile(`^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z"$`)

	for _, message := range []string{"availability", "info", "state", "event", "alert", "command", "reply", "simSet", "simOutputs", "pagerStatus"} {
		for name, p := range examples(t, s, message) {
			assert.NoError(t, s.Validate(t, message, p), "%s example %s", message, name)
			for _, ts := range millis.FindAllString(string(p), -1) {
				assert.Regexp(t, threeDigits, ts, "%s example %s: a time with other than three fraction digits", message, name)
			}
		}
	}

	for name, p := range examples(t, s, "availability") {
		assert.Contains(t, []string{Online, Offline}, string(p), name)
	}
	for name, p := range examples(t, s, "info") {
		var m InfoMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &m), "info example %s", name)
		assert.Equal(t, ContractVersion, m.Version, name)
	}
	for name, p := range examples(t, s, "state") {
		var st StateMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &st), "state example %s", name)
		assert.Equal(t, ContractVersion, st.Version, name)
		if st.Phase == "in_visit" || st.Phase == "overtime" || st.Phase == "inspection" {
			assert.Empty(t, st.Presence, "state example %s shows presence during a visit or an inspection", name)
		} else {
			assert.NotEmpty(t, st.Presence, "state example %s omits presence outside visits", name)
		}
	}

	types := map[string]bool{}
	for name, p := range examples(t, s, "event") {
		var e EventMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &e), "event example %s", name)
		types[e.Type] = true
		assert.True(t, strings.HasPrefix(name, e.Type), "event example %s named after its type %s", name, e.Type)
		assert.NoError(t, roundTrip(p, &e), "event example %s", name)
	}
	for _, et := range controller.EventTypes {
		assert.True(t, types[et.String()], "no event example of type %s", et)
	}

	kinds := map[string]bool{}
	for name, p := range examples(t, s, "alert") {
		var e EventMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &e), "alert example %s", name)
		require.NotNil(t, e.Alert, name)
		assert.True(t, strings.HasPrefix(e.Type, "alert_"), name)
		kinds[e.Alert.Kind] = true
		assert.NoError(t, roundTrip(p, &e), "alert example %s", name)
	}
	for _, k := range controller.AlertKinds {
		assert.True(t, kinds[k.String()], "no alert example of kind %s", k)
	}

	actions := map[string]bool{}
	for name, p := range examples(t, s, "command") {
		var c CommandMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &c), "command example %s", name)
		cmd, cerr := DecodeCommand(p, 0, exampleNow)
		require.Nil(t, cerr, "command example %s refused: %v", name, cerr)
		actions[cmd.ActionName()] = true
		assert.Equal(t, name, cmd.ActionName(), "command example named after its action")
	}
	for _, a := range ActionNames() {
		assert.True(t, actions[a], "no command example of action %s", a)
	}

	codes := map[string]bool{}
	for name, p := range examples(t, s, "reply") {
		var r ReplyMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &r), "reply example %s", name)
		assert.NoError(t, roundTrip(p, &r), "reply example %s", name)
		if r.OK {
			assert.Nil(t, r.Error, name)
			assert.True(t, (r.State != nil) != (r.Replay != nil), "reply example %s: ok carries state or replay", name)
			continue
		}
		require.NotNil(t, r.Error, name)
		assert.Nil(t, r.State, name)
		assert.Equal(t, r.Error.Code == string(controller.CodeNotReady), len(r.Error.Blockers) > 0, "reply example %s: blockers with not_ready only", name)
		codes[r.Error.Code] = true
	}
	for _, c := range allCodes() {
		assert.True(t, codes[string(c)], "no reply example with code %s", c)
	}

	for name, p := range examples(t, s, "simOutputs") {
		var m map[string]string
		require.NoError(t, contracttest.StrictUnmarshal(p, &m), name)
		for _, o := range controller.Outputs {
			assert.Contains(t, m, o.String(), name)
		}
	}
}

// roundTrip checks that a payload is what the wire type writes back: no
// field roomd would leave out, no value it would write otherwise.
func roundTrip(p []byte, v any) error {
	back, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var a, b any
	if err := json.Unmarshal(p, &a); err != nil {
		return err
	}
	if err := json.Unmarshal(back, &b); err != nil {
		return err
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		return fmt.Errorf("written back as %s, not %s", back, p)
	}
	return nil
}

// TestContractSchemasRefuse: the schemas are exact; payloads that break the
// contract fail them.
func TestContractSchemasRefuse(t *testing.T) {
	s := contracttest.Load(t)
	const ep = `"epoch":"3f9c2a7d41e8b605"`
	for name, c := range map[string]struct{ message, payload string }{
		"event without its fields": {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"visit_started"}`},
		"event of an unknown type": {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"visit_paused"}`},
		"a field of another type":  {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"door_opened","visit_id":"v-1"}`},
		"duration_s on an extension": {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"visit_extended",` +
			`"visit_id":"v-1","ends_at":"2026-03-01T10:00:00.000Z","duration_s":600}`},
		"vacated by somebody": {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"visit_ended","by":"g-1","visit_id":"v-1","reason":"vacated"}`},
		"two fraction digits": {"event", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.72Z","type":"door_opened"}`},
		"no epoch":            {"event", `{"room":"room-a","seq":3,"at":"2026-03-01T09:00:00.000Z","type":"door_opened"}`},
		"panic without point": {"alert", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"alert_raised",` +
			`"alert":{"id":"panic-1","kind":"panic","severity":"critical","raised_at":"2026-03-01T09:00:00.000Z","acked":false,"announcements":1}}`},
		"cleared without cleared_at": {"alert", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"alert_cleared",` +
			`"alert":{"id":"time_up-1","kind":"time_up","severity":"warning","raised_at":"2026-03-01T09:00:00.000Z","acked":false,"announcements":1}}`},
		"door event on alerts":                   {"alert", `{"room":"room-a",` + ep + `,"seq":3,"at":"2026-03-01T09:00:00.000Z","type":"door_opened"}`},
		"ok without state":                       {"reply", `{"request_id":"b-1","action":"end_visit","ok":true}`},
		"ok with an error":                       {"reply", `{"request_id":"b-1","action":"end_visit","ok":true,"error":{"code":"no_visit","message":"x"}}`},
		"refusal without error":                  {"reply", `{"request_id":"b-1","action":"end_visit","ok":false}`},
		"unknown code":                           {"reply", `{"request_id":"b-1","ok":false,"error":{"code":"nope","message":"x"}}`},
		"replay without its body":                {"reply", `{"request_id":"b-1","action":"replay","ok":true,"state":{}}`},
		"command without expires_at":             {"command", `{"request_id":"b-1","action":"end_visit"}`},
		"command with a field of another action": {"command", `{"request_id":"b-1","action":"end_visit","add":"5m","expires_at":"2026-03-01T09:05:00.000Z"}`},
		"extend_visit with by":                   {"command", `{"request_id":"b-1","action":"extend_visit","by":"5m","expires_at":"2026-03-01T09:05:00.000Z"}`},
		"null alerts":                            {"state", `{"version":2,"room":"room-a",` + ep + `,"seq":1,"at":"2026-03-01T09:00:00.000Z","phase":"idle","visit":null,"door":"closed","lock":"unlocked","presence":"absent","alerts":null,"service_reason":"","outputs":{"in_use":"off","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"}}`},
		"contract version 1":                     {"state", `{"version":1,"room":"room-a",` + ep + `,"seq":1,"at":"2026-03-01T09:00:00.000Z","phase":"idle","visit":null,"door":"closed","lock":"unlocked","presence":"absent","alerts":[],"service_reason":"","outputs":{"in_use":"off","warning":"off","alarm_light":"off","alarm_sounder":"off","reassurance":"off"}}`},
		"availability in capitals":               {"availability", `ONLINE`},
	} {
		assert.Error(t, s.Validate(t, c.message, []byte(c.payload)), name)
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

// oneOfConsts returns, for a schema that is a oneOf of references, the
// const of property prop of each branch.
func oneOfConsts(t *testing.T, doc map[string]any, schema, prop string) []string {
	t.Helper()
	var out []string
	for _, b := range get(t, doc, "components", "schemas", schema, "oneOf").([]any) {
		ref := get(t, b, "$ref").(string)
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		out = append(out, fmt.Sprint(get(t, doc, "components", "schemas", name, "properties", prop, "const")))
	}
	return out
}

func enumOf(t *testing.T, doc map[string]any, path ...string) []string {
	t.Helper()
	var out []string
	for _, v := range get(t, doc, path...).([]any) {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func TestContractSchemasListEveryValue(t *testing.T) {
	doc := contracttest.Load(t).Doc
	types := oneOfConsts(t, doc, "Event", "type")
	var want []string
	for _, et := range controller.EventTypes {
		want = append(want, et.String())
	}
	assert.ElementsMatch(t, want, types, "one event schema per type")
	var alertTypes []string
	for _, et := range controller.EventTypes {
		if et.IsAlert() {
			alertTypes = append(alertTypes, et.String())
		}
	}
	assert.ElementsMatch(t, alertTypes, oneOfConsts(t, doc, "AlertEvent", "type"), "the alert records on alerts")
	want = nil
	for _, k := range controller.AlertKinds {
		want = append(want, k.String())
	}
	assert.ElementsMatch(t, want, oneOfConsts(t, doc, "Alert", "kind"), "one alert schema per kind")
	want = nil
	for _, c := range allCodes() {
		want = append(want, string(c))
	}
	assert.ElementsMatch(t, want, enumOf(t, doc, "components", "schemas", "Code", "enum"))
	assert.ElementsMatch(t, ActionNames(), oneOfConsts(t, doc, "Command", "action"), "one command schema per action")
	assert.ElementsMatch(t, ActionNames(), enumOf(t, doc, "components", "schemas", "Action", "enum"))
	want = nil
	for _, p := range controller.Phases {
		want = append(want, p.String())
	}
	assert.ElementsMatch(t, want, enumOf(t, doc, "components", "schemas", "State", "properties", "phase", "enum"))
	assert.ElementsMatch(t, FaultSources, enumOf(t, doc, "components", "schemas", "AlertSystemFault", "properties", "source", "enum"))

	// Every topic of Topics is a channel, and every channel is a topic.
	topics := Topics{Base: "{base}", Room: "{room}"}
	var addresses []string
	for _, ch := range get(t, doc, "channels").(map[string]any) {
		addresses = append(addresses, fmt.Sprint(get(t, ch, "address")))
	}
	assert.ElementsMatch(t, []string{topics.Availability(), topics.Info(), topics.State(), topics.Events(), topics.Alerts(),
		topics.Command(), topics.OperatorCommand("{operator}"), topics.Reply(), topics.SimSet(), topics.SimOutputs(),
		// Not a room's topic: a paging gateway's (roompager, package pager).
		"{base}/_pagers/{gateway}/status"}, addresses)
}

func TestContractPageNamesEveryValue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "mqtt.md"))
	require.NoError(t, err)
	page := string(data)
	mentions := func(what, v string) {
		t.Helper()
		assert.True(t, strings.Contains(page, "`"+v+"`"), "docs/mqtt.md does not describe %s %s", what, v)
	}
	for _, et := range controller.EventTypes {
		mentions("event", et.String())
	}
	for _, k := range controller.AlertKinds {
		mentions("alert kind", k.String())
	}
	for _, c := range allCodes() {
		mentions("code", string(c))
	}
	for _, a := range ActionNames() {
		mentions("action", a)
	}
	for _, p := range controller.Phases {
		mentions("phase", p.String())
	}
	for _, s := range FaultSources {
		mentions("fault source", s)
	}
	topics := Topics{Base: "{base}", Room: "{room}"}
	for _, tp := range []string{topics.Availability(), topics.Info(), topics.State(), topics.Events(), topics.Alerts(),
		topics.Command(), topics.OperatorCommand("{operator}"), topics.Reply()} {
		mentions("topic", tp)
	}
	for _, f := range []string{"due_at", "added_s", "duration_s", "service_reason", "expires_at", "request_id", "epoch", "blockers", "operator"} {
		mentions("field", f)
	}
	assert.True(t, strings.Contains(page, fmt.Sprintf("Contract version: **%d**", ContractVersion)), "docs/mqtt.md names the contract version")
}

// TestContractInfoWindowZeroIsSaid: a window rounded down to 0 (a journal
// whose size bound kept under 10 s of a flood) is announced as 0, valid
// against the schema, never left out: a consumer that finds no window_s
// would count on retention_s, the one thing the field says not to.
func TestContractInfoWindowZeroIsSaid(t *testing.T) {
	s := contracttest.Load(t)
	for name, p := range examples(t, s, "info") {
		var m InfoMessage
		require.NoError(t, contracttest.StrictUnmarshal(p, &m), "info example %s", name)
		m.WindowS = 0
		b, err := json.Marshal(m)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"window_s":0,`, "info example %s with a window of 0", name)
		assert.NoError(t, s.Validate(t, "info", b), "info example %s with a window of 0", name)
	}
}
