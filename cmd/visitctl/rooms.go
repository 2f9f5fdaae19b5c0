package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// runRooms is "visitctl rooms": the rooms under the base, from their
// retained info, availability and state.
func runRooms(ctx context.Context, g globals, args []string, stdout io.Writer) error {
	fs := newFlags("rooms", &g)
	settle := fs.Duration("settle", 500*time.Millisecond, "quiet time after the last retained message before printing")
	pos, help, err := parseArgs("rooms", fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("rooms takes no arguments besides flags, got %q", pos)
	}
	if *settle <= 0 {
		return usagef("rooms: --settle must be positive, got %s", *settle)
	}
	if err := g.check(); err != nil {
		return err
	}
	o, err := g.clientOptions()
	if err != nil {
		return err
	}
	got := make(chan struct{}, 1)
	o.Streams = roomclient.RegistryStreams
	o.OnMessage = func(roomclient.Message) {
		select {
		case got <- struct{}{}:
		default:
		}
	}
	c, err := dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := settleDown(ctx, got, *settle, g.timeout); err != nil {
		return err
	}
	rooms, now := c.Rooms(), wallclock.Now()
	if g.json {
		_, err = fmt.Fprintf(stdout, "%s\n", mustJSON(roomsJSON(rooms)))
	} else {
		_, err = io.WriteString(stdout, renderRooms(g.base, g.username, rooms, now))
	}
	return err
}

// settleDown waits until nothing arrived on got for settle, at most limit.
func settleDown(ctx context.Context, got <-chan struct{}, settle, limit time.Duration) error {
	quiet := time.NewTimer(settle)
	defer quiet.Stop()
	end := time.NewTimer(limit)
	defer end.Stop()
	for {
		select {
		case <-got:
			quiet.Reset(settle)
		case <-quiet.C:
			return nil
		case <-end.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// roomJSON is one room in "rooms --json". Lists are never null; times and
// info are null when unknown.
type roomJSON struct {
	Room string `json:"room"`
	// Availability is "online", "offline", or "" when never seen.
	Availability string `json:"availability"`
	Stale        bool   `json:"stale"`
	// LastSeen and LastState: see roomclient.Room.
	LastSeen  *contract.Time        `json:"last_seen"`
	LastState *contract.Time        `json:"last_state"`
	Phase     string                `json:"phase"`
	Epoch     string                `json:"epoch"`
	Seq       uint64                `json:"seq"`
	Info      *contract.InfoMessage `json:"info"`
}

func roomsJSON(rooms []roomclient.Room) []roomJSON {
	out := make([]roomJSON, 0, len(rooms))
	for _, r := range rooms {
		j := roomJSON{Room: r.ID, Availability: string(r.Availability), Stale: r.Stale, Phase: r.Phase, Epoch: r.Epoch, Seq: r.Seq}
		if !r.LastSeen.IsZero() {
			t := contract.T(r.LastSeen)
			j.LastSeen = &t
		}
		if !r.LastState.IsZero() {
			t := contract.T(r.LastState)
			j.LastState = &t
		}
		if r.Info != nil {
			info := *r.Info
			for _, l := range []*[]string{&info.Inputs, &info.PanicPoints, &info.Outputs, &info.Supervised} {
				if *l == nil {
					*l = []string{}
				}
			}
			if info.Policy.WarningsS == nil {
				info.Policy.WarningsS = []int64{}
			}
			j.Info = &info
		}
		out = append(out, j)
	}
	return out
}

// nothingRead says that no room reached visitctl, and the two reasons it
// may be: the broker withholds what an identity may not read without a
// word, so an empty list is not proof that no room published.
func nothingRead(base, user, topics string) string {
	who := user
	if who == "" {
		who = "an anonymous client"
	}
	return fmt.Sprintf("(nothing under %s/ reached %s: no room has published there yet, or %s is not allowed to read %s/+/%s; the broker withholds what an identity may not read without saying so: docs/security.md)",
		base, who, who, base, topics)
}

// renderRooms draws the room list at now: one line per room, sorted by id,
// times in now's zone, shown with it. user is visitctl's identity.
func renderRooms(base, user string, rooms []roomclient.Room, now time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s  %s  %d rooms\n", base, now.Format(dateTimeZone), len(rooms))
	w := len("ROOM")
	for _, r := range rooms {
		w = max(w, len(r.ID))
	}
	format := fmt.Sprintf("%%-%ds  %%-7s  %%-16s  %%-8s  %%-8s  %%-7s  %%-9s  %%-9s  %%s", w)
	line := func(args ...any) { sb.WriteString(strings.TrimRight(fmt.Sprintf(format, args...), " ") + "\n") }
	line("ROOM", "LINK", "ROOMD", "CONTRACT", "POLICY", "MAX", "EXTENSION", "HEARTBEAT", "LAST SEEN")
	if len(rooms) == 0 {
		sb.WriteString(nothingRead(base, user, "{info,availability,state}") + "\n")
	}
	for _, r := range rooms {
		link := "?"
		switch {
		case r.Availability == roomclient.Offline:
			link = "OFFLINE"
		case r.Stale:
			link = "STALE"
		case r.Availability == roomclient.Online:
			link = "online"
		}
		version, contract, policy, maxd, ext := "?", "?", "?", "?", "?"
		if i := r.Info; i != nil {
			version, contract, policy = i.Roomd, fmt.Sprint(i.Version), i.Policy.Name
			maxd = (time.Duration(i.Policy.MaxDurationS) * time.Second).String()
			ext = i.Policy.Extension
		}
		seen := "never"
		if !r.LastSeen.IsZero() {
			seen = r.LastSeen.In(now.Location()).Format(dateTimeZone) + " (" + age(now.Sub(r.LastSeen)) + " ago)"
		}
		line(r.ID, link, version, contract, policy, maxd, ext, r.Heartbeat().String(), seen)
	}
	return sb.String()
}
