package daemon_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSystemdUnit checks the shipped unit against what the loop does.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("../configs/systemd/roomd.service")
	require.NoError(t, err)
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		keys[k] = append(keys[k], v)
	}
	require.NoError(t, sc.Err())
	want := map[string]string{
		"Type":                "notify",
		"ExecStart":           "/usr/bin/roomd run --config /etc/roomd/roomd.yaml",
		"Restart":             "always",
		"User":                "roomd",
		"SupplementaryGroups": "gpio i2c",
		"StateDirectory":      "roomd",
		"ProtectSystem":       "strict",
		"NoNewPrivileges":     "yes",
		"PrivateTmp":          "yes",
		"ProtectHome":         "yes",
		"DevicePolicy":        "closed",
	}
	for k, v := range want {
		assert.Equal(t, []string{v}, keys[k], "%s", k)
	}
	// The GPIO chips, and the I²C buses of an ADC reading supervised loops.
	assert.Equal(t, []string{"char-gpiochip rw", "char-i2c rw"}, keys["DeviceAllow"])
	require.Len(t, keys["WatchdogSec"], 1)
	assert.NotEqual(t, "0", keys["WatchdogSec"][0])
}
