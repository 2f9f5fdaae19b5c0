package link

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
)

// usableConn waits until c has a usable connection and returns its epoch.
func usableConn(t *testing.T, c *Client) uint64 {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		epoch, _, up, ok := c.Conn()
		if ok {
			return epoch
		}
		select {
		case <-up:
		case <-deadline:
			t.Fatal("no usable connection in time")
		}
	}
}

// TestPublishIsBoundToItsConnection: a publish meant for a connection that
// was lost fails at once instead of going out on the next connection, and a
// Drop for an old connection leaves the new one alone. Otherwise the head
// of the Publisher's window fails on the old connection while what follows
// it goes out on the new one, and a consumer sees seq 3 before seq 2.
func TestPublishIsBoundToItsConnection(t *testing.T) {
	url := mqtttest.Embedded(t)
	px := mqtttest.StartProxy(t, url)
	topics, err := contract.NewTopics("visitrooms", "room-a")
	require.NoError(t, err)
	c, err := New(Options{Broker: px.URL(), ClientID: "roomd-room-a", Topics: topics,
		MaxReconnectInterval: time.Second, Handler: func(Message) {}}, nil)
	require.NoError(t, err)
	t.Cleanup(c.Abandon)

	first := usableConn(t, c)
	tok := c.Publish(first, topics.Events(), []byte("on the first connection"), false)
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.NoError(t, tok.Error())

	_, lost, _, ok := c.Conn()
	require.True(t, ok)
	px.Cut()
	select {
	case <-lost:
	case <-time.After(waitTimeout):
		t.Fatal("the cut went unnoticed")
	}
	px.Resume()
	second := usableConn(t, c)
	require.Greater(t, second, first)

	tok = c.Publish(first, topics.Events(), []byte("meant for the lost connection"), false)
	require.True(t, tok.WaitTimeout(waitTimeout))
	assert.True(t, errors.Is(tok.Error(), ErrNotConnected), "got %v", tok.Error())

	c.Drop(first, errors.New("a PUBACK missing on the first connection"))
	var epoch uint64
	epoch, _, _, ok = c.Conn()
	assert.True(t, ok, "dropping the old connection ended the new one")
	assert.Equal(t, second, epoch)

	tok = c.Publish(second, topics.Events(), []byte("on the second connection"), false)
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.NoError(t, tok.Error())

	c.Drop(second, errors.New("the broker stopped acknowledging"))
	_, _, _, ok = c.Conn()
	assert.False(t, ok, "Drop of the current connection ends it")
}
