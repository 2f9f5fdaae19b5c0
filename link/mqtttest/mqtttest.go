// Package mqtttest starts MQTT brokers for tests: the embedded broker from
// link/broker (hermetic, in-process) and a real mosquitto child process (for
// TLS, ACL, persistence and broker-crash tests).
package mqtttest

import (
	"log/slog"
	"testing"

	"github.com/roomd/roomd/link/broker"
)

// Embedded starts an in-process broker on a free loopback port, stops it when
// the test ends and returns its URL ("tcp://127.0.0.1:NNNN"). The broker
// admits every client and keeps sessions and retained messages in memory.
func Embedded(t testing.TB) string {
	t.Helper()
	b, err := broker.Start(broker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("mqtttest: start embedded broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("mqtttest: %v", err)
		}
	})
	return b.URL()
}

// ShippedACL returns the absolute path of the production ACL,
// configs/mosquitto/acl, found by walking up from the working directory to the
// module root. It fails the test if the file is missing.
func ShippedACL(t testing.TB) string {
	t.Helper()
	return Shipped(t, "acl")
}
