package board

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// syncBuffer is a log the test reads while the board writes it.
type syncBuffer struct {
	mu    sync.Mutex
	sb    strings.Builder
	wrote chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// TestBoardSaysWhatTheBrokerRefused: a wrong password is a refused login,
// not a broker out of reach; an identity the broker lets in and withholds
// everything from is told, once, that it may not be allowed to read.
func TestBoardSaysWhatTheBrokerRefused(t *testing.T) {
	testtier.Slow(t, "runs mosquitto")
	users := map[string]string{"guard-station": "pw-station", "ghost": "pw-ghost"}
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true, Users: users, ACLFile: mqtttest.SiteACL(t, nil)})
	run := func(user, pw, want string) {
		t.Helper()
		log := &syncBuffer{wrote: make(chan struct{}, 1)}
		b := New(Options{Broker: mq.URL(), Username: user, Password: pw, TLS: mq.TLSConfig(),
			Logger: slog.New(slog.NewTextHandler(log, nil))})
		b.quietAfter = 500 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		defer func() { cancel(); <-done }()
		deadline := time.After(20 * time.Second)
		for !strings.Contains(log.String(), want) {
			select {
			case <-deadline:
				t.Fatalf("the board's log never said %q:\n%s", want, log.String())
			case <-log.wrote:
			}
		}
		require.NotContains(t, log.String(), "is roomd running")
	}
	run("guard-station", "wrong", `the broker refused the board's login; retrying" username=guard-station`)
	run("ghost", users["ghost"], "nothing under visitrooms/ reached ghost within 500ms: no room has published there yet, or ghost is not allowed to read visitrooms/+/{info,availability,state,reply}")
}
