package access

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Broker says which broker a site file describes.
type Broker string

// The brokers: a site's own (rooms, guards, the booking system of the site)
// and the central broker of bridged sites (docs/sites.md).
const (
	BrokerSite    Broker = "site"
	BrokerCentral Broker = "central"
)

// Site is a broker's identities and the role of each: the site file
// (configs/mosquitto/site.yaml, central.yaml). Every identity is its own
// MQTT username, listed once.
type Site struct {
	Broker Broker `yaml:"broker"`
	// Base is the topic base (default visitrooms).
	Base string `yaml:"base"`
	// Rooms: one identity per room, the room id (site broker).
	Rooms []string `yaml:"rooms"`
	// Sites: one identity per bridged site, the site id (central broker).
	Sites []string `yaml:"sites"`
	// Booking is the booking system's identity ("" none).
	Booking string `yaml:"booking"`
	// GuardStation is the board's identity ("" none).
	GuardStation string `yaml:"guard_station"`
	// Operators: one identity per operator console that may act.
	Operators []string `yaml:"operators"`
	// Consoles: read-only consoles (at the centre: monitoring).
	Consoles []string `yaml:"consoles"`
	// ConsoleCommands lets the consoles send commands as themselves.
	ConsoleCommands bool `yaml:"console_commands"`
	// HomeAssistant, if set, is the site's Home Assistant.
	HomeAssistant *HomeAssistant `yaml:"home_assistant"`
	// Pagers are the paging gateways.
	Pagers []Pager `yaml:"pagers"`
	// SimDriver is the simulator driver of a test bench ("" none: never
	// on a real site).
	SimDriver string `yaml:"sim_driver"`
	// Decommission, if set, may clear the retained topics of the rooms it
	// names, only while they are being removed.
	Decommission *Decommission `yaml:"decommission"`
}

// HomeAssistant is the site's Home Assistant.
type HomeAssistant struct {
	Identity string `yaml:"identity"`
	// Prefix is its discovery prefix (default homeassistant).
	Prefix string `yaml:"prefix"`
	// Commands lets it send commands as itself (read only by default).
	Commands bool `yaml:"commands"`
}

// Pager is a paging gateway: its identity and its gateway name.
type Pager struct {
	Identity string `yaml:"identity"`
	Gateway  string `yaml:"gateway"`
}

// Decommission is the identity that clears removed rooms.
type Decommission struct {
	Identity string   `yaml:"identity"`
	Rooms    []string `yaml:"rooms"`
}

// Identity is one username of a site and its role.
type Identity struct {
	Name string
	Role RoleName
	vars vars
	// opt are the opt-ins in force for it.
	opt map[OptIn]bool
}

// Grants returns the identity's grants, topics filled in, opt-ins applied.
func (id Identity) Grants() []Grant {
	r, _ := RoleOf(id.Role)
	var out []Grant
	rooms := []string{id.vars.room}
	if id.Role == RoleDecommission {
		rooms = strings.Split(id.vars.room, "\x00")
	}
	for _, g := range r.Grants {
		if g.OptIn != "" && !id.opt[g.OptIn] {
			continue
		}
		for _, room := range rooms {
			v := id.vars
			v.room = room
			g2 := g
			g2.Topic = expand(g.Topic, v)
			if !slices.ContainsFunc(out, func(x Grant) bool { return x.Access == g2.Access && x.Topic == g2.Topic }) {
				out = append(out, g2)
			}
		}
	}
	return out
}

// ReadSite reads a site file strictly: unknown or repeated keys, invalid
// or reserved ids, an identity listed twice and a role of the other broker
// are errors, all reported at once.
func ReadSite(data []byte, name string) (*Site, error) {
	var s Site
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("read site file %s: %w", name, err)
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("site file %s: %w", name, err)
	}
	return &s, nil
}

func (s *Site) base() string {
	if s.Base == "" {
		return contract.DefaultBase
	}
	return s.Base
}

