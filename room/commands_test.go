package room_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

// TestRoomRefusesSendersOutsideItsConfig: on an open broker (no ACL, where
// anybody may publish any topic) a room with the default config takes the
// booking system's plain cmd topic and the guard station's questions, and
// refuses, with not_authorized, a command from any operator it does not
// name: another room's id, an operator, the guard station acting.
// Nothing refused is applied; a named operator acts.
func TestRoomRefusesSendersOutsideItsConfig(t *testing.T) {
	url := mqtttest.Embedded(t)
	roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-a", Config: func(c *configs.Config) {
		c.Commands = configs.Default().Commands
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := roomclient.Dial(ctx, roomclient.Options{Broker: url, CleanSession: true, RetryEvery: 500 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()

	refused := func(op string, cmd roomclient.Command) {
		t.Helper()
		reply, err := c.SendAs(ctx, "room-a", op, cmd)
		require.NoError(t, err)
		require.False(t, reply.OK, "%s %s was taken", op, cmd.Action)
		assert.Equal(t, string(contract.CodeNotAuthorized), reply.Error.Code, "%s %s", op, cmd.Action)
		assert.Equal(t, op, reply.Operator, "the reply names who sent it")
		assert.Equal(t, cmd.Action, reply.Action)
	}
	refused("room-b", roomclient.StartVisit("v-1", time.Hour))
	refused("room-b", roomclient.GetState())
	refused("room-a", roomclient.EndVisit())
	refused("guard-7", roomclient.StartVisit("v-1", time.Hour))
	refused("guard-station", roomclient.StartVisit("v-1", time.Hour))
	refused("roompager", roomclient.AckAlert("panic-1"))

	reply, err := c.SendAs(ctx, "room-a", "guard-station", roomclient.GetState())
	require.NoError(t, err)
	require.True(t, reply.OK, "%+v", reply.Error)
	assert.Equal(t, "idle", reply.State.Phase, "nothing refused was applied")
	reply, err = c.SendAs(ctx, "room-a", "roompager", roomclient.GetState())
	require.NoError(t, err)
	assert.True(t, reply.OK, "%+v", reply.Error)

	reply, err = c.Send(ctx, "room-a", roomclient.StartVisit("v-1", time.Hour))
	require.NoError(t, err)
	require.True(t, reply.OK, "the booking system's plain cmd: %+v", reply.Error)
	assert.Equal(t, "in_visit", reply.State.Phase)
}

// TestRoomTakesTheOperatorsItNames: a named operator (or one matching a
// pattern) may act; a reader may only ask.
func TestRoomTakesTheOperatorsItNames(t *testing.T) {
	url := mqtttest.Embedded(t)
	roomtest.Start(t, roomtest.Options{Broker: url, Room: "room-a", Config: func(c *configs.Config) {
		c.Commands = configs.Commands{Booking: false, Operators: []string{"guard-*"}, Readers: []string{"console-1"}}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := roomclient.Dial(ctx, roomclient.Options{Broker: url, CleanSession: true, RetryEvery: 500 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()

	reply, err := c.Send(ctx, "room-a", roomclient.StartVisit("v-1", time.Hour))
	require.NoError(t, err)
	require.False(t, reply.OK)
	assert.Equal(t, string(contract.CodeNotAuthorized), reply.Error.Code, "commands.booking is false")

	reply, err = c.SendAs(ctx, "room-a", "guard-7", roomclient.StartVisit("v-1", time.Hour))
	require.NoError(t, err)
	require.True(t, reply.OK, "%+v", reply.Error)
	reply, err = c.SendAs(ctx, "room-a", "console-1", roomclient.EndVisit())
	require.NoError(t, err)
	require.False(t, reply.OK)
	assert.Equal(t, string(contract.CodeNotAuthorized), reply.Error.Code)
	assert.Contains(t, reply.Error.Message, "may only ask")
	reply, err = c.SendAs(ctx, "room-a", "console-1", roomclient.GetState())
	require.NoError(t, err)
	require.True(t, reply.OK, "%+v", reply.Error)
	assert.Equal(t, "in_visit", reply.State.Phase)
}
