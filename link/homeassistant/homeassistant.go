// Package homeassistant describes a room to Home Assistant through MQTT
// discovery, in the device-based format: one retained discovery message per
// room, {prefix}/device/roomd_{room}/config, declaring one device (the
// room) and its entities.
//
// Home Assistant reads the entities' values from the topics roomd
// publishes anyway, through value templates: the retained state, the
// alerts topic and the availability topic. roomd publishes nothing else for
// it. So Home Assistant shows what a guard console shows, in the same
// order, and nothing new leaves the room: the state's privacy rules (no
// presence during a visit or an inspection) hold for Home Assistant as they
// are. The templates keep only what each entity needs, and no entity has
// JSON attributes, so Home Assistant's recorder stores door open/closed,
// bolt locked/unlocked, panic and fault on/off, the phase, the time the
// visit ends, and for the alert event the alert's id, kind and severity:
// never a visit id, an operator id (the "by" of a record) or presence.
//
// Entities (Home Assistant platform, device class):
//   - door: binary_sensor, door (on: open)
//   - lock: binary_sensor, lock (on: unlocked, as Home Assistant has it)
//   - panic: binary_sensor, safety (on: a panic alert is active)
//   - fault: binary_sensor, problem (on: a sensor, system or output fault is active)
//   - phase: sensor, enum (idle, in_visit, overtime, out_of_service, inspection)
//   - visit_end: sensor, timestamp (the visit's ends_at; unknown outside
//     visits): Home Assistant counts down by itself
//   - alert: event, on every alert record (raised, escalated, repeated,
//     reannounced, acked, cleared)
//
// Availability is the room's availability topic (online/offline, the Last
// Will). roomd publishes the discovery message retained after every
// connection and again whenever Home Assistant announces itself online on
// {prefix}/status; visitctl decommission clears it (an empty retained
// message), which removes the device from Home Assistant.
package homeassistant

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// DefaultPrefix is Home Assistant's default discovery prefix.
const DefaultPrefix = "homeassistant"

// Online is the payload of {prefix}/status when Home Assistant starts.
const Online = "online"

// NodeID is the discovery object id of room: "roomd_" and the room id.
func NodeID(room string) string { return "roomd_" + room }

// DiscoveryTopic is where room's discovery message goes.
func DiscoveryTopic(prefix, room string) string {
	return prefix + "/device/" + NodeID(room) + "/config"
}

// StatusTopic is where Home Assistant announces itself (birth and Last
// Will).
func StatusTopic(prefix string) string { return prefix + "/status" }

// AlertEventTypes are the event types of the alert entity: the alert
// records.
var AlertEventTypes = func() []string {
	var out []string
	for _, t := range controller.EventTypes {
		if t.IsAlert() {
			out = append(out, t.String())
		}
	}
	return out
}()

// FaultKinds are the alert kinds the fault entity reports.
var FaultKinds = []string{controller.AlertSensorFault.String(), controller.AlertSystemFault.String(), controller.AlertOutputFault.String()}

// Discovery is the discovery message of a room.
type Discovery struct {
	Device     Device               `json:"dev"`
	Origin     Origin               `json:"o"`
	Avail      string               `json:"avty_t"`
	QoS        int                  `json:"qos"`
	Components map[string]Component `json:"cmps"`
}

// Device is the room as a Home Assistant device.
type Device struct {
	IDs          []string `json:"ids"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"mf"`
	Model        string   `json:"mdl"`
	SWVersion    string   `json:"sw"`
}

// Origin names the software that sent the discovery message.
type Origin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw"`
}

// Component is one entity. Only these keys are ever sent: none of them
// gives Home Assistant attributes to record (json_attributes_topic and
// json_attributes_template are never set).
type Component struct {
	Platform      string   `json:"p"`
	Name          string   `json:"name"`
	UniqueID      string   `json:"uniq_id"`
	DeviceClass   string   `json:"dev_cla,omitempty"`
	StateTopic    string   `json:"stat_t"`
	ValueTemplate string   `json:"val_tpl"`
	Options       []string `json:"ops,omitempty"`     // sensor of class enum: its values
	EventTypes    []string `json:"evt_typ,omitempty"` // event: its types
}

// activeOf is a template condition: an active alert of the state whose
// kind passes the Jinja test.
func activeOf(test string) string {
	return "value_json.alerts | selectattr('kind', " + test + ") | rejectattr('cleared_at', 'defined') | list | count > 0"
}

// jinjaList writes strings as a Jinja list literal in single quotes (no
// escaping needed inside the JSON payload).
func jinjaList(items []string) string {
	s := "["
	for i, v := range items {
		if i > 0 {
			s += ", "
		}
		s += "'" + v + "'"
	}
	return s + "]"
}

// New returns the discovery message of the room with topics t, run by roomd
// version (the device's software version).
func New(t contract.Topics, version string) Discovery {
	id := NodeID(t.Room)
	state := t.State()
	binary := func(key, name, class, tpl string) Component {
		return Component{Platform: "binary_sensor", Name: name, UniqueID: id + "_" + key, DeviceClass: class,
			StateTopic: state, ValueTemplate: tpl}
	}
	phases := make([]string, 0, len(controller.Phases))
	for _, p := range controller.Phases {
		phases = append(phases, p.String())
	}
	return Discovery{
		Device: Device{IDs: []string{id}, Name: "Visit room " + t.Room, Manufacturer: "roomd", Model: "visit room controller", SWVersion: version},
		Origin: Origin{Name: "roomd", SWVersion: version},
		Avail:  t.Availability(),
		QoS:    1,
		Components: map[string]Component{
			"door": binary("door", "Door", "door",
				"{% if value_json.door == 'open' %}ON{% elif value_json.door == 'closed' %}OFF{% else %}None{% endif %}"),
			// Home Assistant's lock class: on means unlocked.
			"lock": binary("lock", "Lock", "lock",
				"{% if value_json.lock == 'unlocked' %}ON{% elif value_json.lock == 'locked' %}OFF{% else %}None{% endif %}"),
			"panic": binary("panic", "Panic", "safety",
				"{{ 'ON' if "+activeOf("'equalto', 'panic'")+" else 'OFF' }}"),
			"fault": binary("fault", "Fault", "problem",
				"{{ 'ON' if "+activeOf("'in', "+jinjaList(FaultKinds))+" else 'OFF' }}"),
			"phase": {Platform: "sensor", Name: "Phase", UniqueID: id + "_phase", DeviceClass: "enum", StateTopic: state,
				ValueTemplate: "{{ value_json.phase }}", Options: phases},
			"visit_end": {Platform: "sensor", Name: "Visit end", UniqueID: id + "_visit_end", DeviceClass: "timestamp", StateTopic: state,
				ValueTemplate: "{{ value_json.visit.ends_at if value_json.visit else None }}"},
			"alert": {Platform: "event", Name: "Alert", UniqueID: id + "_alert", StateTopic: t.Alerts(), EventTypes: AlertEventTypes,
				ValueTemplate: "{{ {'event_type': value_json.type, 'alert_id': value_json.alert.id, 'kind': value_json.alert.kind, 'severity': value_json.alert.severity} | to_json }}"},
		},
	}
}

// Payload returns the discovery message of the room as published.
func Payload(t contract.Topics, version string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // templates hold '>' and '&'
	if err := enc.Encode(New(t, version)); err != nil {
		panic(fmt.Sprintf("homeassistant: encode discovery: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
