package link

import (
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncodersMatchContract checks that what the encoders produce decodes
// strictly into the wire types and validates against the schemas (the
// examples above are hand-written).
func TestEncodersMatchContract(t *testing.T) {
	s := contracttest.Load(t)
	ctrl, acts, err := controller.New(testPolicy(), t0)
	require.NoError(t, err)
	d := &pureDriver{t: t, ctrl: ctrl}
	d.apply(acts)
	runVisit(d, scriptA, exp())
	d.event(controller.Fault{At: t0.Add(2 * time.Hour), Source: "journal_full", Active: true, Detail: "journal full", Severity: controller.SeverityCritical})
	seen := map[string]bool{}
	for _, line := range d.out {
		topic, payload, _ := strings.Cut(line, " ")
		var v any
		var message string
		switch topic {
		case "events":
			v, message = &contract.EventMessage{}, "event"
		case "alerts":
			v, message = &contract.EventMessage{}, "alert"
		case "state":
			v, message = &contract.StateMessage{}, "state"
		case "reply":
			v, message = &contract.ReplyMessage{}, "reply"
		}
		require.NotNil(t, v, "unexpected topic in %s", line)
		require.NoError(t, contracttest.StrictUnmarshal([]byte(payload), v), line)
		assert.NoError(t, s.Validate(t, message, []byte(payload)))
		seen[topic] = true
	}
	assert.Len(t, seen, 4)
}
