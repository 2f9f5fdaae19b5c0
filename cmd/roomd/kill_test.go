package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// TestProcessKilledAtRandomMoments runs the roomd binary against a real
// mosquitto while a driver opens and closes the door, presses and releases
// the panic and sends commands, and kills roomd with SIGKILL at random
// moments, twenty times, restarting it each time. A consumer with a
// persistent session keeps every record by (room, epoch, seq), as the
// contract asks. In the end every record in the journal reached the
// consumer, no key ever carried two different records, and seq has no gap
// within an epoch.
func TestProcessKilledAtRandomMoments(t *testing.T) {
	bin := buildRoomd(t)
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	const base, room = "visitrooms", "room-k"
	stateDir := t.TempDir()
	cfg := writeSimConfig(t, m.URL(), room, stateDir)
	seed := uint64(wallclock.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	c := newKeyedConsumer(t, m.URL(), base+"/"+room+"/#")

	// The driver: sensors and commands, all the time.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		drv := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("driver").SetCleanSession(true).
			SetAutoReconnect(true).SetConnectRetry(true))
		drv.Connect().Wait()
		defer drv.Disconnect(100)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			var topic, payload string
			switch i % 5 {
			case 0:
				topic, payload = base+"/"+room+"/sim/set", `{"door":"open"}`
			case 1:
				topic, payload = base+"/"+room+"/sim/set", `{"door":"closed"}`
			case 2:
				topic, payload = base+"/"+room+"/sim/set", fmt.Sprintf(`{"panic":%v}`, i%10 == 2)
			case 3:
				topic, payload = base+"/"+room+"/cmd/guard-1", fmt.Sprintf(`{"request_id":"k%d","action":"set_service","in_service":%v,"expires_at":%q}`,
					i, i%10 == 3, contract.FormatTime(wallclock.Now().Add(time.Minute)))
			default:
				topic, payload = base+"/"+room+"/cmd", fmt.Sprintf(`{"request_id":"g%d","action":"get_state"}`, i)
			}
			drv.Publish(topic, 1, false, payload)
		}
	}()

	for k := range 20 {
		p, logs := startProcess(t, bin, cfg)
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond) // the random moment
		require.NoError(t, p.Process.Signal(syscall.SIGKILL), "kill %d", k)
		_ = p.Wait()
		if strings.Contains(logs.String(), "panic:") {
			t.Fatalf("roomd panicked before kill %d:\n%s", k, logs.String())
		}
	}
	close(stop)
	wg.Wait()
	before := c.count()
	p, logs := startProcess(t, bin, cfg)
	// Up: it runs its room, and announced its resume. A record reaching
	// the consumer is not enough: it may be an earlier process's, and a
	// SIGTERM that comes before the new process's main has set up its
	// handler (a slow start under the race detector) kills it instead.
	logs.waitFor(t, "room running", 30*time.Second)
	c.waitFor(t, func() bool { return c.count() > before })
	// A clean stop delivers what the kills left (within the shutdown
	// timeout), then publishes offline.
	require.NoError(t, p.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "%s", logs.String())

	// Everything the journal holds reached the consumer.
	j, err := journal.Open(filepath.Join(stateDir, "journal"), journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	require.False(t, j.Recovered().Damaged(), "kills never damage the journal: %v", j.Recovered().Damage)
	bySeq := map[journal.Epoch][]uint64{}
	for lsn := j.First(); lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		require.NoError(t, err)
		for _, r := range e.Records {
			bySeq[e.Epoch] = append(bySeq[e.Epoch], r.Seq)
		}
	}
	c.waitFor(t, func() bool {
		for ep, seqs := range bySeq {
			for _, s := range seqs {
				if !c.has(ep.String(), s) {
					return false
				}
			}
		}
		return true
	})
	for ep, seqs := range bySeq {
		for i := 1; i < len(seqs); i++ {
			assert.Equal(t, seqs[i-1]+1, seqs[i], "epoch %s: no gap in seq", ep)
		}
	}
	t.Logf("%d records in %d epoch(s) after 20 kills; %d arrived twice (at least once)", c.count(), len(bySeq), c.duplicates())
}

// keyedConsumer keeps records by (epoch, seq) and fails the test if two
// different records arrive under one key.
type keyedConsumer struct {
	t    *testing.T
	mu   sync.Mutex
	keys map[string]string
	dups int
	wake chan struct{}
}

func newKeyedConsumer(t *testing.T, url, filter string) *keyedConsumer {
	t.Helper()
	c := &keyedConsumer{t: t, keys: map[string]string{}, wake: make(chan struct{}, 1)}
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("consumer-k").SetCleanSession(false).
		SetAutoReconnect(true).SetOrderMatters(true))
	tok := cli.Connect()
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	tok = cli.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if !strings.HasSuffix(m.Topic(), "/events") {
			return
		}
		var e contract.EventMessage
		if err := json.Unmarshal(m.Payload(), &e); err != nil {
			t.Errorf("unreadable event: %s", m.Payload())
			return
		}
		key := fmt.Sprintf("%s/%d", e.Epoch, e.Seq)
		c.mu.Lock()
		defer c.mu.Unlock()
		if prev, ok := c.keys[key]; ok {
			if prev != string(m.Payload()) {
				t.Errorf("two different records under %s:\n  %s\n  %s", key, prev, m.Payload())
			}
			c.dups++
			return
		}
		c.keys[key] = string(m.Payload())
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { cli.Disconnect(100) })
	return c
}

func (c *keyedConsumer) has(epoch string, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[fmt.Sprintf("%s/%d", epoch, seq)]
	return ok
}

func (c *keyedConsumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

func (c *keyedConsumer) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

func (c *keyedConsumer) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("the consumer did not get every record within 30 s (%d so far)", c.count())
		}
	}
}
