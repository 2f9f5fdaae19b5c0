package configs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommandsDefaultTakesNoOperator: the default config takes the
// booking system's plain cmd topic and lets the guard station and the
// paging gateway ask, and takes no operator at all, so no room id (a room
// is a broker identity like any other) is ever taken as one.
func TestCommandsDefaultTakesNoOperator(t *testing.T) {
	c, err := Parse([]byte(base), "roomd.yaml")
	require.NoError(t, err)
	a := c.Commands.Authorize
	assert.Empty(t, a("", false, false), "the booking system")
	for _, op := range []string{"room-1", "room-b", "guard-7", "booking", "homeassistant", "x"} {
		assert.Contains(t, a(op, true, false), "commands.operators does not name it", op)
		assert.Contains(t, a(op, true, true), "commands.operators does not name it", op)
	}
	for _, reader := range []string{"guard-station", "roompager"} {
		assert.Empty(t, a(reader, true, true), "%s may ask", reader)
		assert.Contains(t, a(reader, true, false), "may only ask", reader)
	}
}

func TestCommandsNamedAndPatterns(t *testing.T) {
	c, err := Parse([]byte(base+"commands:\n  booking: false\n  operators: [guard-*, sup:1, '*.night']\n  readers: [console-*]\n"), "roomd.yaml")
	require.NoError(t, err)
	a := c.Commands.Authorize
	assert.Contains(t, a("", false, false), "commands.booking is false")
	for _, op := range []string{"guard-7", "guard-", "sup:1", "a.night", ".night"} {
		assert.Empty(t, a(op, true, false), op)
	}
	for _, op := range []string{"guard", "sup:10", "xsup:1", "night", "a.nights", "room-1", "roompager"} {
		assert.NotEmpty(t, a(op, true, false), op)
	}
	assert.Empty(t, a("console-2", true, true))
	assert.Contains(t, a("console-2", true, false), "may only ask")

	// Read back from the effective config, as check-config prints it.
	y, err := c.YAML()
	require.NoError(t, err)
	back, err := Parse(y, "effective")
	require.NoError(t, err)
	assert.Equal(t, c.Commands, back.Commands)
}

func TestCommandsRefused(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"the room's own id", "commands: {operators: [room-1]}\n", []string{`commands.operators[0]: "room-1" takes this room's own identity (room-1)`}},
		{"a pattern that takes the room", "commands: {readers: [room-*]}\n", []string{`commands.readers[0]: "room-*" takes this room's own identity`}},
		{"everybody", "commands: {operators: ['*']}\n", []string{`commands.operators[0]: "*" takes this room's own identity`}},
		{"not an id", "commands: {operators: [guard 7, on_site, 'a/b', '']}\n", []string{
			`commands.operators[0]: "guard 7" is not an operator id or pattern`, `commands.operators[1]: "on_site" is not an operator id or pattern`,
			`commands.operators[2]: "a/b" is not an operator id or pattern`, `commands.operators[3]: "" is not an operator id or pattern`}},
		{"not a list", "commands: {operators: guard-7, booking: yes please}\n", []string{
			`commands.booking: "yes please" is not a boolean`, `commands.operators: must be a list of operator ids or patterns`}},
		{"unknown key", "commands: {consoles: [c-1]}\n", []string{`commands.consoles: unknown key`}},
	} {
		_, err := Parse([]byte(base+c.yaml), "roomd.yaml")
		got := problems(t, err)
		require.Len(t, got, len(c.want), "%s: %q", c.name, got)
		for i, w := range c.want {
			assert.Contains(t, got[i], w, c.name)
		}
	}
}

// TestCommandsReaderNotWidenedByAPattern: an operators pattern that matches
// a reader's id (guard-* and guard-station) does not give the reader every
// command; naming the id exactly does.
func TestCommandsReaderNotWidenedByAPattern(t *testing.T) {
	c, err := Parse([]byte(base+"commands:\n  operators: [guard-*]\n"), "roomd.yaml")
	require.NoError(t, err)
	a := c.Commands.Authorize
	assert.Empty(t, a("guard-7", true, false), "an operator by the pattern")
	assert.Empty(t, a("guard-station", true, true), "the guard station asks")
	assert.Contains(t, a("guard-station", true, false), "may only ask", "the pattern does not make the guard station an operator")

	c, err = Parse([]byte(base+"commands:\n  operators: [guard-*, guard-station]\n"), "roomd.yaml")
	require.NoError(t, err)
	assert.Empty(t, c.Commands.Authorize("guard-station", true, false), "named exactly, it takes every command")
}
