package broker_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// TestNothingLostWhileASessionIsTakenOver: a client with a persistent
// session (a room) reconnects again and again under its client id while
// another (a guard's board) publishes to it without pause; every message
// reaches it, at least once. A message published at the moment the broker
// copied the old session to the new connection was queued on the orphaned
// session and never sent.
func TestNothingLostWhileASessionIsTakenOver(t *testing.T) {
	nothingLostThroughTakeovers(t, start(t).URL())
}

// TestMosquittoLosesNothingThroughTakeovers holds the shipped broker,
// mosquitto, to the same test: the reference the embedded broker must match.
func TestMosquittoLosesNothingThroughTakeovers(t *testing.T) {
	testtier.Slow(t, "a real mosquitto through some 1,500 session takeovers")
	nothingLostThroughTakeovers(t, mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true}).URL())
}

func nothingLostThroughTakeovers(t *testing.T, url string) {
	var mu sync.Mutex
	got := map[int]bool{}
	handler := func(_ paho.Client, m paho.Message) {
		n, err := strconv.Atoi(string(m.Payload()))
		if err == nil {
			mu.Lock()
			got[n] = true
			mu.Unlock()
		}
	}
	room := func() paho.Client {
		return connect(t, url, "room", func(o *paho.ClientOptions) {
			o.SetCleanSession(false).SetDefaultPublishHandler(handler)
		})
	}
	c := room()
	await(t, c.Subscribe("cmd", 1, handler), "subscribe")

	const n = 3000
	pub := connect(t, url, "board", nil)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			tok := pub.Publish("cmd", 1, false, strconv.Itoa(i))
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				done <- fmt.Errorf("publish %d: %v", i, tok.Error())
				return
			}
		}
		done <- nil
	}()
	takeovers := 0
	for publishing := true; publishing; takeovers++ {
		select {
		case err := <-done:
			require.NoError(t, err)
			publishing = false
		default:
		}
		// A new connection under the same id, the old one still up: the
		// broker takes its session over.
		next := room()
		c.Disconnect(0)
		c = next
	}
	t.Logf("%d takeovers while %d messages were published", takeovers, n)
	lost := func() []int {
		mu.Lock()
		defer mu.Unlock()
		var l []int
		for i := range n {
			if !got[i] {
				l = append(l, i)
			}
		}
		return l
	}
	if !assert.Eventually(t, func() bool { return len(lost()) == 0 }, wait, 10*time.Millisecond) {
		l := lost()
		t.Fatalf("%d of %d messages never reached the client whose session was taken over: %v", len(l), n, l)
	}
}
