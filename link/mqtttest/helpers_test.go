package mqtttest_test

import (
	"crypto/tls"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// wait bounds every wait for a broker reply or a message.
const wait = 5 * time.Second

type client struct {
	id     string
	url    string
	user   string
	pass   string
	tls    *tls.Config
	clean  bool
	onMsg  paho.MessageHandler
	onLost func(error)
	notNew bool
}

func (c client) options() *paho.ClientOptions {
	o := paho.NewClientOptions().AddBroker(c.url).SetClientID(c.id).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).
		SetCleanSession(c.clean).SetOrderMatters(true)
	if c.user != "" {
		o.SetUsername(c.user).SetPassword(c.pass)
	}
	if c.tls != nil {
		o.SetTLSConfig(c.tls)
	}
	if c.onMsg != nil {
		o.SetDefaultPublishHandler(c.onMsg)
	}
	if c.onLost != nil {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { c.onLost(err) })
	}
	return o
}

// tryConnect connects and returns the connect error, if any.
func tryConnect(t *testing.T, c client) (paho.Client, error) {
	t.Helper()
	pc := paho.NewClient(c.options())
	tok := pc.Connect()
	require.True(t, tok.WaitTimeout(wait), "connect %s timed out", c.id)
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { pc.Disconnect(0) })
	return pc, nil
}

func connect(t *testing.T, c client) paho.Client {
	t.Helper()
	pc, err := tryConnect(t, c)
	require.NoError(t, err, "connect %s", c.id)
	return pc
}

func await(t *testing.T, tok paho.Token, what string) {
	t.Helper()
	require.True(t, tok.WaitTimeout(wait), "%s timed out", what)
	require.NoError(t, tok.Error(), what)
}

type msg struct{ topic, payload string }

func collector() (chan msg, paho.MessageHandler) {
	ch := make(chan msg, 4096)
	return ch, func(_ paho.Client, m paho.Message) { ch <- msg{m.Topic(), string(m.Payload())} }
}

func receive(t *testing.T, ch <-chan msg, what string) msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatalf("no message for %s within %s", what, wait)
		return msg{}
	}
}

// subscribe subscribes and returns the granted QoS (0x80 means refused).
func subscribe(t *testing.T, c paho.Client, topic string, h paho.MessageHandler) byte {
	t.Helper()
	tok := c.Subscribe(topic, 1, h)
	await(t, tok, "subscribe "+topic)
	return tok.(*paho.SubscribeToken).Result()[topic]
}

func publish(t *testing.T, c paho.Client, topic, payload string, retained bool) {
	t.Helper()
	await(t, c.Publish(topic, 1, retained, payload), "publish "+topic)
}
