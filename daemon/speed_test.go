package daemon_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
)

// fastSources runs the boot clock speed times faster than time.Now.
type fastSources struct {
	*fakeSources
	speed time.Duration
}

func (s fastSources) Boot() time.Duration { return s.fakeSources.Boot() * s.speed }

// With Speed the loop waits deadlines on the compressed axis: a two-hour
// visit reaches time_up after two real minutes at 60x, under the same policy.
func TestSpeedCompressesDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := fastSources{fakeSources: newSources(), speed: 60}
		r := startRoom(t, t.TempDir(), src.fakeSources, func(_ *daemon.Options, d *daemon.Deps) {
			d.Clock = src
			d.Speed = 60
		})
		r.quietRoom()
		rep := r.command(controller.Command{RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v1", Duration: 2 * time.Hour})
		require.True(t, rep.OK(), rep.Message)

		advance(119 * time.Second)
		assert.Equal(t, controller.PhaseInVisit, r.link.lastState().Phase)
		advance(2 * time.Second)
		st := r.link.lastState()
		assert.Equal(t, controller.PhaseOvertime, st.Phase)
		require.Len(t, st.Alerts, 1)
		assert.Equal(t, controller.AlertTimeUp, st.Alerts[0].Kind)
		r.stop()
	})
}

func TestSpeedOutOfRangeIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSources()
		r := startRoom(t, t.TempDir(), src, func(_ *daemon.Options, d *daemon.Deps) { d.Speed = -2 })
		err := <-r.done
		r.stopped = true
		require.Error(t, err)
		assert.ErrorContains(t, err, "speed must be within")
	})
}
