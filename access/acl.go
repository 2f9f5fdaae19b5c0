package access

import (
	"fmt"
	"strings"
)

// ACL returns mosquitto's ACL file for the site: a header, then one user
// block per identity with the lines of its role, each grant explained. No
// "pattern" line: a pattern applies to every username. source names the
// site file, for the header.
func (s *Site) ACL(source string) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	kind := "site"
	if s.Broker == BrokerCentral {
		kind = "central"
	}
	line("# roomd %s broker access control list (mosquitto 2.0 acl_file).", kind)
	line("#")
	line("# WRITTEN BY `visitctl acl %s` FROM THE SITE FILE: do not edit it, edit", source)
	line("# the site file and write it again, then reload mosquitto")
	line("# (systemctl reload mosquitto). `visitctl acl --check /etc/mosquitto/acl %s`", source)
	line("# says whether an installed file is still what the site file says.")
	line("#")
	line("# One user block per identity and nothing else: an identity with no block")
	line("# may do nothing. No \"pattern\" line, because a pattern applies to every")
	line("# username (a room's pattern would let an operator pose as a room, an")
	line("# operator's would let a room command rooms). The roles and why each may")
	line("# do what it does: docs/security.md. A denied publish is acknowledged and")
	line("# dropped silently (MQTT 3.1.1); a subscription is always granted and")
	line("# receives only what the identity may read. Look in the broker log when")
	line("# something does not arrive.")
	var role RoleName
	for _, id := range s.identities() {
		if id.Role != role {
			role = id.Role
			r, _ := RoleOf(role)
			line("")
			line("# ---- %s: %s ----", role, r.Who)
		}
		line("")
		line("user %s", id.Name)
		said := ""
		for _, g := range id.Grants() {
			if g.Why != "" && g.Why != said {
				line("# %s", g.Why)
				said = g.Why
			}
			line("topic %s %s", g.Access.keyword(), g.Topic)
		}
	}
	return b.String()
}

// Markdown returns the roles table as docs/security.md shows it: per role,
// who it is and each grant, its opt-in named; grants side by side that
// differ only in their last level are written once, the levels in braces.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| role | who | publishes | reads |\n| --- | --- | --- | --- |\n")
	for _, r := range Roles {
		var pub, read []string
		for i := 0; i < len(r.Grants); {
			g := r.Grants[i]
			dir, last := splitLast(g.Topic)
			lasts := []string{last}
			j := i + 1
			for ; j < len(r.Grants); j++ {
				h := r.Grants[j]
				d, l := splitLast(h.Topic)
				if h.Access != g.Access || h.OptIn != g.OptIn || d != dir {
					break
				}
				lasts = append(lasts, l)
			}
			t := g.Topic
			if len(lasts) > 1 {
				t = dir + "/{" + strings.Join(lasts, ",") + "}"
			}
			t = "`" + t + "`"
			if g.OptIn != "" {
				t += " (opt-in `" + string(g.OptIn) + "`)"
			}
			if g.Access == Publish {
				pub = append(pub, t)
			} else {
				read = append(read, t)
			}
			i = j
		}
		who := r.Who
		if r.Central {
			who += " (central broker)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, strings.ReplaceAll(who, "|", "/"), list(pub), list(read))
	}
	return b.String()
}

func splitLast(topic string) (dir, last string) {
	i := strings.LastIndex(topic, "/")
	if i < 0 {
		return "", topic
	}
	return topic[:i], topic[i+1:]
}

func list(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, ", ")
}
