package link

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// waitTimeout bounds every wait in these tests.
// waitTimeout bounds a wait that only a failing test reaches; generous,
// because CI runs every package at once under the race detector.
const waitTimeout = 60 * time.Second

// t0 is where every room of these tests starts its time axis: the wall
// clock when the test binary started, so that the axis, the edge (which
// judges expires_at) and the journal (which ages entries for its retention)
// agree at the start whatever the date of the run; a test moves the axis
// alone with advance.
var t0 = wallclock.Now().UTC().Truncate(time.Second)

func testPolicy() controller.Policy {
	return controller.Policy{
		Name:              "test",
		MaxDuration:       2 * time.Hour,
		Warnings:          []time.Duration{10 * time.Minute},
		EscalateAfter:     5 * time.Minute,
		RepeatEvery:       5 * time.Minute,
		ReannounceAfter:   5 * time.Minute,
		LockGrace:         10 * time.Second,
		VacateTimeout:     5 * time.Minute,
		WelfareCheckEvery: 45 * time.Minute,
		PanicReset:        controller.PanicResetAck,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// roomOpts describes a room under test.
type roomOpts struct {
	room     string
	url      string
	dir      string // the journal's directory; a temp dir if empty
	policy   *controller.Policy
	user, pw string
	queue    int  // the loop's command queue (default 64)
	noLoop   bool // do not read commands (to fill the queue)
	noWait   bool // do not wait for the subscription (broker down)
	tls      *tls.Config
	clientID string
	pub      func(*PublisherOptions)
	journal  journal.Options
	rate     RateLimit // the edge's rate limit; zero: the default
}

// room glues a controller to the link the way roomd does: one goroutine
// owns the controller, steps commands from the edge and functions from the
// test, and appends every step to a real journal that the Publisher follows.
// The controller's time is the test's (r.now, from t0); the edge checks
// expires_at against the wall clock.
type room struct {
	t     testing.TB
	name  string
	dir   string
	j     *journal.Journal
	pub   *Publisher
	edge  *Edge
	c     *Client
	ctrl  *controller.Controller
	cmds  chan submitted
	steps chan func()
	done  chan struct{}
	now   time.Time    // the loop's time; setNow publishes it to nowNS
	nowNS atomic.Int64 // for the publisher's clock, read on its goroutine
	fault chan controller.Fault
}

// setNow sets the room's time (on the loop goroutine, or before it runs).
func (r *room) setNow(t time.Time) {
	r.now = t
	r.nowNS.Store(t.UnixNano())
}

type submitted struct {
	cmd controller.Command
	op  string
}

func startRoom(t testing.TB, o roomOpts, mutate ...func(*Options)) *room {
	t.Helper()
	if o.room == "" {
		o.room = "room-a"
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.clientID == "" {
		o.clientID = "roomd-" + o.room
	}
	if o.queue == 0 {
		o.queue = 64
	}
	p := testPolicy()
	if o.policy != nil {
		p = *o.policy
	}
	j, err := journal.Open(o.dir, o.journal)
	require.NoError(t, err)
	topics, err := contract.NewTopics("", o.room)
	require.NoError(t, err)
	r := &room{t: t, name: o.room, dir: o.dir, j: j, cmds: make(chan submitted, o.queue), steps: make(chan func()),
		done: make(chan struct{}), now: t0, fault: make(chan controller.Fault, 64)}
	var client *Client
	r.setNow(t0)
	po := PublisherOptions{Room: o.room, Topics: topics, Journal: j, Conn: lazyConn{&client}, Now: func() time.Time { return time.Unix(0, r.nowNS.Load()).UTC() },
		Heartbeat: time.Hour, PublishTimeout: 3 * time.Second, Faults: func(f controller.Fault) { r.fault <- f },
		Logger: testLogger(t)}
	if o.pub != nil {
		o.pub(&po)
	}
	r.pub, err = NewPublisher(po)
	require.NoError(t, err)
	r.edge = NewEdge(EdgeOptions{Room: o.room, Topics: topics, Now: wallclock.Now, Publisher: r.pub, Logger: testLogger(t), Rate: o.rate,
		Submit: func(c controller.Command, op string) bool {
			select {
			case r.cmds <- submitted{c, op}:
				return true
			default:
				return false
			}
		}})
	opts := Options{
		Broker:    o.url,
		ClientID:  o.clientID,
		TLS:       o.tls,
		Username:  o.user,
		Password:  o.pw,
		Topics:    topics,
		Keepalive: 2 * time.Second,
		Handler:   r.edge.Handle,
	}
	for _, m := range mutate {
		m(&opts)
	}
	client, err = New(opts, testLogger(t))
	require.NoError(t, err)
	r.c = client
	var acts controller.Ready
	if snap, at := j.Latest(); snap != nil {
		r.setNow(at)
		r.ctrl, acts, err = controller.Restore(p, *snap, r.now)
	} else {
		r.ctrl, acts, err = controller.New(p, r.now)
	}
	require.NoError(t, err)
	r.apply(acts)
	go r.pub.Run()
	go r.loop(o.noLoop)
	t.Cleanup(func() { r.stop(true) })
	if !o.noWait {
		select {
		case <-client.subscribed:
		case <-time.After(waitTimeout):
			t.Fatalf("room %s did not subscribe within %s", o.room, waitTimeout)
		}
	}
	return r
}

// lazyConn lets the publisher be built before its client.
type lazyConn struct{ c **Client }

func (l lazyConn) Conn() (uint64, <-chan struct{}, <-chan struct{}, bool) { return (*l.c).Conn() }
func (l lazyConn) Drop(err error)                                         { (*l.c).Drop(err) }
func (l lazyConn) Publish(topic string, payload []byte, retained bool) mqtt.Token {
	return (*l.c).Publish(topic, payload, retained)
}

var stopped sync.Map

// snapshot returns the controller's state.
func (r *room) snapshot() controller.Snapshot {
	var s controller.Snapshot
	r.do(func() { s = r.ctrl.Snapshot() })
	return s
}

// lastSeq returns the seq of the latest record.
func (r *room) lastSeq() uint64 {
	var s uint64
	r.do(func() { s = r.ctrl.State().Seq })
	return s
}

// stop ends the room: cleanly (deliver, offline, close) or as a crash.
func (r *room) stop(clean bool) {
	if _, dup := stopped.LoadOrStore(r, true); dup {
		return
	}
	close(r.steps)
	<-r.done
	if clean {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.pub.Flush(ctx)
		r.pub.Close()
		_ = r.c.Close(ctx)
		cancel()
		_ = r.j.Close()
	} else {
		r.pub.Close()
		r.c.Abandon()
		r.j.Abandon()
	}
}

func (r *room) loop(noCommands bool) {
	defer close(r.done)
	cmds := r.cmds
	if noCommands {
		cmds = nil
	}
	for {
		select {
		case s := <-cmds:
			s.cmd.At, s.cmd.By = r.now, s.op
			r.apply(r.ctrl.Step(s.cmd))
		case f, ok := <-r.steps:
			if !ok {
				return
			}
			f()
		case f := <-r.fault:
			f.At = r.now
			r.apply(r.ctrl.Step(f))
		}
	}
}

// apply appends the step's entry to the journal, as the daemon does.
func (r *room) apply(acts controller.Ready) {
	e := journal.EntryOf(r.ctrl, acts)
	if !e.Empty() {
		require.NoError(r.t, r.j.Append(e))
	}
}

// do runs f on the room's goroutine.
func (r *room) do(f func()) {
	done := make(chan struct{})
	select {
	case r.steps <- func() { f(); close(done) }:
	case <-time.After(waitTimeout):
		r.t.Fatalf("room loop not responding")
	}
	<-done
}

// input sets an input at the current time.
func (r *room) input(in controller.Input, l controller.Level) {
	r.do(func() { r.apply(r.ctrl.Step(controller.InputChanged{At: r.now, Input: in, Level: l})) })
}

// advance moves time forward by d and ticks.
func (r *room) advance(d time.Duration) {
	r.do(func() {
		r.setNow(r.now.Add(d))
		r.apply(r.ctrl.Step(controller.Tick{At: r.now}))
	})
}

func (r *room) feedback(o controller.Output, follows bool) {
	r.do(func() {
		r.apply(r.ctrl.Step(controller.FeedbackChanged{At: r.now, Output: o, Follows: follows, Detail: "test"}))
	})
}

func (r *room) raise(source string, active bool) {
	r.do(func() {
		r.apply(r.ctrl.Step(controller.Fault{At: r.now, Source: source, Active: active, Detail: "test", Severity: controller.SeverityCritical}))
	})
}

func (r *room) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(r.t, r.pub.Flush(ctx))
}

// exp is the expires_at of the tests' commands that change a room: half an
// hour from now, computed for each command, so that a command sent late in
// a long run is as fresh as the first. No reply or record echoes it.
func exp() string { return contract.FormatTime(wallclock.Now().Add(30 * time.Minute)) }

// observer is a guard console or booking system: a plain paho client
// collecting every message under a filter.
type observer struct {
	t    testing.TB
	cli  mqtt.Client
	ch   chan obsMsg
	held []obsMsg
}

type obsMsg struct {
	Topic    string
	Payload  string
	Retained bool
}

type observerOpts struct {
	clientID   string // persistent session if set
	user, pw   string
	filter     string
	configured func(*mqtt.ClientOptions)
}

func observe(t testing.TB, url string, o observerOpts) *observer {
	t.Helper()
	if o.filter == "" {
		o.filter = "visitrooms/#"
	}
	ob := &observer{t: t, ch: make(chan obsMsg, 10000)}
	handler := func(_ mqtt.Client, m mqtt.Message) {
		ob.ch <- obsMsg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()}
	}
	mo := mqtt.NewClientOptions().AddBroker(url).SetProtocolVersion(4).
		SetUsername(o.user).SetPassword(o.pw).
		SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetOrderMatters(true).
		SetDefaultPublishHandler(handler)
	if o.clientID != "" {
		mo.SetClientID(o.clientID).SetCleanSession(false)
	} else {
		mo.SetClientID(fmt.Sprintf("obs-%d", wallclock.Now().UnixNano())).SetCleanSession(true)
	}
	if o.configured != nil {
		o.configured(mo)
	}
	subscribed := make(chan error, 10)
	mo.SetOnConnectHandler(func(c mqtt.Client) {
		tok := c.Subscribe(o.filter, 1, handler)
		go func() {
			if !tok.WaitTimeout(waitTimeout) {
				subscribed <- fmt.Errorf("subscribe %s: timeout", o.filter)
				return
			}
			subscribed <- tok.Error()
		}()
	})
	ob.cli = mqtt.NewClient(mo)
	tok := ob.cli.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout), "observer connect timed out")
	require.NoError(t, tok.Error())
	select {
	case err := <-subscribed:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatalf("observer subscribe timed out")
	}
	t.Cleanup(func() { ob.cli.Disconnect(0) })
	return ob
}