func (s *Site) prefix() string {
	if s.HomeAssistant == nil || s.HomeAssistant.Prefix == "" {
		return "homeassistant"
	}
	return s.HomeAssistant.Prefix
}

// validUsername reports whether name can be a mosquitto username in an ACL
// line and in a topic level: no space, no wildcard, no '/', no ':' (the
// password file's separator), printable ASCII.
func validUsername(name string) bool {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " +#/:") {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] > '~' {
			return false
		}
	}
	return true
}

// validSiteID is a bridged site's id (site-bridge.conf).
func validSiteID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// Check reports every problem of the site file.
func (s *Site) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch s.Broker {
	case BrokerSite, BrokerCentral:
	case "":
		bad("broker: missing (site or central)")
	default:
		bad("broker: %q is neither site nor central", s.Broker)
	}
	if err := contract.ValidateBase(s.base()); err != nil {
		bad("base: %v", err)
	}
	central := s.Broker == BrokerCentral
	if central {
		for field, set := range map[string]bool{"rooms": len(s.Rooms) > 0, "guard_station": s.GuardStation != "",
			"operators": len(s.Operators) > 0, "home_assistant": s.HomeAssistant != nil, "pagers": len(s.Pagers) > 0,
			"sim_driver": s.SimDriver != "", "decommission": s.Decommission != nil, "console_commands": s.ConsoleCommands} {
			if set {
				bad("%s: not on a central broker (its rooms are under their sites)", field)
			}
		}
	} else if len(s.Sites) > 0 {
		bad("sites: only on a central broker (broker: central)")
	}
	for _, r := range s.Rooms {
		if !contract.ValidRoom(r) {
			bad("rooms: %q is not a room id ([a-z0-9][a-z0-9_-]{0,63}, not %s)", r, strings.Join(contract.ReservedIDs, ", "))
		}
	}
	for _, st := range s.Sites {
		if !validSiteID(st) {
			bad("sites: %q is not a site id ([a-z0-9][a-z0-9-]{0,31})", st)
		}
	}
	for _, o := range s.Operators {
		if !controller.ValidOperatorID(o) {
			bad("operators: %q is not an operator id (1 to 64 of A-Z a-z 0-9 . _ : -, not on_site)", o)
		}
	}
	if h := s.HomeAssistant; h != nil {
		if h.Identity == "" {
			bad("home_assistant.identity: missing (e.g. homeassistant)")
		}
		if err := contract.ValidateBase(s.prefix()); err != nil {
			bad("home_assistant.prefix: %v", err)
		} else if p, b := s.prefix(), s.base(); p == b || strings.HasPrefix(p, b+"/") || strings.HasPrefix(b, p+"/") {
			bad("home_assistant.prefix: %q overlaps base %q", p, b)
		}
		if h.Commands && !controller.ValidOperatorID(h.Identity) {
			bad("home_assistant.commands: its identity %q is not an operator id, so it cannot send as itself", h.Identity)
		}
	}
	for i, p := range s.Pagers {
		if p.Identity == "" || p.Gateway == "" {
			bad("pagers[%d]: identity and gateway are both needed", i)
		}
		if p.Gateway != "" && !validUsername(p.Gateway) {
			bad("pagers[%d].gateway: %q is not a topic level without wildcards", i, p.Gateway)
		}
		if !controller.ValidOperatorID(p.Identity) {
			bad("pagers[%d].identity: %q is not an operator id: its replays go on cmd/{identity}", i, p.Identity)
		}
	}
	if d := s.Decommission; d != nil {
		if d.Identity == "" {
			bad("decommission.identity: missing")
		}
		if len(d.Rooms) == 0 {
			bad("decommission.rooms: name the rooms being removed (remove the section when done)")
		}
		for _, r := range d.Rooms {
			if !contract.ValidRoom(r) {
				bad("decommission.rooms: %q is not a room id", r)
			}
		}
	}
	if s.ConsoleCommands {
		for _, c := range s.Consoles {
			if !controller.ValidOperatorID(c) {
				bad("consoles: %q is not an operator id, and console_commands has it send as itself", c)
			}
		}
	}
	seen := map[string]RoleName{}
	for _, id := range s.identities() {
		if !validUsername(id.Name) {
			bad("%s: %q is not a usable broker username (no space, '+', '#', '/' or ':')", id.Role, id.Name)
			continue
		}
		if prev, dup := seen[id.Name]; dup {
			bad("%s: %q is already the identity of a %s: every identity has one role", id.Role, id.Name, prev)
			continue
		}
		seen[id.Name] = id.Role
	}
	if !central {
		for _, r := range s.Rooms {
			if role := seen[r]; role != RoleRoom && role != "" {
				bad("rooms: %q is also a %s", r, role)
			}
		}
	}
	return errors.Join(errs...)
}

