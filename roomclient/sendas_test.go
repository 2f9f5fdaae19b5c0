package roomclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

// A console that authenticates its operators sends as each of them under
// one broker identity: the room records each operator as by, each reply
// reaches the Send that waits for it, and the same request id sent as two
// operators is two commands.
func TestSendAsRecordsEachOperator(t *testing.T) {
	url := mqtttest.Embedded(t)
	box := newInbox()
	station := dial(t, roomclient.Options{Broker: url, Username: "guard-station", Operator: "guard-station",
		Streams: roomclient.RegistryStreams, OnRecord: box.record})
	roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-1"})

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	reply, err := station.SendAs(ctx, "room-1", "", roomclient.StartVisit("v-1", time.Hour))
	require.NoError(t, err)
	require.NoError(t, reply.Err())
	assert.Empty(t, reply.Operator)

	same := "same-id-for-both"
	for _, op := range []string{"guard-7", "guard-8"} {
		reply, err := station.SendAs(ctx, "room-1", op, roomclient.ExtendVisit(5*time.Minute).WithRequestID(same))
		require.NoError(t, err)
		require.NoError(t, reply.Err(), op)
		assert.Equal(t, op, reply.Operator)
	}
	box.until(t, "two extensions", func() bool { return len(box.recordsOf("visit_extended")) == 2 })
	box.mu.Lock()
	ext := box.recordsOf("visit_extended")
	assert.Equal(t, "guard-7", ext[0].By)
	assert.Equal(t, "guard-8", ext[1].By)
	box.mu.Unlock()

	_, err = station.SendAs(ctx, "room-1", "on_site", roomclient.EndVisit())
	require.ErrorContains(t, err, `operator "on_site"`)
	_, err = station.SendAs(ctx, "room-1", "a/b", roomclient.EndVisit())
	require.ErrorContains(t, err, `operator "a/b"`)
}