// next returns the next message whose topic ends with suffix and that
// satisfies match (nil: any), keeping the others for later calls.
func (o *observer) next(suffix string, match func(obsMsg) bool) obsMsg {
	o.t.Helper()
	ok := func(m obsMsg) bool {
		return strings.HasSuffix(m.Topic, "/"+suffix) && (match == nil || match(m))
	}
	for i, m := range o.held {
		if ok(m) {
			o.held = append(o.held[:i:i], o.held[i+1:]...)
			return m
		}
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-o.ch:
			if ok(m) {
				return m
			}
			o.held = append(o.held, m)
		case <-timer.C:
			o.t.Fatalf("no message on .../%s within %s; held: %v", suffix, waitTimeout, o.held)
			return obsMsg{}
		}
	}
}

// drain returns every message received so far whose topic ends with suffix.
// await waits for a matching message like next, but leaves it (and all it
// passed) for drain. A broker acknowledges a publisher before it delivers to
// subscribers, so a test awaits the last record before draining.
func (o *observer) await(suffix string, match func(obsMsg) bool) {
	o.t.Helper()
	m := o.next(suffix, match)
	o.held = append(o.held, m)
}

func (o *observer) drain(suffix string) []obsMsg {
	var out, rest []obsMsg
	for {
		select {
		case m := <-o.ch:
			o.held = append(o.held, m)
			continue
		default:
		}
		break
	}
	for _, m := range o.held {
		if strings.HasSuffix(m.Topic, "/"+suffix) {
			out = append(out, m)
		} else {
			rest = append(rest, m)
		}
	}
	o.held = rest
	return out
}