// Identities returns every identity of the site with its role, in the
// order of the table, then of the file.
func (s *Site) Identities() []Identity { return s.identities() }

func (s *Site) identities() []Identity {
	central := s.Broker == BrokerCentral
	opt := map[OptIn]bool{}
	if s.HomeAssistant != nil {
		opt[OptHomeAssistant] = true
		opt[OptHomeAssistantCommands] = s.HomeAssistant.Commands
	}
	opt[OptConsoleCommands] = s.ConsoleCommands
	opt[OptSimulator] = s.SimDriver != ""
	rooms := "+"
	if central {
		rooms = "+/+"
	}
	mk := func(name string, role RoleName) Identity {
		return Identity{Name: name, Role: role, vars: vars{base: s.base(), me: name, prefix: s.prefix(), rooms: rooms}, opt: opt}
	}
	var out []Identity
	for _, r := range s.Rooms {
		out = append(out, mk(r, RoleRoom))
	}
	for _, st := range s.Sites {
		out = append(out, mk(st, RoleBridge))
	}
	if s.Booking != "" {
		out = append(out, mk(s.Booking, RoleBooking))
	}
	if s.GuardStation != "" {
		out = append(out, mk(s.GuardStation, RoleGuardStation))
	}
	for _, o := range s.Operators {
		out = append(out, mk(o, RoleOperator))
	}
	for _, c := range s.Consoles {
		role := RoleConsole
		if central {
			role = RoleMonitor
		}
		out = append(out, mk(c, role))
	}
	if h := s.HomeAssistant; h != nil && h.Identity != "" {
		out = append(out, mk(h.Identity, RoleHomeAssistant))
	}
	for _, p := range s.Pagers {
		id := mk(p.Identity, RolePager)
		id.vars.gateway = p.Gateway
		out = append(out, id)
	}
	if s.SimDriver != "" {
		out = append(out, mk(s.SimDriver, RoleSimDriver))
	}
	if d := s.Decommission; d != nil && d.Identity != "" {
		id := mk(d.Identity, RoleDecommission)
		id.vars.room = strings.Join(d.Rooms, "\x00")
		out = append(out, id)
	}
	return out
}

// Identity returns the identity named name.
func (s *Site) Identity(name string) (Identity, bool) {
	for _, id := range s.identities() {
		if id.Name == name {
			return id, true
		}
	}
	return Identity{}, false
}

// Allowed reports whether the ACL lets identity name publish on topic
// (Publish) or receive a message published on topic (Read): what the
// broker must do, from the same table the ACL is written from. An identity
// the site does not list may do nothing.
func (s *Site) Allowed(name string, a Access, topic string) bool {
	id, ok := s.Identity(name)
	if !ok {
		return false
	}
	for _, g := range id.Grants() {
		if g.Access == a && TopicMatches(g.Topic, topic) {
			return true
		}
	}
	return false
}

// TopicMatches reports whether topic matches filter the way mosquitto
// matches an ACL line: '+' is one level (an empty one too), '#' the rest
// (the parent level included), and a filter that starts with a wildcard
// never matches a topic that starts with '$'.
func TopicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return i == len(f)-1
		}
		if i >= len(t) {
			return false
		}
		if level != "+" && level != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}
