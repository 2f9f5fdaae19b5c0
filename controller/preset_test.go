package controller_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
)

// presetPolicy loads a shipped policy preset (configs/policies) by name.
func presetPolicy(t *testing.T, where, name string) controller.Policy {
	p, err := configs.Preset(name)
	require.NoError(t, err, where)
	return p
}

// TestEveryPresetHasATranscript keeps one transcript per shipped preset.
func TestEveryPresetHasATranscript(t *testing.T) {
	require.NotEmpty(t, configs.PresetNames())
	for _, name := range configs.PresetNames() {
		require.FileExists(t, "testdata/preset_"+name+".txt", "preset %s has no transcript", name)
	}
}
