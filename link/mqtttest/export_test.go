package mqtttest

import "testing"

// SetSearchDirsForTest replaces the directories searched for mosquitto after
// PATH until the test ends.
func SetSearchDirsForTest(t *testing.T, dirs []string) {
	old := mosquittoDirs
	mosquittoDirs = dirs
	t.Cleanup(func() { mosquittoDirs = old })
}
