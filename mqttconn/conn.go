// Package mqttconn is the one place a paho MQTT client is set up, for the
// room's link and for every client of the contract (roomclient, and through
// it visitctl, the board and roombench): the broker URL check, TLS files,
// password files, and the client options they share. What differs between a
// room and a client (who reconnects, whether the session is kept, the Last
// Will) is a field here, said once, not a second copy of the set-up.
package mqttconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Reconnect says who reconnects after a lost connection.
type Reconnect uint8

const (
	// ReconnectByCaller: paho never reconnects; the caller runs its own
	// loop. The room does: after each connect it must resend from its
	// journal before anything new, and paho's own reconnect gives no signal
	// once it has resent its in-flight messages.
	ReconnectByCaller Reconnect = iota
	// ReconnectByPaho: paho reconnects with a backoff doubling from 1 s up
	// to MaxReconnectInterval, and the caller resubscribes in its
	// OnConnect handler (subscriptions are not resumed by paho).
	ReconnectByPaho
)

// MaxPingTimeout caps how long a PINGRESP is awaited: a broker that does not
// answer within it is taken as lost, whatever the keepalive.
const MaxPingTimeout = 10 * time.Second

// Settings are what every roomd MQTT client sets.
type Settings struct {
	// Broker is the broker URL (CheckBrokerURL).
	Broker   string
	ClientID string
	// Username and Password authenticate the client; the caller reads the
	// password from a file (ReadPasswordFile).
	Username, Password string
	// TLS, if not nil, is used for ssl://, tls://, mqtts:// and wss://.
	TLS *tls.Config
	// Keepalive is the MQTT keepalive; PINGRESP is awaited for at most the
	// keepalive, capped at MaxPingTimeout.
	Keepalive time.Duration
	// ConnectTimeout bounds one connection attempt and each write.
	ConnectTimeout time.Duration
	// CleanSession false keeps the session (subscriptions and queued QoS 1
	// messages) at the broker under ClientID across reconnects.
	CleanSession bool
	// Reconnect says who reconnects; MaxReconnectInterval caps paho's
	// backoff with ReconnectByPaho.
	Reconnect            Reconnect
	MaxReconnectInterval time.Duration
	// Dial, if not nil, opens the connection in place of dialling Broker
	// (which still names the broker in logs); ctx ends after
	// ConnectTimeout. TLS is not applied to the connection it returns.
	Dial func(ctx context.Context) (net.Conn, error)
}

// ClientOptions returns paho's options for s: MQTT 3.1.1, messages handed
// to the handlers in arrival order, no connect retry inside paho. The caller
// adds its handlers (and a store or a Last Will) before mqtt.NewClient.
func ClientOptions(s Settings) *mqtt.ClientOptions {
	mo := mqtt.NewClientOptions().
		AddBroker(s.Broker).
		SetClientID(s.ClientID).
		SetUsername(s.Username).
		SetPassword(s.Password).
		SetCleanSession(s.CleanSession).
		SetOrderMatters(true).
		SetProtocolVersion(4).
		SetKeepAlive(s.Keepalive).
		SetPingTimeout(min(s.Keepalive, MaxPingTimeout)).
		SetConnectTimeout(s.ConnectTimeout).
		SetWriteTimeout(s.ConnectTimeout).
		SetConnectRetry(false).
		SetAutoReconnect(s.Reconnect == ReconnectByPaho).
		SetResumeSubs(false)
	if s.Reconnect == ReconnectByPaho && s.MaxReconnectInterval > 0 {
		mo.SetMaxReconnectInterval(s.MaxReconnectInterval)
	}
	if s.TLS != nil {
		mo.SetTLSConfig(s.TLS)
	}
	if dial := s.Dial; dial != nil {
		timeout := s.ConnectTimeout
		mo.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return dial(ctx)
		})
	}
	return mo
}

// CheckBrokerURL reports what makes s unusable as a broker URL, the one
// check New makes, for commands that want to refuse a bad URL at start
// rather than retry it for ever.
func CheckBrokerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("mqtt broker URL %q: want scheme://host:port", s)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("mqtt broker URL %q: unknown scheme %q (want tcp, ssl, tls, mqtt, mqtts, ws or wss)", s, u.Scheme)
	}
	return nil
}
