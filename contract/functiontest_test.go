package contract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

func TestLineFaultsGoOutByName(t *testing.T) {
	// Every fault of the controller's vocabulary goes out as its name.
	require.NotEmpty(t, controller.LineFaults)
	for _, f := range controller.LineFaults {
		m := lineMessageOf(controller.LineResult{Input: controller.InputDoor, Fault: f})
		assert.Equal(t, ResultFailed, m.Result)
		assert.Equal(t, string(f), m.Fault)
	}
}
