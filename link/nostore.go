package link

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// noStore is a paho store that keeps nothing. Delivery guarantees come from
// the outbox: an entry stays there until its PUBACK, and the sender replays
// from the first unacknowledged entry after every connect. Incoming QoS 1
// commands need no store: paho acknowledges them after the handler has
// queued them, and a redelivery is answered from the reply cache.
type noStore struct{}

var _ mqtt.Store = noStore{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
