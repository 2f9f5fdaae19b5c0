package siteworld

import (
	"crypto/tls"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/wallclock"
)

// DefaultPatience bounds a wait that only a failure reaches (connecting,
// subscribing, publishing, a bridge coming up, a record arriving in a
// test); generous, because CI runs every package at once under the race
// detector.
const DefaultPatience = 90 * time.Second

// CommandLife is the expires_at of the commands the consoles send.
const CommandLife = 10 * time.Minute

// console is a console's connection: a paho client under its own identity
// (username and client id) that reconnects by itself and subscribes again
// to filters on every connection (a broker that lost the session still
// delivers, and retained topics come again). With clean false its session
// stays at the broker while it is away.
type console struct {
	urls     []string
	user     string
	tls      *tls.Config
	clean    bool
	filters  map[string]byte
	handler  paho.MessageHandler
	patience time.Duration
}

func (c console) connect() (paho.Client, error) {
	o := paho.NewClientOptions().SetClientID(c.user).SetTLSConfig(c.tls)
	if len(c.tls.Certificates) == 0 {
		// A certificate names its user; a centre that maps certificates
		// to users (NATS) refuses a username beside it.
		o.SetUsername(c.user).SetPassword(Password(c.user))
	}
	o.SetCleanSession(c.clean).SetProtocolVersion(4).SetOrderMatters(true).
		SetKeepAlive(5 * time.Second).SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetDefaultPublishHandler(c.handler)
	for _, u := range c.urls {
		o.AddBroker(u)
	}
	if len(c.filters) > 0 {
		o.SetOnConnectHandler(func(cl paho.Client) { go c.subscribe(cl) })
	}
	cl := paho.NewClient(o)
	if err := waitToken(c.patience, cl.Connect(), "connect %s to %v", c.user, c.urls); err != nil {
		return nil, err
	}
	if len(c.filters) > 0 {
		if err := waitToken(c.patience, cl.SubscribeMultiple(c.filters, c.handler), "subscribe %s", c.user); err != nil {
			cl.Disconnect(100)
			return nil, err
		}
	}
	return cl, nil
}

// subscribe subscribes to the filters, again every 200 ms while the broker
// refuses one (SUBACK 0x80) and the client stays connected: a clustered
// centre refuses subscriptions for a few seconds after losing a node, while
// it elects new leaders for what that node led.
func (c console) subscribe(cl paho.Client) {
	deadline := wallclock.Now().Add(c.patience)
	for cl.IsConnectionOpen() && wallclock.Now().Before(deadline) {
		tok := cl.SubscribeMultiple(c.filters, c.handler)
		if tok.WaitTimeout(c.patience) && tok.Error() == nil {
			refused := false
			for _, q := range tok.(*paho.SubscribeToken).Result() {
				refused = refused || q == 0x80
			}
			if !refused {
				return
			}
		}
		<-time.After(200 * time.Millisecond)
	}
}

// waitToken waits up to patience for tok and returns its error, naming the
// operation.
func waitToken(patience time.Duration, tok paho.Token, format string, args ...any) error {
	if !tok.WaitTimeout(patience) {
		return fmt.Errorf(format+": timed out after %s", append(args, patience)...)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf(format+": %w", append(args, err)...)
	}
	return nil
}
