package broker_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/broker"
	"github.com/roomd/roomd/wallclock"
)

// A cut cable closes its connections at once and refuses new ones until
// restored.
func TestCableCutAndRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c := broker.NewCable(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx)
	require.NoError(t, err)
	server := <-accepted
	c.Cut()
	assert.True(t, c.IsCut())
	require.NoError(t, server.SetReadDeadline(wallclock.Deadline(5*time.Second)))
	_, err = server.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the broker sees the connection end")
	_, err = c.Dial(ctx)
	assert.ErrorIs(t, err, broker.ErrCableCut)
	_, err = conn.Write([]byte("x"))
	assert.Error(t, err)
	c.Restore()
	conn, err = c.Dial(ctx)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}
