package main

import (
	"context"
	"errors"
	"net/url"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/mqttconn"
	"github.com/roomd/roomd/roomclient"
)

// clientOptions builds the connection options from the global flags: the
// same TLS rules as roomd's mqtt section. TLS files need a TLS scheme
// (ssl://, tls://, mqtts://); cert and key go together; a password file
// needs a username. The password is read from the file, its trailing
// newline removed. visitctl's session is clean: it is a one-shot tool
// (with the shipped broker's use_username_as_clientid it must not run under
// the identity of a long-lived client, whose session it would take over).
func (g *globals) clientOptions() (roomclient.Options, error) {
	u, err := url.Parse(g.broker)
	if err != nil || u.Host == "" || u.Port() == "" {
		return roomclient.Options{}, usagef("--broker %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", g.broker)
	}
	secure := false
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		secure = true
	default:
		return roomclient.Options{}, usagef("--broker %q: scheme %q is not supported (want tcp://, ssl:// or tls://)", g.broker, u.Scheme)
	}
	hasTLSFiles := g.caFile != "" || g.certFile != "" || g.keyFile != "" || g.serverName != ""
	if !secure && hasTLSFiles {
		return roomclient.Options{}, usagef("--ca-file, --cert-file, --key-file and --server-name need a TLS broker URL (ssl:// or tls://), got %s", g.broker)
	}
	if (g.certFile == "") != (g.keyFile == "") {
		return roomclient.Options{}, usagef("--cert-file and --key-file go together (a client certificate needs its key)")
	}
	if g.passwordFile != "" && g.username == "" {
		return roomclient.Options{}, usagef("--password-file needs --username")
	}
	o := roomclient.Options{
		Broker: g.broker, ClientID: g.clientID, Username: g.username, Base: g.base,
		CleanSession: true, NoReconnect: true, ConnectTimeout: g.timeout,
		CommandLife: min(g.timeout, contract.MaxExpiresAhead), RequestPrefix: "visitctl",
	}
	if g.passwordFile != "" {
		if o.Password, err = mqttconn.ReadPasswordFile(g.passwordFile); err != nil {
			return roomclient.Options{}, err
		}
	}
	if secure {
		if o.TLS, err = (mqttconn.TLSFiles{CAFile: g.caFile, CertFile: g.certFile, KeyFile: g.keyFile, ServerName: g.serverName}).Config(); err != nil {
			return roomclient.Options{}, err
		}
	}
	return o, nil
}

// dial connects with o; a broker that cannot be reached or refuses the
// connection is an unreachableError (exit 4).
func dial(ctx context.Context, o roomclient.Options) (*roomclient.Client, error) {
	c, err := roomclient.Dial(ctx, o)
	var ce *roomclient.ConnectError
	if errors.As(err, &ce) {
		return nil, &unreachableError{err}
	}
	return c, err
}
