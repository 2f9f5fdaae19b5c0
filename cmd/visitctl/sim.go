package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/roomd/roomd/contract"
)

// parseSim reads KEY=VALUE arguments (door=open, panic:bed=pressed,
// wire:panic:bed=bridged, fault=door, …) with the contract's own reader of
// the simulator's line syntax, so visitctl never sends what a simulated
// room would refuse and knows every key the room knows.
func parseSim(args []string) (contract.SimControl, error) {
	c, err := contract.ParseSimAssignments(args)
	if err != nil {
		return contract.SimControl{}, usagef("%v", err)
	}
	return c, nil
}

// runSim publishes one sim/set message (QoS 1) and waits for the broker's
// acknowledgement. No reply comes: roomd applies it only in simulator mode.
func runSim(ctx context.Context, g globals, args []string, stdout io.Writer) error {
	fs := newFlags("sim", &g)
	pos, help, err := parseArgs("sim", fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("sim: want \"visitctl sim ROOM KEY=VALUE...\"")
	}
	room, err := parseRoom(pos[0])
	if err != nil {
		return err
	}
	set, err := parseSim(pos[1:])
	if err != nil {
		return err
	}
	if err := g.check(); err != nil {
		return err
	}
	topics, err := contract.NewTopics(g.base, room)
	if err != nil {
		return usagef("%v", err)
	}
	o, err := g.clientOptions()
	if err != nil {
		return err
	}
	c, err := dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	payload := set.Encode()
	if err := c.Publish(ctx, topics.SimSet(), payload, false); err != nil {
		return err
	}
	if g.json {
		fmt.Fprintf(stdout, "%s\n", mustJSON(map[string]any{"room": room, "topic": topics.SimSet(), "sent": json.RawMessage(payload)}))
	} else {
		fmt.Fprintf(stdout, "%s: sent %s to %s\n", room, payload, topics.SimSet())
	}
	return nil
}
