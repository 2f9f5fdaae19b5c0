package roomclient_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/roomclient"
)

// logCatcher counts a logger's messages for the test to wait on.
type logCatcher struct {
	box  *inbox
	msgs map[string]int // guarded by box.mu
}

func (l *logCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCatcher) Handle(_ context.Context, r slog.Record) error {
	l.box.mu.Lock()
	l.msgs[r.Message]++
	l.box.mu.Unlock()
	l.box.poke()
	return nil
}
func (l *logCatcher) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCatcher) WithGroup(string) slog.Handler      { return l }

// refusingBroker speaks just enough MQTT for a client: it grants the first
// connection's subscriptions, and refuses (SUBACK 0x80) the first refusals
// SUBSCRIBEs of every later connection, as a broker whose ACL changed does.
// Mosquitto 2.0 grants any subscription and filters on delivery instead,
// so it cannot play this part.
type refusingBroker struct {
	ln       net.Listener
	refusals int
	conns    atomic.Int32
	mu       sync.Mutex
	current  net.Conn
}

func startRefusingBroker(t *testing.T, refusals int) *refusingBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &refusingBroker{ln: ln, refusals: refusals}
	t.Cleanup(func() { _ = ln.Close(); b.drop() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.current = c
			b.mu.Unlock()
			go b.serve(c, b.conns.Add(1))
		}
	}()
	return b
}

// drop cuts the current connection, as a broker restart does.
func (b *refusingBroker) drop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current != nil {
		_ = b.current.Close()
	}
}

func (b *refusingBroker) serve(c net.Conn, n int32) {
	defer c.Close()
	refused := 0
	for {
		p, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		var out packets.ControlPacket
		switch p := p.(type) {
		case *packets.ConnectPacket:
			out = packets.NewControlPacket(packets.Connack)
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID = p.MessageID
			code := p.Qoss[0]
			if n > 1 && refused < b.refusals {
				refused++
				code = 0x80
			}
			for range p.Topics {
				sa.ReturnCodes = append(sa.ReturnCodes, code)
			}
			out = sa
		case *packets.PingreqPacket:
			out = packets.NewControlPacket(packets.Pingresp)
		case *packets.DisconnectPacket:
			return
		}
		if out != nil {
			if err := out.Write(c); err != nil {
				return
			}
		}
	}
}

// TestRefusedResubscriptionIsNotConnected: after a reconnection the broker
// refuses the streams. The client must not say it is connected again while
// it receives nothing, must keep asking on the same connection, and must
// say so once the broker grants them.
func TestRefusedResubscriptionIsNotConnected(t *testing.T) {
	b := startRefusingBroker(t, 2)
	box := newInbox()
	logs := &logCatcher{box: box, msgs: map[string]int{}}
	var connects, losses atomic.Int32
	c := dial(t, roomclient.Options{Broker: "tcp://" + b.ln.Addr().String(), ClientID: "watcher", CleanSession: true,
		Streams: roomclient.RegistryStreams, Logger: slog.New(logs),
		OnConnect: func() { connects.Add(1); box.poke() },
		OnLost:    func(error) { losses.Add(1); box.poke() }})
	require.True(t, c.Connected())

	b.drop()
	const refused = "subscribe again after reconnecting failed; nothing is received until it succeeds"
	box.until(t, "the first refusal", func() bool { return logs.msgs[refused] == 1 })
	assert.Zero(t, connects.Load(), "not connected again while the broker refuses the streams")
	box.until(t, "connected again once the streams are granted", func() bool { return connects.Load() == 1 })
	box.mu.Lock()
	assert.Equal(t, 2, logs.msgs[refused], "asked until granted")
	assert.Equal(t, 1, logs.msgs["connected to the broker again"])
	box.mu.Unlock()
	assert.Equal(t, int32(2), b.conns.Load(), "the retries were on the same connection")
	assert.Equal(t, int32(1), losses.Load())
}
