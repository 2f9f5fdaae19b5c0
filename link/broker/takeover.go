package broker

import (
	"bytes"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/roomd/roomd/wallclock"
)

// takeoverSlack is added to the write timeout to bound how long a takeover
// holds publishes back: the new connection is in the client map
// microseconds after the session was copied, unless mochi's DISCONNECT to
// the old connection waits out a stuck socket first (its write timeout).
const takeoverSlack = 2 * time.Second

// takeoverGuard keeps a message from being lost while a persistent session
// is taken over (a room reconnecting, or restarting, under its client id).
// mochi-mqtt (v2.7.9) copies the old session's in-flight messages to the
// new connection and only then puts the new connection in its client map;
// a publish processed meanwhile finds the old, orphaned session there and
// queues its message on it, where nothing ever sends it: a guard's command
// published while the room reconnects was lost. The guard makes the two
// exclusive: each publish holds a read lock from the moment it is read
// until it has been processed, and a takeover holds the write lock from
// OnSessionEstablish (just before the copy) until the new connection is in
// the client map.
//
// As with retainGuard, a PUBLISH that fails mochi's validation is never
// processed and never reaches OnPacketProcessed, so the guard validates it
// the same way first and does not take the lock for it.
type takeoverGuard struct {
	mqtt.HookBase
	clients       *mqtt.Clients
	topicAliasMax uint16
	bound         time.Duration // how long a takeover holds publishes back at most

	mu   sync.RWMutex
	held sync.Map // *mqtt.Client → struct{}: holds a read lock for its packet in process
}

func newTakeoverGuard(clients *mqtt.Clients, topicAliasMax uint16, writeTimeout time.Duration) *takeoverGuard {
	return &takeoverGuard{clients: clients, topicAliasMax: topicAliasMax, bound: writeTimeout + takeoverSlack}
}

func (g *takeoverGuard) ID() string { return "roomd-takeover-guard" }

func (g *takeoverGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketRead, mqtt.OnPacketProcessed, mqtt.OnSessionEstablish}, []byte{b})
}

func (g *takeoverGuard) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && pk.PublishValidate(g.topicAliasMax) == packets.CodeSuccess {
		g.mu.RLock()
		g.held.Store(cl, struct{}{})
	}
	return pk, nil
}

func (g *takeoverGuard) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	if _, ok := g.held.LoadAndDelete(cl); ok {
		g.mu.RUnlock()
	}
}

// OnSessionEstablish runs just before mochi takes over an existing session
// of cl's client id (if there is one) and adds cl to its client map.
func (g *takeoverGuard) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if _, ok := g.clients.Get(cl.ID); !ok {
		return // a new session: nothing to copy, nothing to lose
	}
	g.mu.Lock()
	go func() {
		defer g.mu.Unlock()
		deadline := wallclock.Now().Add(g.bound)
		for wallclock.Now().Before(deadline) {
			if now, ok := g.clients.Get(cl.ID); (ok && now == cl) || cl.Closed() {
				return // in the map, or gone: nothing left to hold back for
			}
			time.Sleep(20 * time.Microsecond)
		}
	}()
}
