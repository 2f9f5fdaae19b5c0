package broker

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainGuard serialises the broker's writes of retained messages with its
// scans of them. mochi-mqtt (v2.7.9) stores a retained message's topic in
// its topic tree under the node's lock, but a SUBSCRIBE reads the tree for
// the retained messages to send without taking it: a retained publish on
// one connection and a subscription on another race. The guard holds one
// mutex from the moment such a packet is read until it has been processed,
// and around a retained Last Will.
//
// A packet that fails mochi's validation is never processed and never
// reaches OnPacketProcessed, so the guard validates it the same way first
// and does not take the mutex for it.
type retainGuard struct {
	mqtt.HookBase
	topicAliasMax uint16

	mu    sync.Mutex
	held  sync.Map // *mqtt.Client → struct{}: holds mu for its packet in process
	wills sync.Map // *mqtt.Client → struct{}: holds mu for its will being sent
}

func (g *retainGuard) ID() string { return "roomd-retain-guard" }

func (g *retainGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketRead, mqtt.OnPacketProcessed, mqtt.OnWill, mqtt.OnWillSent}, []byte{b})
}

// guarded reports whether processing pk writes or scans retained messages.
func (g *retainGuard) guarded(pk packets.Packet) bool {
	switch pk.FixedHeader.Type {
	case packets.Subscribe:
		return pk.SubscribeValidate() == packets.CodeSuccess
	case packets.Publish:
		return pk.FixedHeader.Retain && pk.PublishValidate(g.topicAliasMax) == packets.CodeSuccess
	}
	return false
}

func (g *retainGuard) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if g.guarded(pk) {
		g.mu.Lock()
		g.held.Store(cl, struct{}{})
	}
	return pk, nil
}

func (g *retainGuard) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	if _, ok := g.held.LoadAndDelete(cl); ok {
		g.mu.Unlock()
	}
}

func (g *retainGuard) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	// A delayed will is stored and sent later, without OnWillSent here.
	if will.Retain && cl.Properties.Will.WillDelayInterval == 0 {
		g.mu.Lock()
		g.wills.Store(cl, struct{}{})
	}
	return will, nil
}

func (g *retainGuard) OnWillSent(cl *mqtt.Client, _ packets.Packet) {
	if _, ok := g.wills.LoadAndDelete(cl); ok {
		g.mu.Unlock()
	}
}
