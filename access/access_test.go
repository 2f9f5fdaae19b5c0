package access

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func shipped(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "mosquitto", name))
	require.NoError(t, err)
	return b
}

func shippedSite(t *testing.T) *Site {
	t.Helper()
	s, err := ReadSite(shipped(t, "site.yaml"), "site.yaml")
	require.NoError(t, err)
	return s
}

// bench is the shipped site file with every role a test bench may add.
func bench(t *testing.T) *Site {
	s := shippedSite(t)
	s.SimDriver = "sim-driver"
	s.Decommission = &Decommission{Identity: "decommission", Rooms: []string{"room-b"}}
	require.NoError(t, s.Check())
	return s
}

// topicsOf returns the topics of room under base that the contract names,
// and the commands every kind of sender might try.
func topicsOf(room string, others ...string) []string {
	var out []string
	for _, sub := range []string{"availability", "info", "state", "events", "alerts", "reply", "sim/outputs", "sim/set", "cmd", "cmd/"} {
		out = append(out, "visitrooms/"+room+"/"+sub)
	}
	for _, o := range others {
		out = append(out, "visitrooms/"+room+"/cmd/"+o)
	}
	return out
}

func TestTopicMatches(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/+", "a/", true}, {"a/+", "a/b/c", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"#", "a/b", true}, {"#", "$SYS/x", false}, {"+/x", "$SYS/x", false},
		{"$SYS/broker/connection/+/state", "$SYS/broker/connection/site-a/state", true}, {"a/+/c", "a/b/c/d", false},
		{"visitrooms/+/cmd/+", "visitrooms/room-a/cmd/", true}, {"a/b/#", "a/bb/c", false},
	} {
		assert.Equal(t, c.want, TopicMatches(c.filter, c.topic), "%s ~ %s", c.filter, c.topic)
	}
}

// TestNoRoomCanCommand: whatever the site, no room identity may publish a
// command, to any room, itself included, under any operator id, on the
// plain cmd topic or an empty level, or set simulated inputs.
func TestNoRoomCanCommand(t *testing.T) {
	s := bench(t)
	ids := []string{"room-a", "room-b", "room-x", "guard-7", "booking", "guard-station", "homeassistant", ""}
	for _, room := range s.Rooms {
		for _, target := range []string{"room-a", "room-b", "room-x"} {
			for _, topic := range topicsOf(target, ids...) {
				if strings.Contains(topic, "/cmd") || strings.HasSuffix(topic, "/sim/set") {
					assert.False(t, s.Allowed(room, Publish, topic), "%s may publish %s", room, topic)
				}
			}
		}
		// Structurally too: no grant of the room role publishes a cmd
		// level, whatever the ids.
		for _, g := range mustRole(t, RoleRoom).Grants {
			if g.Access == Publish {
				assert.NotRegexp(t, regexp.MustCompile(`(^|/)(cmd|\+|#)(/|$)|sim/set`), strings.TrimPrefix(g.Topic, "{base}/{me}/"), g.Topic)
			}
		}
	}
}

func mustRole(t *testing.T, n RoleName) Role {
	r, ok := RoleOf(n)
	require.True(t, ok, n)
	return r
}

// TestOnlyTheRoomPublishesItsOutputs: a room's outputs (what consoles show
// as the room) have one writer, the room itself (and the decommission
// identity of a room being removed, which clears them); no identity can
// pose as a room under its own name either.
func TestOnlyTheRoomPublishesItsOutputs(t *testing.T) {
	s := bench(t)
	for _, id := range s.Identities() {
		for _, room := range append(slices.Clone(s.Rooms), id.Name, "room-x") {
			for _, sub := range []string{"availability", "info", "state", "events", "alerts", "reply", "sim/outputs"} {
				topic := "visitrooms/" + room + "/" + sub
				own := id.Role == RoleRoom && id.Name == room
				want := own && (sub != "sim/outputs" || s.SimDriver != "") ||
					id.Role == RoleDecommission && slices.Contains(s.Decommission.Rooms, room)
				assert.Equal(t, want, s.Allowed(id.Name, Publish, topic), "%s (%s) publishes %s", id.Name, id.Role, topic)
			}
		}
	}
}

