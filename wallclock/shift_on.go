//go:build timeshift

package wallclock

import (
	"fmt"
	"os"
	"time"
)

// Variable names the environment variable of the shift.
const Variable = "ROOMD_TIME_SHIFT"

const tags = "timeshift"

var shift = mustShift(os.Getenv(Variable))

func mustShift(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("wallclock: %s=%q: %v", Variable, s, err))
	}
	return d
}
