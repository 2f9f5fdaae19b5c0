package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// ANSI sequences of the live board.
const (
	clearHome = "\x1b[H\x1b[2J"
	bel       = "\a"
)

// watchEvent is what the MQTT goroutines tell the watch loop.
type watchEvent struct {
	msg       *inbound
	connected bool // a reconnection with its subscriptions granted
	lost      bool
	err       error
}

// runWatch is "visitctl watch": the live board of every room under base.
func runWatch(ctx context.Context, g globals, args []string, stdout io.Writer) error {
	fs := newFlags("watch", &g)
	once := fs.Bool("once", false, "print one snapshot after --settle and exit")
	heartbeat := fs.Duration("heartbeat", 30*time.Second, "the rooms' state heartbeat (mqtt.heartbeat); no state for two of them is STALE")
	settle := fs.Duration("settle", 500*time.Millisecond, "with --once: quiet time after the last message before printing")
	pos, help, err := parseArgs("watch", fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("watch takes no arguments besides flags, got %q", pos)
	}
	if *heartbeat <= 0 {
		return usagef("watch: --heartbeat must be positive, got %s", *heartbeat)
	}
	if *settle <= 0 {
		return usagef("watch: --settle must be positive, got %s", *settle)
	}
	if err := g.check(); err != nil {
		return err
	}
	o, err := g.clientOptions()
	if err != nil {
		return err
	}

	events := make(chan watchEvent, 1024)
	send := func(e watchEvent) {
		select {
		case events <- e:
		case <-ctx.Done():
		}
	}
	o.Streams = roomclient.States | roomclient.Availabilities | roomclient.Alerts
	o.OnMessage = func(m roomclient.Message) {
		send(watchEvent{msg: &inbound{topic: m.Topic, payload: m.Payload, retained: m.Retained}})
	}
	// The live board reconnects by itself (and subscribes again: the
	// session is clean); --once does not.
	o.NoReconnect = *once
	o.OnConnect = func() { send(watchEvent{connected: true}) }
	o.OnLost = func(error) { send(watchEvent{lost: true}) }
	c, err := dial(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer c.Close()

	b := newBoard(g.base, *heartbeat)
	b.user = g.username
	if *once {
		return watchOnce(ctx, g, b, events, *settle, stdout)
	}

	width, tty := terminalWidth(stdout)
	draw := func(bell bool) error {
		now := wallclock.Now()
		var out string
		switch {
		case g.json:
			out = string(mustJSON(b.snapshot(now))) + "\n"
		case tty:
			width, _ = terminalWidth(stdout)
			out = clearHome + render(b, now, width)
			if bell {
				out += bel
			}
		default:
			out = render(b, now, width) + "\n"
		}
		_, err := io.WriteString(stdout, out)
		return err
	}
	if err := draw(false); err != nil {
		return fmt.Errorf("write board: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-events:
			bell := false
			switch {
			case e.err != nil:
				return e.err
			case e.connected:
				b.connected = true
			case e.lost:
				b.connected = false
			case e.msg != nil:
				bell = b.apply(*e.msg, wallclock.Now())
			}
			if err := draw(bell); err != nil {
				return fmt.Errorf("write board: %w", err)
			}
		case <-tick.C:
			// Countdowns and ages move every second; only a terminal is redrawn.
			if tty && !g.json {
				if err := draw(false); err != nil {
					return fmt.Errorf("write board: %w", err)
				}
			}
		}
	}
}

// watchOnce prints one snapshot once no message came for settle (at most
// the timeout after subscribing).
func watchOnce(ctx context.Context, g globals, b *board, events <-chan watchEvent, settle time.Duration, stdout io.Writer) error {
	quiet := time.NewTimer(settle)
	defer quiet.Stop()
	limit := time.NewTimer(g.timeout)
	defer limit.Stop()
loop:
	for {
		select {
		case e := <-events:
			if e.err != nil {
				return e.err
			}
			if e.msg != nil {
				b.apply(*e.msg, wallclock.Now())
				quiet.Reset(settle)
			}
		case <-quiet.C:
			break loop
		case <-limit.C:
			break loop
		case <-ctx.Done():
			return nil
		}
	}
	now := wallclock.Now()
	var err error
	if g.json {
		_, err = fmt.Fprintf(stdout, "%s\n", mustJSON(b.snapshot(now)))
	} else {
		_, err = io.WriteString(stdout, render(b, now, 0))
	}
	return err
}
