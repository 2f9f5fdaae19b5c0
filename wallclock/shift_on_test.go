//go:build timeshift

package wallclock

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShiftFollowsTheVariable(t *testing.T) {
	want := time.Duration(0)
	if s := os.Getenv(Variable); s != "" {
		var err error
		want, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	assert.Equal(t, want, Shift())
	assert.Equal(t, "timeshift", Tags())
	assert.Equal(t, -8784*time.Hour, mustShift("-8784h"))
	assert.Panics(t, func() { mustShift("a year") })
}