// TestWhoSendsCommands: the booking system sends on the plain cmd topic
// only; an operator only as itself; the guard station as any operator,
// never on the plain topic; Home Assistant and the consoles send nothing
// unless the site opts in, and then only as themselves; the paging gateway
// only as itself (rooms take only replays from it); nobody reads a
// command but the room it is for.
func TestWhoSendsCommands(t *testing.T) {
	s := bench(t)
	for _, id := range s.Identities() {
		for _, target := range []string{"room-a", "room-b"} {
			for _, topic := range topicsOf(target, "guard-7", "guard-8", id.Name, "booking", "room-a", "homeassistant", "guard-console") {
				if !strings.Contains(topic, "/cmd") {
					continue
				}
				op, onTopic := strings.CutPrefix(topic, "visitrooms/"+target+"/cmd/")
				var want bool
				switch id.Role {
				case RoleBooking:
					want = !onTopic && topic == "visitrooms/"+target+"/cmd"
				case RoleOperator, RolePager:
					want = onTopic && op == id.Name
				case RoleGuardStation:
					want = onTopic
				case RoleDecommission:
					want = target == "room-b"
				}
				assert.Equal(t, want, s.Allowed(id.Name, Publish, topic), "%s (%s) publishes %s", id.Name, id.Role, topic)
				readWant := id.Role == RoleRoom && id.Name == target || id.Role == RoleDecommission && target == "room-b"
				assert.Equal(t, readWant, s.Allowed(id.Name, Read, topic), "%s (%s) reads %s", id.Name, id.Role, topic)
			}
		}
	}

	opted := bench(t)
	opted.ConsoleCommands = true
	opted.HomeAssistant.Commands = true
	for _, who := range []string{"guard-console", "homeassistant"} {
		assert.False(t, s.Allowed(who, Publish, "visitrooms/room-a/cmd/"+who), "%s sends by default", who)
		assert.True(t, opted.Allowed(who, Publish, "visitrooms/room-a/cmd/"+who), "%s opted in", who)
		assert.False(t, opted.Allowed(who, Publish, "visitrooms/room-a/cmd/guard-7"), "%s only as itself", who)
		assert.False(t, opted.Allowed(who, Publish, "visitrooms/room-a/cmd"), who)
	}
	assert.False(t, s.Allowed("nobody", Read, "visitrooms/room-a/state"), "an identity the site does not list gets nothing")
}

// TestShippedACLIsTheTable: the shipped ACLs are what visitctl acl writes
// from the shipped site files, byte for byte, and hold no pattern line.
func TestShippedACLIsTheTable(t *testing.T) {
	for _, c := range []struct{ site, acl string }{{"site.yaml", "acl"}, {"central.yaml", "central.acl"}} {
		s, err := ReadSite(shipped(t, c.site), c.site)
		require.NoError(t, err)
		got := string(shipped(t, c.acl))
		assert.Equal(t, s.ACL(c.site), got, "configs/mosquitto/%s is not what %s gives: go run ./cmd/visitctl acl configs/mosquitto/%s > configs/mosquitto/%s", c.acl, c.site, c.site, c.acl)
		for _, ln := range strings.Split(got, "\n") {
			assert.False(t, strings.HasPrefix(strings.TrimSpace(ln), "pattern"), "%s: %s", c.acl, ln)
		}
	}
}

