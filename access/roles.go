// Package access says who may publish and read what on a site's broker: the
// roles of the site's MQTT identities, in one table (Roles); a site's
// identities and the role of each (Site, read from a site file such as
// configs/mosquitto/site.yaml); and mosquitto's ACL file written from them
// (Site.ACL), which is how the shipped configs/mosquitto/acl and central.acl
// are made (visitctl acl). Site.Allowed answers, from the same table, what
// the broker must allow, for the tests that run the ACL on a real mosquitto
// and for the checks an installer runs.
//
// The ACL is an allow-list of one "user" block per identity, and nothing
// else: mosquitto's "pattern" lines apply to every username, so a pattern
// meant for rooms (visitrooms/%u/state) also lets an operator publish as a
// room named after itself, and one meant for operators
// (visitrooms/+/cmd/%u) lets a room command every room. An identity the
// site file does not list gets no block, and so no access at all.
//
// Why an ACL file and not mosquitto's dynamic security plugin, which Debian's
// mosquitto 2.0.11 ships and which works there (roles, groups, mosquitto_ctrl):
// in 2.0 the plugin does not substitute %u or %c in its ACLs (2.1 adds it),
// so every room needs a role of its own, the same enumeration as one user
// block per room; its state is a JSON file the broker rewrites itself,
// changed over MQTT by an administrator identity that may do anything (one
// more password to steal, sent over the network with every change), and it
// keeps its own passwords apart from mosquitto's password file. An ACL file
// is text: written from this table, reviewed and diffed like any config,
// checked byte for byte by a test, reloaded with SIGHUP. What the plugin
// does better, refusing a subscription outright (SUBACK 0x80) where the ACL
// file grants every subscription and silently withholds each message the
// identity may not read, matters to a diagnosis, not to what gets through;
// docs/security.md says how the checks cope.
package access

import (
	"fmt"
	"strings"
)

// Access is what a grant allows on a topic.
type Access uint8

// The accesses: Publish (mosquitto's "write") and Read (a message on the
// topic is delivered to the identity's subscriptions).
const (
	Publish Access = iota + 1
	Read
)

func (a Access) String() string {
	switch a {
	case Publish:
		return "publish"
	case Read:
		return "read"
	default:
		return fmt.Sprintf("access(%d)", uint8(a))
	}
}

// keyword is the ACL file's word for a.
func (a Access) keyword() string {
	if a == Publish {
		return "write"
	}
	return "read"
}

// RoleName names a role.
type RoleName string

// The roles. RoleBridge and RoleMonitor exist on a central broker only;
// RoleBooking on both; the others on a site's broker.
const (
	RoleRoom          RoleName = "room"
	RoleBooking       RoleName = "booking"
	RoleGuardStation  RoleName = "guard_station"
	RoleOperator      RoleName = "operator"
	RoleConsole       RoleName = "console"
	RoleHomeAssistant RoleName = "home_assistant"
	RolePager         RoleName = "pager"
	RoleSimDriver     RoleName = "sim_driver"
	RoleDecommission  RoleName = "decommission"
	RoleBridge        RoleName = "site_bridge"
	RoleMonitor       RoleName = "monitor"
)

// OptIn names a grant a site gives only when its site file asks for it.
type OptIn string

// The opt-ins. "" is a grant every identity of the role has.
const (
	// OptHomeAssistant: the site runs Home Assistant (rooms announce
	// themselves to it and hear its birth message).
	OptHomeAssistant OptIn = "home_assistant"
	// OptHomeAssistantCommands: Home Assistant may send commands as itself.
	OptHomeAssistantCommands OptIn = "home_assistant.commands"
	// OptConsoleCommands: the read-only consoles may send commands as
	// themselves (a room takes them only if its config names them).
	OptConsoleCommands OptIn = "console_commands"
	// OptSimulator: a test bench: rooms read sim/set and publish
	// sim/outputs, the simulator driver writes sim/set.
	OptSimulator OptIn = "sim_driver"
)

