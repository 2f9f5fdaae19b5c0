package room_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/homeassistant"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

// haWatcher is Home Assistant as far as the broker can tell: it reads its
// discovery prefix and announces itself on {prefix}/status.
func haWatcher(t *testing.T, url, prefix string) (*roomclient.Client, chan roomclient.Message) {
	t.Helper()
	ch := make(chan roomclient.Message, 64)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := roomclient.Dial(ctx, roomclient.Options{Broker: url, CleanSession: true})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.NoError(t, c.Subscribe(ctx, prefix+"/device/#", func(m roomclient.Message) { ch <- m }))
	return c, ch
}

func nextDiscovery(t *testing.T, ch <-chan roomclient.Message) roomclient.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no discovery message")
		return roomclient.Message{}
	}
}

func TestHomeAssistantDiscovery(t *testing.T) {
	url := mqtttest.Embedded(t)
	ha, ch := haWatcher(t, url, "ha")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// The room's availability marks its connections: a reconnection
	// publishes every retained topic again, the discovery too.
	require.NoError(t, ha.Subscribe(ctx, "visitrooms/room-7/availability", func(m roomclient.Message) { ch <- m }))
	r := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-7", Options: func(o *room.Options) {
		o.Version = "1.4.0"
		o.Config.HomeAssistant = configs.HomeAssistant{Enabled: true, DiscoveryPrefix: "ha"}
	}})
	topics, err := contract.NewTopics("visitrooms", "room-7")
	require.NoError(t, err)
	want := homeassistant.Payload(topics, "1.4.0")

	for m := nextDiscovery(t, ch); ; m = nextDiscovery(t, ch) {
		if m.Topic != "visitrooms/room-7/availability" {
			assert.Equal(t, "ha/device/roomd_room-7/config", m.Topic)
			assert.Equal(t, string(want), string(m.Payload))
			break
		}
	}

	// A round trip through the room from the watcher's own connection: what
	// the room queued before its reply has reached the watcher. It reports
	// the discoveries received, and false if the room reconnected meanwhile.
	roundTrip := func() (discoveries int, steady bool) {
		t.Helper()
		reply, err := ha.Send(ctx, "room-7", roomclient.GetState())
		require.NoError(t, err)
		require.NoError(t, reply.Err())
		steady = true
		for {
			select {
			case m := <-ch:
				if m.Topic == "visitrooms/room-7/availability" {
					steady = false
					continue
				}
				assert.Equal(t, string(want), string(m.Payload))
				discoveries++
			default:
				return discoveries, steady
			}
		}
	}
	// Home Assistant going offline changes nothing; its birth message
	// (online, after a restart that may have lost the discovery) has the
	// room send it again.
	checked := false
	for attempt := 0; attempt < 3 && !checked; attempt++ {
		roundTrip()
		roundTrip() // a reconnection's retained topics are out
		require.NoError(t, ha.Publish(ctx, "ha/status", []byte("offline"), false))
		quiet, steady1 := roundTrip()
		require.NoError(t, ha.Publish(ctx, "ha/status", []byte("online"), false))
		sent, steady2 := roundTrip()
		if !steady1 || !steady2 {
			t.Logf("the room reconnected during attempt %d; again", attempt+1)
			continue
		}
		assert.Equal(t, 0, quiet, "offline: nothing sent")
		assert.Equal(t, 1, sent, "online: the discovery again")
		checked = true
	}
	require.True(t, checked, "the room kept reconnecting")
	r.Stop()

	// A new subscriber finds the discovery retained.
	_, later := haWatcher(t, url, "ha")
	m := nextDiscovery(t, later)
	assert.True(t, m.Retained)
	assert.Equal(t, string(want), string(m.Payload))
}

func TestHomeAssistantOffByDefault(t *testing.T) {
	url := mqtttest.Embedded(t)
	ha, ch := haWatcher(t, url, "homeassistant")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	avail := make(chan string, 8)
	require.NoError(t, ha.Subscribe(ctx, "visitrooms/room-8/availability", func(m roomclient.Message) { avail <- string(m.Payload) }))
	r := roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-8"})
	c, err := roomclient.Dial(ctx, roomclient.Options{Broker: url, CleanSession: true})
	require.NoError(t, err)
	defer c.Close()
	reply, err := c.Send(ctx, "room-8", roomclient.GetState())
	require.NoError(t, err)
	require.NoError(t, reply.Err())
	require.NoError(t, ha.Publish(ctx, "homeassistant/status", []byte("online"), false))
	// The room's last word is offline; anything it published before
	// reached the same connection first.
	r.Stop()
	for v := ""; v != "offline"; {
		select {
		case v = <-avail:
		case <-ctx.Done():
			t.Fatal("no offline")
		}
	}
	select {
	case m := <-ch:
		t.Fatalf("discovery published without homeassistant.enabled: %s", m.Topic)
	default:
	}
}
