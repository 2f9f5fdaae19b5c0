package scenario_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/sim/scenario"
)

// TestShippedScenarios plays every file in sim/scenarios against the real
// loop on fake time.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			sc, err := scenario.Load(f)
			require.NoError(t, err)
			synctest.Test(t, func(t *testing.T) {
				res, err := scenario.Run(context.Background(), sc, scenario.Options{})
				require.NoError(t, err)
				t.Log(res.Report())
				if !res.OK() {
					t.Fatal(res.Report())
				}
			})
		})
	}
}
