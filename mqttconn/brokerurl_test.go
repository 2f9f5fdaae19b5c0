package mqttconn

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckBrokerURL(t *testing.T) {
	for _, ok := range []string{"tcp://127.0.0.1:1883", "ssl://broker.example:8883", "tls://broker:8883", "wss://broker/mqtt"} {
		assert.NoError(t, CheckBrokerURL(ok), ok)
	}
	for bad, want := range map[string]string{
		"":                      "want scheme://host:port",
		"broker.example:8883":   "want scheme://host:port",
		"127.0.0.1:1883":        "want scheme://host:port",
		"tcp://":                "want scheme://host:port",
		"http://127.0.0.1:1883": `unknown scheme "http"`,
	} {
		assert.ErrorContains(t, CheckBrokerURL(bad), want, "%q", bad)
	}
}