// Grant is one line of a role: an access to a topic filter. Topic uses
// {base} (the topic base), {me} (the identity's own name), {gateway} (a
// paging gateway's name), {prefix} (Home Assistant's discovery prefix) and
// {room} (a room being decommissioned), and {rooms}, any room: "+" on a
// site's broker, "+/+" (site and room) at the centre.
type Grant struct {
	Access Access
	Topic  string
	OptIn  OptIn
	// Why is said in the ACL above the line.
	Why string
}

// Role is what identities of one kind may do.
type Role struct {
	Name RoleName
	// Who is the identity, in words.
	Who string
	// Central: the role exists on a central broker, not on a site's.
	Central bool
	Grants  []Grant
}

// roomOutputs are the topics a room publishes that consumers read.
var roomOutputs = []struct{ sub, why string }{
	{"availability", "online/offline, retained, and the room's Last Will"},
	{"info", "what the room is, retained"},
	{"state", "the room now, retained"},
	{"events", "every record"},
	{"alerts", "the alert records"},
	{"reply", "one reply per command"},
}

// readOutputs grants reading every room's outputs (not their commands).
func readOutputs(why string) []Grant {
	var g []Grant
	for _, o := range roomOutputs {
		g = append(g, Grant{Access: Read, Topic: "{base}/{rooms}/" + o.sub, Why: why})
	}
	return g
}

var (
	readLamps    = Grant{Access: Read, Topic: "{base}/+/sim/outputs", OptIn: OptSimulator, Why: "a test bench's simulated lamps (the tester panel)"}
	readPagers   = Grant{Access: Read, Topic: "{base}/_pagers/+/status", Why: "whether the paging gateways reach the handsets"}
	readBridges  = Grant{Access: Read, Topic: "$SYS/broker/connection/+/state", Why: "whether a bridged site's link to its centre is up"}
	readOutputs1 = "every room's outputs, never the commands"
)

