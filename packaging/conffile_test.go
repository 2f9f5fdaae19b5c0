package packaging

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
)

// problems lists the messages joined in err.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// The shipped /etc/roomd/roomd.yaml is what "unconfigured" means: it fails
// check-config with exactly the three values an installer must give, each
// at its own line, and nothing else.
func TestConffileAsksForWhatIsMissing(t *testing.T) {
	data, err := os.ReadFile("roomd.yaml")
	require.NoError(t, err)
	_, err = configs.Parse(data, "/etc/roomd/roomd.yaml")
	assert.Equal(t, []string{
		"/etc/roomd/roomd.yaml:20: room: is required: the room's id, e.g. room-1",
		"/etc/roomd/roomd.yaml:28: policy: is required: name a preset (policy.preset: one of canada, denmark, estonia, italy, punjab, spain) or give at least policy.max_duration",
		"/etc/roomd/roomd.yaml:32: mqtt.broker: is required: the broker's URL, e.g. tls://broker.example:8883",
	}, problems(err))
	for _, line := range []string{"room:", "  preset:", "  broker:"} {
		assert.Contains(t, string(data), "\n"+line+"\n")
	}
}

// Filled in, it is a complete config whose wiring is the documented one:
// the same lines as the example config (and so as docs/wiring.md).
func TestConffileFilledInIsTheExampleWiring(t *testing.T) {
	data, err := os.ReadFile("roomd.yaml")
	require.NoError(t, err)
	doc := strings.NewReplacer(
		"\nroom:\n", "\nroom: room-1\n",
		"\n  preset:\n", "\n  preset: italy\n",
		"\n  broker:\n", "\n  broker: tls://broker.example:8883\n",
	).Replace(string(data))
	got, err := configs.Parse([]byte(doc), "filled-in")
	require.NoError(t, err)

	example, err := os.ReadFile("../configs/roomd.example.yaml")
	require.NoError(t, err)
	want, err := configs.Parse(example, "example")
	require.NoError(t, err)
	assert.Equal(t, want.Device, got.Device)
	assert.Equal(t, want.Policy, got.Policy)
	assert.Equal(t, configs.Default().StateDir, got.StateDir)
}