// TestSiteBridgeIsItsRole: the bridge's topics (site-bridge.conf) are
// what the site bridge may publish and read at the centre, and nothing
// else: every room output goes up, under the site's prefix, and the
// centre's booking commands come down.
func TestSiteBridgeIsItsRole(t *testing.T) {
	centre, err := ReadSite(shipped(t, "central.yaml"), "central.yaml")
	require.NoError(t, err)
	conf := string(shipped(t, "site-bridge.conf"))
	var up, down []string
	for _, ln := range strings.Split(conf, "\n") {
		f := strings.Fields(ln)
		if len(f) != 6 || f[0] != "topic" {
			continue
		}
		require.Equal(t, "visitrooms/", f[4], ln)
		require.Equal(t, "visitrooms/site-a/", f[5], ln)
		remote := f[5] + f[1]
		switch f[2] {
		case "out":
			up = append(up, strings.TrimPrefix(f[1], "+/"))
			assert.True(t, centre.Allowed("site-a", Publish, strings.Replace(remote, "+", "room-1", 1)), "the bridge sends %s up", remote)
			assert.False(t, centre.Allowed("site-b", Publish, strings.Replace(remote, "+", "room-1", 1)), "another site's bridge may not")
		case "in":
			down = append(down, strings.TrimPrefix(f[1], "+/"))
			topic := strings.Replace(remote, "+", "room-1", 1)
			assert.True(t, centre.Allowed("site-a", Read, topic), "the bridge reads %s", remote)
			assert.False(t, centre.Allowed("site-b", Read, topic), "another site's bridge may not")
			assert.True(t, centre.Allowed("booking", Publish, topic), "the central booking system sends it")
		default:
			t.Errorf("unexpected bridge direction: %s", ln)
		}
	}
	var outputs []string
	for _, o := range roomOutputs {
		outputs = append(outputs, o.sub)
	}
	assert.ElementsMatch(t, outputs, up, "every room output goes up, and nothing else")
	assert.Equal(t, []string{"cmd"}, down, "only the booking system's commands come down")
	for _, g := range mustRole(t, RoleBridge).Grants {
		if g.Access == Publish && !strings.HasPrefix(g.Topic, "$SYS") {
			assert.Contains(t, up, g.Topic[strings.LastIndex(g.Topic, "/")+1:], "the bridge role grants %s, which the bridge never sends", g.Topic)
		}
	}
	assert.False(t, centre.Allowed("monitor", Publish, "visitrooms/site-a/room-1/cmd"), "monitoring is read only")
	assert.False(t, centre.Allowed("booking", Publish, "visitrooms/site-a/room-1/state"), "the booking system cannot forge a room")
	assert.False(t, centre.Allowed("booking", Publish, "visitrooms/booking/room-1/state"), "nor a site named after itself")
	assert.False(t, centre.Allowed("booking", Publish, "$SYS/broker/connection/booking/state"), "nor a site's link flag")
}

// TestSecurityPageShowsTheTable: docs/security.md shows the table as it is.
func TestSecurityPageShowsTheTable(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	require.NoError(t, err)
	assert.Contains(t, string(page), Markdown(), "docs/security.md does not show the roles' table as package access has it: paste access.Markdown()")
}

func TestReadSiteRefuses(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"broker: site\nrooms: [room-a]\nroom: [x]\n", "field room not found"},
		{"rooms: [room-a]\n", "broker: missing"},
		{"broker: site\nrooms: [Room-A, booking]\n", `"Room-A" is not a room id`},
		{"broker: site\nrooms: [room-a]\noperators: [room-a]\n", `"room-a" is already the identity of a room`},
		{"broker: site\nrooms: [room-a]\nsites: [site-a]\n", "sites: only on a central broker"},
		{"broker: central\nsites: [site-a]\nrooms: [room-a]\n", "rooms: not on a central broker"},
		{"broker: site\noperators: [guard 7]\n", `"guard 7" is not an operator id`},
		{"broker: site\nconsoles: [a/b]\n", `"a/b" is not a usable broker username`},
		{"broker: site\nhome_assistant: {identity: ha, prefix: visitrooms/ha}\n", "overlaps base"},
		{"broker: site\npagers: [{identity: roompager}]\n", "identity and gateway are both needed"},
		{"broker: site\ndecommission: {identity: decommission}\n", "decommission.rooms: name the rooms"},
		{"broker: site\nbase: 'a/#'\n", "base:"},
	} {
		_, err := ReadSite([]byte(c.yaml), "site.yaml")
		require.Error(t, err, c.yaml)
		assert.Contains(t, err.Error(), c.want, c.yaml)
	}
}

// TestACLLinesAreTheGrants: every line of a written ACL is a grant of its
// identity's role, and the other way round (the renderer drops nothing
// and adds nothing).
func TestACLLinesAreTheGrants(t *testing.T) {
	s := bench(t)
	acl := s.ACL("site.yaml")
	user := ""
	lines := map[string][]string{}
	for _, ln := range strings.Split(acl, "\n") {
		switch {
		case strings.HasPrefix(ln, "user "):
			user = strings.TrimPrefix(ln, "user ")
		case strings.HasPrefix(ln, "topic "):
			require.NotEmpty(t, user, "a topic line before any user line: %s", ln)
			lines[user] = append(lines[user], ln)
		case ln == "" || strings.HasPrefix(ln, "#"):
		default:
			t.Errorf("unexpected line %q", ln)
		}
	}
	require.Len(t, lines, len(s.Identities()))
	for _, id := range s.Identities() {
		var want []string
		for _, g := range id.Grants() {
			want = append(want, fmt.Sprintf("topic %s %s", g.Access.keyword(), g.Topic))
			assert.NotContains(t, g.Topic, "{", "unfilled placeholder for %s", id.Name)
		}
		assert.Equal(t, want, lines[id.Name], id.Name)
	}
}
