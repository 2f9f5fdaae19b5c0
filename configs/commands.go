package configs

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/controller"
)

// Commands says whom the room takes commands from: defence in depth behind
// the broker's ACL, which is the first and main gate (docs/security.md). A
// command from any other sender is refused with not_authorized and logged,
// whatever the broker let through, so that even an open broker (no ACL, or
// an old one) cannot make a room obey a room.
//
// The sender of a command is the topic it came on: {base}/{room}/cmd is the
// booking system's (the shipped ACL lets only the booking identity write
// it), {base}/{room}/cmd/{operator} is operator's (the ACL lets an operator
// write only its own id, and the guard station write the ids of the
// operators it logs in). The room cannot see the broker identity itself:
// MQTT 3.1.1 does not carry it.
type Commands struct {
	// Booking: take commands on the plain cmd topic.
	Booking bool
	// Operators may send every command on cmd/{operator}: operator ids, or
	// patterns in which '*' stands for any run of characters (guard-*).
	// None by default: an operator must be named.
	Operators []string
	// Readers may only ask (get_state, replay) on cmd/{operator}: the guard
	// station's own id (its replays), a paging gateway, a console that
	// fills its gaps. Ids or patterns, as Operators.
	Readers []string
}

// DefaultReaders are the identities of the shipped ACL that ask a room
// for replays under their own id: the guard station board and the paging
// gateway.
var DefaultReaders = []string{"guard-station", "roompager"}

// Authorize says why the room refuses a command from operator (onTopic
// false: the plain cmd topic) that changes the room, or only asks (query):
// "" when it takes it.
func (c Commands) Authorize(operator string, onTopic, query bool) string {
	if !onTopic {
		if c.Booking {
			return ""
		}
		return "this room takes no command on the plain cmd topic (commands.booking is false in its config)"
	}
	// An id named exactly in operators takes every command; otherwise a
	// reader only asks, even when an operators pattern (guard-*) matches
	// it: a pattern must not give the guard station's own id, a reader by
	// default, every command.
	if slices.Contains(c.Operators, operator) {
		return ""
	}
	if matchAny(c.Readers, operator) {
		if query {
			return ""
		}
		return fmt.Sprintf("operator %q may only ask this room (get_state, replay): it is in commands.readers of its config, and commands.operators does not name it exactly", operator)
	}
	if matchAny(c.Operators, operator) {
		return ""
	}
	return fmt.Sprintf("this room takes no command from operator %q: its config's commands.operators does not name it", operator)
}

// matchAny reports whether id matches one of patterns.
func matchAny(patterns []string, id string) bool {
	for _, p := range patterns {
		if matchPattern(p, id) {
			return true
		}
	}
	return false
}

// matchPattern matches id against p, where '*' stands for any run of
// characters (none included) and every other character for itself.
func matchPattern(p, id string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == id
	}
	if !strings.HasPrefix(id, parts[0]) {
		return false
	}
	id = id[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(id, mid)
		if i < 0 {
			return false
		}
		id = id[i+len(mid):]
	}
	return strings.HasSuffix(id, last)
}

// validPattern reports whether p is an operator id in which '*' may stand
// for characters.
func validPattern(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	return controller.ValidOperatorID(strings.ReplaceAll(p, "*", "x"))
}

// commands reads the commands section (after room: an entry must not take
// the room's own identity).
func (r *reader) commands(n *yaml.Node, c *Config) {
	const path = "commands"
	m := r.mapping(n, path, "booking", "operators", "readers")
	r.boolean(m["booking"], "commands.booking", &c.Commands.Booking)
	r.patterns(m["operators"], "commands.operators", c.Room, &c.Commands.Operators)
	r.patterns(m["readers"], "commands.readers", c.Room, &c.Commands.Readers)
}

// patterns reads a list of operator ids or patterns.
func (r *reader) patterns(n *yaml.Node, path, room string, dst *[]string) {
	n = resolve(n)
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.bad(n, path, "must be a list of operator ids or patterns, e.g. [guard-7, guard-*], got %s", kindName(n))
		return
	}
	out := []string{}
	ok := true
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		var s string
		if !r.str(item, p, &s) {
			ok = false
			continue
		}
		switch {
		case !validPattern(s):
			r.bad(item, p, "%q is not an operator id or pattern (1 to 64 of A-Z a-z 0-9 . _ : -, '*' for any characters; not on_site)", s)
			ok = false
		case room != "" && matchPattern(s, room):
			r.bad(item, p, "%q takes this room's own identity (%s) as an operator: a room must never command a room, itself included", s, room)
			ok = false
		default:
			out = append(out, s)
		}
	}
	if ok {
		*dst = out
	}
}

// Warnings says what the commands section lets nobody do that a site
// would expect: no operator named means no guard can acknowledge this
// room's alerts from the board or visitctl (not_authorized), the state a
// room upgraded from a version without the section is left in.
func (c Commands) Warnings() []string {
	var out []string
	if len(c.Operators) == 0 {
		out = append(out, "commands.operators names no operator: no guard can acknowledge this room's alerts or act on it from the board or visitctl (they get not_authorized); name the site's operators, e.g. commands: {operators: [guard-*]} (docs/security.md)")
	}
	if !c.Booking {
		out = append(out, "commands.booking is false: the booking system cannot start, extend or end visits in this room")
	}
	return out
}

// Warnings lists what check-config tells about a config that loads but
// may not do what the site expects: the journal's bound and whom the room
// takes commands from.
func (c *Config) Warnings() []string {
	return append(c.JournalWarnings(), c.Commands.Warnings()...)
}
