package metrics

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTextfileChecksItsPath(t *testing.T) {
	dir := t.TempDir()
	assert.ErrorContains(t, Textfile{Path: filepath.Join(dir, "roomd.txt")}.Check(), "must end in .prom")
	assert.ErrorContains(t, Textfile{Path: filepath.Join(dir, "missing", "roomd.prom")}.Check(), "no such file")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	assert.ErrorContains(t, Textfile{Path: filepath.Join(dir, "file", "roomd.prom")}.Check(), "not a directory")
	assert.NoError(t, Textfile{Path: filepath.Join(dir, "roomd.prom")}.Check())
}

// TestTextfileWritesWhatIsGathered: Run writes the registry's metrics in
// the text format at once, before it looks at its context, and returns
// with it, leaving no temporary file behind.
func TestTextfileWritesWhatIsGathered(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "roomd_test_gauge", Help: "A gauge."})
	g.Set(7)
	reg.MustRegister(g)
	path := filepath.Join(t.TempDir(), "roomd.prom")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Textfile{Path: path, Gatherer: reg}.Run(ctx)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "# TYPE roomd_test_gauge gauge\nroomd_test_gauge 7\n")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	g.Set(8)
	require.NoError(t, Textfile{Path: path, Gatherer: reg}.Write())
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "roomd_test_gauge 8\n", "written over")
}

func TestResidentMemory(t *testing.T) {
	rss, err := ResidentMemory()
	require.NoError(t, err)
	assert.Greater(t, rss, uint64(1<<20), "a Go test binary holds more than a MiB")
}