func (o *observer) publish(topic string, payload string, retained bool) {
	o.t.Helper()
	tok := o.cli.Publish(topic, 1, retained, payload)
	require.True(o.t, tok.WaitTimeout(waitTimeout), "publish timed out")
	require.NoError(o.t, tok.Error())
}

// command sends a command to room and returns its reply.
func (o *observer) command(room, payload, requestID string) contract.ReplyMessage {
	o.t.Helper()
	o.publish("visitrooms/"+room+"/cmd", payload, false)
	return o.reply(requestID)
}

func (o *observer) reply(requestID string) contract.ReplyMessage {
	o.t.Helper()
	m := o.next("reply", func(m obsMsg) bool {
		var r contract.ReplyMessage
		return json.Unmarshal([]byte(m.Payload), &r) == nil && r.RequestID == requestID
	})
	return strictReply(o.t, m.Payload)
}

func strictReply(t testing.TB, payload string) contract.ReplyMessage {
	t.Helper()
	var r contract.ReplyMessage
	require.NoError(t, contracttest.StrictUnmarshal([]byte(payload), &r), payload)
	return r
}

func strictEvent(t testing.TB, payload string) contract.EventMessage {
	t.Helper()
	var e contract.EventMessage
	require.NoError(t, contracttest.StrictUnmarshal([]byte(payload), &e), payload)
	return e
}
