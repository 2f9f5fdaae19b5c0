package mqtttest_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialProxy(t *testing.T, p *mqtttest.Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), wait)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(wallclock.Deadline(wait)))
	return c, bufio.NewReader(c)
}

func echo(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	_, err := io.WriteString(c, line+"\n")
	require.NoError(t, err)
	got, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, line+"\n", got)
}

func TestProxyForwardsCutsAndResumes(t *testing.T) {
	t.Parallel()
	p := mqtttest.StartProxy(t, "tcp://"+echoServer(t))
	c, r := dialProxy(t, p)
	echo(t, c, r, "before the cut")
	require.Equal(t, 1, p.Accepted())

	p.Cut()
	require.True(t, p.Down())
	// The forwarded connection ends at once, without waiting for a timeout.
	_, err := r.ReadString('\n')
	require.ErrorIs(t, err, io.EOF)

	// While cut, a new connection is accepted and closed unanswered.
	c2, r2 := dialProxy(t, p)
	_, _ = io.WriteString(c2, "lost\n")
	_, err = r2.ReadString('\n')
	require.Error(t, err)
	require.Equal(t, 1, p.Accepted(), "refused connections are not forwarded")
	require.Equal(t, 1, p.Refused())

	p.Resume()
	require.False(t, p.Down())
	c3, r3 := dialProxy(t, p)
	echo(t, c3, r3, "after the cut")
	require.Equal(t, 2, p.Accepted())
}

func TestProxyDelayKeepsOrderAndAddsLatency(t *testing.T) {
	t.Parallel()
	p := mqtttest.StartProxy(t, echoServer(t))
	const d = 30 * time.Millisecond
	p.SetDelay(d)
	c, r := dialProxy(t, p)
	start := wallclock.Now()
	lines := []string{"one", "two", "three", strings.Repeat("x", 100<<10)}
	for _, l := range lines {
		_, err := io.WriteString(c, l+"\n")
		require.NoError(t, err)
	}
	for _, l := range lines {
		got, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, l+"\n", got)
	}
	// Bytes are held for d on the way there and d on the way back.
	require.GreaterOrEqual(t, wallclock.Since(start), 2*d)
}

func TestProxyCloseEndsConnectionsAndListener(t *testing.T) {
	t.Parallel()
	p, err := mqtttest.NewProxy(echoServer(t))
	require.NoError(t, err)
	c, r := dialProxy(t, p)
	echo(t, c, r, "hello")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice")
	_, err = r.ReadString('\n')
	require.Error(t, err)
	// No one listens after Close; or, if another test's listener took the
	// freed port meanwhile, it is not the proxy: nothing comes back echoed.
	after, err := net.DialTimeout("tcp", p.Addr(), wait)
	if err == nil {
		defer after.Close()
		_, werr := after.Write([]byte("hello\n"))
		require.NoError(t, after.SetReadDeadline(wallclock.Now().Add(200*time.Millisecond)))
		got, _ := bufio.NewReader(after).ReadString('\n')
		require.True(t, werr != nil || got != "hello\n", "the closed proxy still forwards to its target")
	}
}

func TestProxyRefusesABadTarget(t *testing.T) {
	_, err := mqtttest.NewProxy("no-port")
	require.ErrorContains(t, err, `proxy target "no-port"`)
}