func cat(lists ...[]Grant) []Grant {
	var out []Grant
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Roles is the table: every role and what it may publish and read. The
// default of every role is the least it needs: a room publishes only its
// own outputs and reads only its own commands, and no room may publish any
// command; Home Assistant and the consoles read only; an operator speaks
// only as itself. Opt-ins widen a role where a site's file asks.
var Roles = []Role{
	{Name: RoleRoom, Who: "one per room (roomd); the username is the room id",
		Grants: []Grant{
			{Publish, "{base}/{me}/availability", "", "online/offline, retained, and its Last Will"},
			{Publish, "{base}/{me}/info", "", "what the room is, retained"},
			{Publish, "{base}/{me}/state", "", "the room now, retained"},
			{Publish, "{base}/{me}/events", "", "every record"},
			{Publish, "{base}/{me}/alerts", "", "the alert records"},
			{Publish, "{base}/{me}/reply", "", "one reply per command it read"},
			{Publish, "{base}/{me}/sim/outputs", OptSimulator, "simulated outputs (simulator backend)"},
			{Publish, "{prefix}/device/roomd_{me}/config", OptHomeAssistant, "its own Home Assistant discovery (and clearing it)"},
			{Read, "{base}/{me}/state", "", "its own retained state, once at start: the witness that its journal did not go back in time"},
			{Read, "{base}/{me}/cmd", "", "the booking system's commands"},
			{Read, "{base}/{me}/cmd/+", "", "the operators' commands"},
			{Read, "{base}/{me}/sim/set", OptSimulator, "simulated inputs (simulator backend)"},
			{Read, "{prefix}/status", OptHomeAssistant, "Home Assistant's birth message: announce again"},
		}},
	{Name: RoleBooking, Who: "the booking system (one identity); at the centre, the central booking system",
		Grants: cat([]Grant{
			{Publish, "{base}/{rooms}/cmd", "", "commands on the plain cmd topic (records without by)"},
		}, readOutputs(readOutputs1), []Grant{readBridges})},
	{Name: RoleGuardStation, Who: "the guard station board (guardboard); it logs its operators in itself",
		Grants: cat([]Grant{
			{Publish, "{base}/+/cmd/+", "", "commands as each operator it logged in, its own replays on cmd/{me}"},
		}, readOutputs(readOutputs1), []Grant{readPagers, readBridges, readLamps})},
	{Name: RoleOperator, Who: "one per guard or booking operator with a console of its own (visitctl); an opaque id",
		Grants: cat([]Grant{
			{Publish, "{base}/+/cmd/{me}", "", "commands as itself only"},
		}, readOutputs(readOutputs1), []Grant{readPagers, readBridges, readLamps})},
	{Name: RoleConsole, Who: "a read-only console (a wall display, visitctl watch); one per console",
		Grants: cat([]Grant{
			{Publish, "{base}/+/cmd/{me}", OptConsoleCommands, "commands as itself (the rooms take them only if their config names it)"},
		}, readOutputs(readOutputs1), []Grant{readPagers, readBridges, readLamps})},
	{Name: RoleHomeAssistant, Who: "Home Assistant (rooms with homeassistant.enabled)",
		Grants: []Grant{
			{Read, "{base}/+/state", "", "what its entities show"},
			{Read, "{base}/+/alerts", "", "the alert event entity"},
			{Read, "{base}/+/availability", "", "whether a room is online"},
			{Read, "{prefix}/#", "", "its discovery prefix"},
			{Publish, "{prefix}/status", "", "its birth and Last Will"},
			{Publish, "{base}/+/cmd/{me}", OptHomeAssistantCommands, "commands as itself (the rooms take them only if their config names it)"},
		}},
	{Name: RolePager, Who: "a paging gateway (roompager); {gateway} is its name",
		Grants: cat([]Grant{
			{Publish, "{base}/_pagers/{gateway}/status", "", "its status, retained, and its Last Will"},
			{Publish, "{base}/+/cmd/{me}", "", "replays as itself (rooms take only get_state and replay from it)"},
		}, readOutputs(readOutputs1))},
	{Name: RoleSimDriver, Who: "the simulator driver of a test bench (the board's tester panel, visitctl sim); never on a real site",
		Grants: cat([]Grant{
			{Publish, "{base}/+/sim/set", "", "simulated inputs"},
			{Read, "{base}/+/sim/outputs", "", "simulated outputs"},
		}, readOutputs(readOutputs1))},
	{Name: RoleDecommission, Who: "visitctl decommission, only while a room is removed; {room} is that room",
		Grants: []Grant{
			{Read, "{base}/{room}/#", "", "the room's retained topics, to clear them"},
			{Publish, "{base}/{room}/#", "", "empty retained messages that clear them"},
			{Read, "{prefix}/device/roomd_{room}/config", "", "its Home Assistant discovery"},
			{Publish, "{prefix}/device/roomd_{room}/config", "", "and clearing it"},
		}},
	{Name: RoleBridge, Central: true, Who: "a site's bridge at the centre; the username is the site id (its certificate's CN)",
		Grants: []Grant{
			{Publish, "{base}/{me}/+/availability", "", "its rooms' outputs, renamed under its site"},
			{Publish, "{base}/{me}/+/info", "", ""},
			{Publish, "{base}/{me}/+/state", "", ""},
			{Publish, "{base}/{me}/+/events", "", ""},
			{Publish, "{base}/{me}/+/alerts", "", ""},
			{Publish, "{base}/{me}/+/reply", "", ""},
			{Publish, "$SYS/broker/connection/{me}/state", "", "its own link flag, and its Last Will"},
			{Read, "{base}/{me}/+/cmd", "", "the centre's commands to its own rooms"},
		}},
	{Name: RoleMonitor, Central: true, Who: "central monitoring, read only",
		Grants: cat(readOutputs(readOutputs1), []Grant{readBridges})},
}

// RoleOf returns the role named n.
func RoleOf(n RoleName) (Role, bool) {
	for _, r := range Roles {
		if r.Name == n {
			return r, true
		}
	}
	return Role{}, false
}

// expand fills a grant's topic for an identity.
func expand(topic string, v vars) string {
	r := strings.NewReplacer("{base}", v.base, "{me}", v.me, "{gateway}", v.gateway, "{prefix}", v.prefix,
		"{room}", v.room, "{rooms}", v.rooms)
	return r.Replace(topic)
}

type vars struct{ base, me, gateway, prefix, room, rooms string }
