package daemon_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/wallclock"
)

// A replay's clock changes speed without a jump: it catches up with the wall
// clock at its speed, then runs at real time on it.
func TestFastClockJoinsTheWallClockWithoutAJump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := wallclock.Now()
		c := daemon.NewClockAt(start.Add(-time.Hour), 100)
		assert.Equal(t, start.Add(-time.Hour), c.Now())
		time.Sleep(3 * time.Second)
		assert.Equal(t, start.Add(-time.Hour+300*time.Second), c.Now(), "100 times faster")
		boot := c.Boot()

		wait, caught := c.JoinWall()
		require.True(t, caught)
		// 55 minutes and 3 seconds behind, gaining 99 seconds a second.
		behind := 55*time.Minute + 3*time.Second // the wall clock moved on too
		assert.Equal(t, time.Duration(float64(behind)/99), wait)
		assert.Equal(t, 100.0, c.Speed(), "still catching up")
		tm := c.NewTimer(time.Hour) // past the join: 33.3 s fast, then 5 min real
		before := c.Now()
		time.Sleep(time.Second)
		assert.Equal(t, before.Add(100*time.Second), c.Now(), "no jump: the same speed until it has caught up")
		time.Sleep(wait - time.Second)
		assert.WithinDuration(t, wallclock.Now(), c.Now(), time.Microsecond, "on the wall clock")
		assert.Equal(t, 1.0, c.Speed())
		time.Sleep(6 * time.Second)
		assert.WithinDuration(t, wallclock.Now(), c.Now(), time.Microsecond, "and in real time")
		assert.Greater(t, c.Boot(), boot, "the boot clock never goes back")
		select {
		case <-tm.C():
			t.Fatal("the timer fired before an hour of the clock's time")
		default:
		}
		time.Sleep(5 * time.Minute)
		select {
		case <-tm.C():
		default:
			t.Fatal("the timer did not fire after an hour of the clock's time")
		}
		assert.Equal(t, 7*time.Second, c.Since(wallclock.Now().Add(-7*time.Second)), "real time now")

		// A clock ahead of the wall clock cannot go back: it runs at real
		// time from where it is.
		ahead := daemon.NewClockAt(wallclock.Now().Add(time.Hour), 400)
		_, caught = ahead.JoinWall()
		assert.False(t, caught)
		t0 := ahead.Now()
		time.Sleep(time.Minute)
		assert.Equal(t, t0.Add(time.Minute), ahead.Now())

		s := daemon.NewClockAt(wallclock.Now(), 10)
		time.Sleep(time.Second)
		s.SetSpeed(2)
		n := s.Now()
		time.Sleep(time.Second)
		assert.Equal(t, n.Add(2*time.Second), s.Now())
		assert.Equal(t, time.Second, s.Since(wallclock.Now().Add(-500*time.Millisecond)), "a reading's age at the new speed")
	})
}
