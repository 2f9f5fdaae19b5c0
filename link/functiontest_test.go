package link

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/contract/contracttest"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
)

// TestFunctionTestEvent pins the wire form of a function_test record: the
// tester in by, the mode, passed, roomd's version and one result per line,
// naming the input (with its point or sensor number) or the output.
func TestFunctionTestEvent(t *testing.T) {
	r := controller.Record{Seq: 9, At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Type: controller.EventFunctionTest, By: "installer-7",
		Test: &controller.FunctionTest{Mode: controller.TestFull, Passed: false, Version: "1.4.0", Lines: []controller.LineResult{
			{Input: controller.InputDoor, Passed: true},
			{Input: controller.InputPresence, Sensor: 2, Passed: false, Fault: controller.FaultInverted},
			{Input: controller.InputPanic, Point: "toilet", Passed: false, Fault: controller.FaultNeverChanged},
			{Output: controller.OutputAlarmSounder, Passed: false, Fault: controller.FaultNotConfirmed},
		}}}
	got := string(contract.EncodeRecord("room-1", journal.Epoch(1), r))
	assert.JSONEq(t, `{"room":"room-1","epoch":"0000000000000001","seq":9,"at":"2026-03-01T09:00:00.000Z","type":"function_test",
		"by":"installer-7","mode":"full","passed":false,"roomd":"1.4.0","lines":[
		{"input":"door","result":"passed"},
		{"input":"presence","sensor":2,"result":"failed","fault":"inverted"},
		{"input":"panic","point":"toilet","result":"failed","fault":"never_changed"},
		{"output":"alarm_sounder","result":"failed","fault":"not_confirmed"}]}`, got)
	var e contract.EventMessage
	require.NoError(t, contracttest.StrictUnmarshal([]byte(got), &e))

}
