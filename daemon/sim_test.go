package daemon_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/sim"
)

// TestTwoHourVisitWithSimulator runs the loop on the simulator backend (the
// same debounce and output pipeline as the hardware) on fake time.
func TestTwoHourVisitWithSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room, err := sim.New(sim.DefaultSpec(), nil)
		require.NoError(t, err)
		defer room.Close()
		r := startRoom(t, t.TempDir(), newSources(), func(_ *daemon.Options, d *daemon.Deps) {
			d.Inputs, d.Outputs = room, room
		})
		advance(time.Second) // the first readings settle
		require.True(t, r.command(controller.Command{RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v", Duration: 2 * time.Hour}).OK())
		advance(time.Second)
		assert.Equal(t, controller.ModeOn, room.Outputs()[controller.OutputInUse])

		advance(110 * time.Minute)
		assert.Equal(t, controller.ModeOn, room.Outputs()[controller.OutputWarning])
		advance(10 * time.Minute) // deadline
		assert.Equal(t, controller.ModeBlink, room.Outputs()[controller.OutputWarning])
		advance(2 * time.Minute) // escalated
		assert.Equal(t, controller.ModeTimeUp, room.Outputs()[controller.OutputAlarmLight])

		// The door opens and everybody leaves: the vacancy rule ends the visit.
		require.NoError(t, room.SetInput(controller.InputDoor, controller.LevelActive))
		advance(3 * time.Minute)
		recs := r.recs()
		assert.Equal(t, 1, count(recs, controller.EventVisitEnded))
		assert.Equal(t, 2, count(recs, controller.EventVisitWarning))
		assert.GreaterOrEqual(t, count(recs, controller.EventAlertEscalated), 1)
		assert.Equal(t, 1, count(recs, controller.EventDoorOpened))
		for _, o := range controller.Outputs {
			assert.Equal(t, controller.ModeOff, room.Outputs()[o], "output %s", o)
		}
		r.stop()
	})
}
