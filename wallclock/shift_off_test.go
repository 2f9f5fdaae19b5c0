//go:build !timeshift

package wallclock

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestShippedBuildsDoNotShift(t *testing.T) {
	t.Setenv("ROOMD_TIME_SHIFT", "8784h")
	assert.Zero(t, Shift(), "without the tag the variable is not read")
	assert.Empty(t, Tags())
}
