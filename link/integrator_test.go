package link_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
)

// The contract tried with tools nobody here wrote, from docs/integrator/
// (npm ci there installs them; .ci/install-deps runs it): the official
// AsyncAPI parser and ajv in strict mode read docs/asyncapi.yaml, and a
// booking client written with mqtt.js from docs/ alone runs a visit on a
// real room through a real mosquitto.

var integratorDir = filepath.Join("..", "docs", "integrator")

// node returns the node binary, once docs/integrator's modules are
// installed; it skips the test without them, and fails it under CI=true.
func node(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed"
	default:
		for _, m := range []string{"@asyncapi/parser", "ajv", "ajv-formats", "mqtt", "yaml"} {
			if _, err := os.Stat(filepath.Join(integratorDir, "node_modules", m, "package.json")); err != nil {
				missing = "docs/integrator/node_modules lacks " + m + " (run npm ci in docs/integrator, or .ci/install-deps)"
				break
			}
		}
	}
	if missing != "" {
		testtier.Missing(t, "%s", missing)
	}
	return bin
}

func runNode(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = integratorDir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func TestIntegratorAsyncAPIParserAndAjv(t *testing.T) {
	testtier.Slow(t, "runs the Node tools of docs/integrator")
	bin := node(t)
	cases, err := json.Marshal(contracttest.Cases())
	require.NoError(t, err)
	casesFile := filepath.Join(t.TempDir(), "cases.json")
	require.NoError(t, os.WriteFile(casesFile, cases, 0o644))
	out := runNode(t, bin, nil, "check-asyncapi.mjs", filepath.Join("..", "asyncapi.yaml"), casesFile)
	assert.Contains(t, out, "@asyncapi/parser: AsyncAPI 3.0.0")
	assert.Contains(t, out, "rule no presence in the state during a visit: refused", "ajv checks the rules too")
	assert.NotContains(t, out, "FAIL")
	assert.Regexp(t, `asyncapi: [1-9][0-9]* passed, 0 failed`, out)
}

func TestIntegratorBookingClientOnMosquitto(t *testing.T) {
	testtier.Slow(t, "runs the Node tools of docs/integrator")
	bin := node(t)
	broker := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	roomtest.Start(t, roomtest.Options{Broker: broker.URL(), Room: "room-b"})
	out := runNode(t, bin, []string{"ROOMD_BROKER=" + strings.Replace(broker.URL(), "tcp://", "mqtt://", 1), "ROOMD_ROOM=room-b"},
		"booking-client.mjs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var sum struct {
		Started  bool   `json:"started"`
		Extended bool   `json:"extended"`
		Alert    string `json:"alert"`
		AckedBy  string `json:"acked_by"`
		Ended    string `json:"ended"`
		Unique   int    `json:"unique"`
		Dups     int    `json:"duplicates"`
		Replayed int    `json:"replayed"`
		Gaps     int    `json:"gaps"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum), out)
	assert.True(t, sum.Started && sum.Extended, out)
	assert.True(t, strings.HasPrefix(sum.Alert, "time_up-"), out)
	assert.Equal(t, "guard-7", sum.AckedBy, out)
	assert.Equal(t, "ended", sum.Ended, out)
	assert.Positive(t, sum.Replayed, out)
	assert.GreaterOrEqual(t, sum.Dups, sum.Replayed, "every replayed record was dropped as a duplicate: %s", out)
	assert.Zero(t, sum.Gaps, out)
}
