package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// simKeys documents the keys of "visitctl sim" and their values.
var simKeys = map[string]string{
	"door":     "open or closed",
	"lock":     "locked or unlocked",
	"presence": "true or false",
	"panic":    "true or false",
	"staff":    "true or false",
	"fault":    "an input: door, lock, presence, panic or staff",
	"heal":     "an input: door, lock, presence, panic or staff",
	// wire:TARGET (wire:door, wire:panic:bed): what is done to a line's wires.
	"wire": "bridged, cut, masked, drift_low, drift_high or sound",
}

// simKeyList names the keys in messages.
const simKeyList = "door, lock, presence, panic, staff, fault, heal, wire:TARGET"

// parseSim reads KEY=VALUE arguments into the JSON object published on
// {base}/{room}/sim/set: {"door":"open"}, {"lock":"locked"},
// {"presence":true}, {"panic":true}, {"staff":true}, {"fault":"door"},
// {"heal":"door"}, and wire:TARGET=CONDITION as {"wire":{"panic:bed":"bridged"}}.
// Each key may appear once. Booleans also accept the input's own words
// (present/absent, pressed/released) and on/off.
func parseSim(args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, usagef("sim: want at least one KEY=VALUE, e.g. door=open")
	}
	out := map[string]any{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, usagef("sim: %q is not KEY=VALUE (keys: %s)", arg, simKeyList)
		}
		if target, isWire := strings.CutPrefix(k, "wire:"); isWire {
			wires, _ := out["wire"].(map[string]string)
			if wires == nil {
				wires = map[string]string{}
				out["wire"] = wires
			}
			if _, dup := wires[target]; dup {
				return nil, usagef("sim: wire of %s given twice", target)
			}
			if !slices.Contains(contract.SimWires, contract.SimWire(v)) {
				return nil, usagef("sim: %s=%q: want %s", k, v, simKeys["wire"])
			}
			wires[target] = v
			continue
		}
		want, known := simKeys[k]
		if !known || k == "wire" {
			return nil, usagef("sim: unknown key %q (keys: %s)", k, simKeyList)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("sim: key %s given twice", k)
		}
		switch k {
		case "door", "lock":
			in, _ := controller.ParseInput(k)
			l, err := in.ParseLevel(v)
			if err != nil || l == controller.LevelUnknown {
				return nil, usagef("sim: %s=%q: want %s", k, v, want)
			}
			out[k] = v
		case "presence", "panic", "staff":
			in, _ := controller.ParseInput(k)
			var b bool
			switch v {
			case "true", "on", in.Describe(controller.LevelActive):
				b = true
			case "false", "off", in.Describe(controller.LevelInactive):
			default:
				return nil, usagef("sim: %s=%q: want %s", k, v, want)
			}
			out[k] = b
		case "fault", "heal":
			if _, err := controller.ParseInput(v); err != nil {
				return nil, usagef("sim: %s=%q: want %s", k, v, want)
			}
			out[k] = v
		}
	}
	if f, h := out["fault"], out["heal"]; f != nil && f == h {
		return nil, usagef("sim: fault=%s and heal=%s contradict each other", f, h)
	}
	// roomd's own parser has the last word, so visitctl never sends what a
	// simulated room would refuse.
	payload, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode sim control: %w", err)
	}
	if _, err := contract.DecodeSimControl(payload); err != nil {
		return nil, usagef("sim: %v", err)
	}
	return out, nil
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
	payload, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode sim control: %w", err)
	}
	if err := c.Publish(ctx, topics.SimSet(), payload, false); err != nil {
		return err
	}
	if g.json {
		fmt.Fprintf(stdout, "%s\n", mustJSON(map[string]any{"room": room, "topic": topics.SimSet(), "sent": set}))
	} else {
		fmt.Fprintf(stdout, "%s: sent %s to %s\n", room, payload, topics.SimSet())
	}
	return nil
}
