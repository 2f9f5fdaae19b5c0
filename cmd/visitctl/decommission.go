package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/homeassistant"
	"github.com/roomd/roomd/roomclient"
)

// retainedScan is what a subscription found retained for one room.
type retainedScan struct {
	topics       map[string][]byte // topic → retained payload
	availability string            // the latest availability seen, live or retained
	unreadable   []string          // filters the broker refused (its ACL)
}

// scanRetained subscribes to every topic of room (and its Home Assistant
// discovery) and collects the retained messages until nothing came for
// settle (at most the timeout).
func scanRetained(ctx context.Context, g globals, room, haPrefix string, settle time.Duration) (retainedScan, error) {
	o, err := g.clientOptions()
	if err != nil {
		return retainedScan{}, err
	}
	c, err := dial(ctx, o)
	if err != nil {
		return retainedScan{}, err
	}
	defer c.Close()
	var mu sync.Mutex
	scan := retainedScan{topics: map[string][]byte{}}
	got := make(chan struct{}, 1)
	avail := room
	if t, err := contract.NewTopics(g.base, room); err == nil {
		avail = t.Availability()
	}
	h := func(m roomclient.Message) {
		mu.Lock()
		if m.Retained && len(m.Payload) > 0 {
			scan.topics[m.Topic] = m.Payload
		}
		if m.Topic == avail {
			scan.availability = strings.TrimSpace(string(m.Payload))
		}
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}
	// An identity that may not read Home Assistant's prefix cannot see
	// (nor clear) the discovery: say so, and carry on with the rest.
	ha := homeassistant.DiscoveryTopic(haPrefix, room)
	var refused *roomclient.SubscribeError
	if err := c.SubscribeMany(ctx, []string{g.base + "/" + room + "/#", ha}, h); errors.As(err, &refused) && len(refused.Refused) == 1 && refused.Filter == ha {
		scan.unreadable = append(scan.unreadable, ha)
	} else if err != nil {
		return retainedScan{}, err
	}
	if err := settleDown(ctx, got, settle, g.timeout); err != nil {
		return retainedScan{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	return scan, nil
}

func (s retainedScan) list() []string {
	out := make([]string, 0, len(s.topics))
	for t := range s.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// runDecommission is "visitctl decommission ROOM": every retained topic of
// a room that is gone is cleared (an empty retained publish), so that
// registries, boards and Home Assistant forget it.
func runDecommission(ctx context.Context, g globals, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("decommission", &g)
	yes := fs.Bool("yes", false, "do not ask for confirmation (scripts)")
	force := fs.Bool("force", false, "clear even while the room reports online")
	haPrefix := fs.String("ha-prefix", homeassistant.DefaultPrefix, "Home Assistant's discovery `prefix` (homeassistant.discovery_prefix)")
	settle := fs.Duration("settle", 500*time.Millisecond, "quiet time after the last retained message before deciding")
	pos, help, err := parseArgs("decommission", fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("decommission: want \"visitctl decommission ROOM\", got %d arguments", len(pos))
	}
	room, err := parseRoom(pos[0])
	if err != nil {
		return err
	}
	if err := contract.ValidateBase(*haPrefix); err != nil {
		return usagef("decommission: --ha-prefix: %v", err)
	}
	if *settle <= 0 {
		return usagef("decommission: --settle must be positive, got %s", *settle)
	}
	if err := g.check(); err != nil {
		return err
	}

	scan, err := scanRetained(ctx, g, room, *haPrefix, *settle)
	if err != nil {
		return err
	}
	for _, f := range scan.unreadable {
		fmt.Fprintf(stderr, "visitctl: the broker does not let user %q read %s; it is not checked (clear it as the room's own identity)\n", g.username, f)
	}
	topics := scan.list()
	if len(topics) == 0 {
		return fmt.Errorf("room %s: nothing retained under %s/%s/ or at %s (wrong room id or --base? or %s is not allowed to read %s/%s/#: the broker withholds what an identity may not read without saying so; the site file's decommission section names the rooms it may clear)",
			room, g.base, room, homeassistant.DiscoveryTopic(*haPrefix, room), describeUser(g.username), g.base, room)
	}
	if scan.availability == contract.Online && !*force {
		return fmt.Errorf("room %s reports online: roomd still runs there and would publish it all again; stop it first (systemctl stop roomd), or use --force", room)
	}
	if !*yes {
		fmt.Fprintf(stdout, "room %s (%s): clear %d retained topics?\n", room, availabilityWord(scan.availability), len(topics))
		for _, t := range topics {
			fmt.Fprintf(stdout, "  %s\n", t)
		}
		fmt.Fprint(stdout, "type yes to clear them: ")
		answer, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && answer != "") {
			return fmt.Errorf("decommission %s: no answer on stdin (use --yes in scripts); nothing cleared", room)
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "yes" && a != "y" {
			return fmt.Errorf("decommission %s: not confirmed; nothing cleared", room)
		}
	}

	o, err := g.clientOptions()
	if err != nil {
		return err
	}
	c, err := dial(ctx, o)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if err := c.Publish(ctx, t, nil, true); err != nil {
			c.Close()
			return fmt.Errorf("decommission %s: clear %s: %w", room, t, err)
		}
	}
	c.Close()

	// The broker acknowledges a publish its ACL denies (MQTT 3.1.1): look.
	after, err := scanRetained(ctx, g, room, *haPrefix, *settle)
	if err != nil {
		return fmt.Errorf("decommission %s: check: %w", room, err)
	}
	if left := after.list(); len(left) > 0 {
		return fmt.Errorf("decommission %s: still retained after clearing (did the broker's ACL refuse user %q?): %s",
			room, g.username, strings.Join(left, ", "))
	}
	if g.json {
		fmt.Fprintf(stdout, "%s\n", mustJSON(map[string]any{"room": room, "cleared": topics}))
	} else {
		fmt.Fprintf(stdout, "room %s: cleared %d retained topics\n", room, len(topics))
	}
	return nil
}

func availabilityWord(a string) string {
	if a == "" {
		return "availability unknown"
	}
	return a
}

// describeUser names a broker identity in a message.
func describeUser(user string) string {
	if user == "" {
		return "an anonymous client"
	}
	return "user " + user
}
