package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/link"
)

// connOptions builds the MQTT client options from the global flags: the
// same TLS rules as roomd's mqtt section. TLS files need a TLS scheme
// (ssl://, tls://, mqtts://); cert and key go together; a password file
// needs a username. The password is read from the file, its trailing
// newline removed.
func (g *globals) connOptions() (*mqtt.ClientOptions, error) {
	u, err := url.Parse(g.broker)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, usagef("--broker %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", g.broker)
	}
	secure := false
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		secure = true
	default:
		return nil, usagef("--broker %q: scheme %q is not supported (want tcp://, ssl:// or tls://)", g.broker, u.Scheme)
	}
	hasTLSFiles := g.caFile != "" || g.certFile != "" || g.keyFile != "" || g.serverName != ""
	if !secure && hasTLSFiles {
		return nil, usagef("--ca-file, --cert-file, --key-file and --server-name need a TLS broker URL (ssl:// or tls://), got %s", g.broker)
	}
	if (g.certFile == "") != (g.keyFile == "") {
		return nil, usagef("--cert-file and --key-file go together (a client certificate needs its key)")
	}
	if g.passwordFile != "" && g.username == "" {
		return nil, usagef("--password-file needs --username")
	}

	opts := mqtt.NewClientOptions()
	opts.AddBroker(g.broker)
	opts.SetClientID(g.clientID)
	opts.SetCleanSession(true)
	opts.SetConnectTimeout(g.timeout)
	opts.SetWriteTimeout(g.timeout)
	opts.SetKeepAlive(30 * time.Second)
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	if g.username != "" {
		opts.SetUsername(g.username)
	}
	if g.passwordFile != "" {
		pw, err := link.ReadPasswordFile(g.passwordFile)
		if err != nil {
			return nil, err
		}
		opts.SetPassword(pw)
	}
	if secure {
		cfg, err := link.TLSFiles{CAFile: g.caFile, CertFile: g.certFile, KeyFile: g.keyFile, ServerName: g.serverName}.Config()
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(cfg)
	}
	return opts, nil
}

// wait waits for tok, ctx or d, whichever comes first; what names the
// operation in the error.
func wait(ctx context.Context, tok mqtt.Token, d time.Duration, what string) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("%s: no answer from the broker within %s", what, d)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// connect connects a client built from opts, bounded by the timeout.
func connect(ctx context.Context, g globals, opts *mqtt.ClientOptions) (mqtt.Client, error) {
	c := mqtt.NewClient(opts)
	if err := wait(ctx, c.Connect(), g.timeout, "connect to broker "+g.broker); err != nil {
		c.Disconnect(0)
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &unreachableError{err}
	}
	return c, nil
}

// subscribe subscribes to filters at QoS 1 and checks the broker granted them.
func subscribe(ctx context.Context, c mqtt.Client, g globals, filters []string, h mqtt.MessageHandler) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, h)
	if err := wait(ctx, tok, g.timeout, "subscribe to "+strings.Join(filters, ", ")); err != nil {
		return err
	}
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code >= 0x80 {
			return fmt.Errorf("subscribe to %s: refused by the broker (check the ACL for user %q)", topic, g.username)
		}
	}
	return nil
}
