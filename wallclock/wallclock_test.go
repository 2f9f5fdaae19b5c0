package wallclock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNowIsTheMachinesClockShifted(t *testing.T) {
	before := time.Now()
	now := Now()
	after := time.Now()
	assert.False(t, now.Before(before.Add(Shift())), "%v before %v", now, before.Add(Shift()))
	assert.False(t, now.After(after.Add(Shift())), "%v after %v", now, after.Add(Shift()))
}

func TestDurationsStayTheMachines(t *testing.T) {
	a := Now()
	b := Now()
	assert.GreaterOrEqual(t, b.Sub(a), time.Duration(0), "the monotonic reading is kept")
	assert.Less(t, b.Sub(a), time.Second)
}

func TestDeadlineIsTheMachinesClock(t *testing.T) {
	d := Deadline(time.Minute)
	assert.WithinDuration(t, time.Now().Add(time.Minute), d, time.Second, "never shifted")
	assert.Equal(t, time.Minute, Until(Now().Add(time.Minute)).Round(time.Second))
	assert.Equal(t, time.Minute, Since(Now().Add(-time.Minute)).Round(time.Second))
}
