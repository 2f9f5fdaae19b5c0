package commission_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/commission"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/sim"
	"github.com/roomd/roomd/wallclock"
)

// clock is a boot and wall clock on the bubble's time: one boot, a
// synchronised wall clock.
type clock struct{ start time.Time }

func (c clock) Wall() time.Time         { return wallclock.Now() }
func (c clock) Boot() time.Duration     { return time.Hour + wallclock.Since(c.start) }
func (c clock) BootID() (string, error) { return "boot-1", nil }
func (c clock) Synced() bool            { return true }
func (c clock) String() string          { return "test clock" }
func policy() controller.Policy         { p := testPolicy(); return p }
func openJournal(t *testing.T, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	require.NoError(t, err)
	return j
}

// testPolicy is a short policy with a function test due every 90 days.
func testPolicy() controller.Policy {
	return controller.Policy{Name: "test", MaxDuration: 2 * time.Hour, EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute,
		ReannounceAfter: 5 * time.Minute, VacateTimeout: 10 * time.Minute, FunctionTestEvery: 90 * 24 * time.Hour}
}

// options is a full test of room-1 by installer-7 on r, its journal j.
func options(t *testing.T, r *sim.Room, j *journal.Journal, inst commission.Installer) commission.Options {
	return commission.Options{Room: "room-1", Policy: policy(), By: "installer-7", Walk: commission.WalkOptions{Mode: controller.TestFull},
		ReportDir: filepath.Join(t.TempDir(), "function-tests"), Version: "1.2.3", Backend: "sim",
		Journal: j, Lines: r, Installer: inst, Clock: clock{start: wallclock.Now()}, MinPlausible: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// records lists the journal's records, in order.
func records(t *testing.T, j *journal.Journal) []controller.Record {
	t.Helper()
	var out []controller.Record
	for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		if errors.Is(err, journal.ErrLost) {
			continue // damage the test made
		}
		require.NoError(t, err)
		out = append(out, e.Records...)
	}
	return out
}

func TestRunRecordsAndReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		j := openJournal(t, dir)
		r := newRoom(t, roomSpec())
		o := options(t, r, j, newInstaller(t, r))
		out, err := commission.Run(context.Background(), o)
		require.NoError(t, err)
		allOff(t, r)
		assert.True(t, out.Report.Passed)
		require.Equal(t, controller.EventFunctionTest, out.Record.Type)
		assert.Equal(t, "installer-7", out.Record.By)
		assert.Equal(t, "1.2.3", out.Record.Test.Version)
		assert.Len(t, out.Record.Test.Lines, 12)

		// The journal: the room's first step, then the test.
		recs := records(t, j)
		require.Len(t, recs, 2)
		assert.Equal(t, controller.EventControllerStarted, recs[0].Type)
		assert.Equal(t, out.Record, recs[1])
		snap, _ := j.Latest()
		require.NotNil(t, snap)
		assert.Equal(t, out.Report.At, snap.Tests.LastFull)
		assert.Equal(t, out.Report.At, snap.Tests.Points["toilet"])

		// The report, in both forms, named by its time.
		require.Len(t, out.Files, 2)
		stamp := out.Report.At.UTC().Format("20060102T150405Z")
		assert.Equal(t, filepath.Join(o.ReportDir, "function-test-"+stamp+".txt"), out.Files[0])
		text, err := os.ReadFile(out.Files[0])
		require.NoError(t, err)
		assert.Contains(t, string(text), "roomd function test (full): PASSED")
		assert.Contains(t, string(text), "by:       installer-7")
		assert.Regexp(t, `\npanic:toilet +simulated +passed +pressed when acted on, released at rest\n`, string(text))
		var rep struct {
			Room, At, By, Mode, Roomd, Backend string
			Passed                             bool
			Lines                              []map[string]any
		}
		data, err := os.ReadFile(out.Files[1])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &rep))
		assert.Equal(t, "room-1", rep.Room)
		assert.Equal(t, "full", rep.Mode)
		assert.True(t, rep.Passed)
		require.Len(t, rep.Lines, 12)
		assert.Equal(t, map[string]any{"input": "presence", "sensor": float64(2), "line": rep.Lines[3]["line"], "result": "passed",
			"seen": "present when acted on, absent at rest"}, rep.Lines[3])

		// A light test in which a point fails: recorded, the full test's
		// date kept, the passed point's date moved.
		time.Sleep(24 * time.Hour)
		inst := newInstaller(t, r)
		inst.acts["panic:toilet"] = func(commission.Step) {}
		o2 := options(t, r, j, inst)
		o2.Walk = commission.WalkOptions{Mode: controller.TestLight, Wait: 10 * time.Second}
		out2, err := commission.Run(context.Background(), o2)
		require.NoError(t, err)
		assert.False(t, out2.Report.Passed)
		require.Equal(t, controller.EventFunctionTest, out2.Record.Type)
		assert.False(t, *boolOf(out2.Record.Test.Passed))
		snap, _ = j.Latest()
		assert.Equal(t, out.Report.At, snap.Tests.LastFull, "a light test keeps the full test's date")
		assert.Equal(t, out2.Report.At, snap.Tests.Points["bed"])
		assert.Equal(t, out.Report.At, snap.Tests.Points["toilet"], "a failed point keeps its date")
		recs = records(t, j)
		require.Greater(t, len(recs), 2)
		assert.Equal(t, controller.EventControllerStarted, recs[2].Type, "the room resumed for the second test")
		assert.True(t, recs[2].Resumed)
		assert.Equal(t, recs[1].Seq+1, recs[2].Seq, "no seq gap")
		require.NoError(t, j.Close())
	})
}

func boolOf(b bool) *bool { return &b }

// startVisit puts a visit in the journal of a room, as roomd would have.
func startVisit(t *testing.T, j *journal.Journal, at time.Time) {
	c, acts, err := controller.New(policy(), at)
	require.NoError(t, err)
	e := journal.EntryOf(c, acts)
	require.NoError(t, j.Append(e, journal.EntryOf(c, c.Step(controller.Command{At: at, RequestID: "r", Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour}))))
}

func TestRunRefusedDuringAVisit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t, t.TempDir())
		defer j.Close()
		startVisit(t, j, wallclock.Now())
		last := j.Last()
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		o := options(t, r, j, inst)
		_, err := commission.Run(context.Background(), o)
		var ve *commission.VisitError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, controller.PhaseInVisit, ve.Phase)
		assert.ErrorContains(t, err, "a visit is running (phase in_visit)")
		assert.Empty(t, inst.steps, "nobody was asked to do anything")
		assert.Equal(t, last, j.Last(), "nothing recorded")
		assert.NoDirExists(t, o.ReportDir)
		allOff(t, r)
	})
}

func TestRunReportUnwritable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t, t.TempDir())
		defer j.Close()
		r := newRoom(t, roomSpec())
		o := options(t, r, j, newInstaller(t, r))
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		o.ReportDir = filepath.Join(file, "function-tests") // below a regular file: even root cannot make it
		_, err := commission.Run(context.Background(), o)
		require.ErrorContains(t, err, "not recorded: write the function test report")
		assert.Zero(t, j.Last(), "nothing recorded")
		allOff(t, r)
	})
}

func TestRunInterruptedRecordsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t, t.TempDir())
		defer j.Close()
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		ctx, cancel := context.WithCancel(context.Background())
		inst.onConfirm = func(s commission.Step) {
			if s.Output == controller.OutputAlarmSounder {
				cancel()
			}
		}
		o := options(t, r, j, inst)
		_, err := commission.Run(ctx, o)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "stopped, nothing recorded")
		assert.Zero(t, j.Last())
		assert.NoDirExists(t, o.ReportDir)
		allOff(t, r)
	})
}

func TestRunNeedsAnOperator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t, t.TempDir())
		defer j.Close()
		r := newRoom(t, roomSpec())
		inst := newInstaller(t, r)
		for _, by := range []string{"", controller.OnSite, "Mario Rossi"} {
			o := options(t, r, j, inst)
			o.By = by
			_, err := commission.Run(context.Background(), o)
			require.ErrorContains(t, err, "is not an operator id", "by %q", by)
		}
		assert.Empty(t, inst.steps)
	})
}

// TestRecordTellsJournalDamage: a journal found damaged as the test
// opened it raises the journal fault roomd would have raised, in the same
// append as the test: opening repaired it, so roomd will not see it again.
func TestRecordTellsJournalDamage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		j := openJournal(t, dir)
		c, acts, err := controller.New(policy(), wallclock.Now())
		require.NoError(t, err)
		for i := range 20 {
			require.NoError(t, j.Append(journal.EntryOf(c, acts)))
			acts = c.Step(controller.InputChanged{At: wallclock.Now(), Input: controller.InputDoor, Level: controller.Level(1 + i%2)})
		}
		require.NoError(t, j.Close())
		segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
		require.NoError(t, err)
		require.NotEmpty(t, segs)
		data, err := os.ReadFile(segs[0])
		require.NoError(t, err)
		data[len(data)/2] ^= 0xff // one flipped byte in the middle of the segment
		require.NoError(t, os.WriteFile(segs[0], data, 0o600))

		j = openJournal(t, dir)
		defer j.Close()
		require.True(t, j.Recovered().Damaged(), "the flipped byte is found")
		r := newRoom(t, roomSpec())
		out, err := commission.Run(context.Background(), options(t, r, j, newInstaller(t, r)))
		require.NoError(t, err)
		var fault *controller.Alert
		for _, rec := range records(t, j) {
			if rec.Type == controller.EventAlertRaised && rec.Alert.Source == contract.SourceJournal {
				fault = rec.Alert
			}
		}
		require.NotNil(t, fault, "the damage is told")
		assert.Equal(t, controller.SeverityCritical, fault.Severity)
		assert.True(t, strings.HasPrefix(fault.Detail, "journal damaged"), fault.Detail)
		assert.True(t, out.Report.Passed)
	})
}

// TestRunRecordsLoopBaselines: a supervised loop that passes has its ohms
// at rest and acted on recorded as its baseline: in the report (text and
// JSON) and in the state directory, where roomd judges drift against it;
// never in the record that leaves the room.
func TestRunRecordsLoopBaselines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		j := openJournal(t, dir)
		spec := roomSpec()
		galaxy, err := eol.PresetTable(eol.PresetGalaxy, eol.SchemeDouble)
		require.NoError(t, err)
		spec.Inputs[controller.InputPanic][0] = device.LineSpec{Name: "bed", Loop: &device.Loop{
			ADC: device.ADCChannel{Bus: "1", Address: 0x48}, Table: galaxy, Divider: eol.Divider{PullUp: 2200, Supply: 3.3}}}
		r := newRoom(t, spec)
		o := options(t, r, j, newInstaller(t, r))
		o.StateDir = dir
		out, err := commission.Run(context.Background(), o)
		require.NoError(t, err)
		require.True(t, out.Report.Passed, "%+v", out.Report.Lines)
		var bed commission.LineReport
		for _, l := range out.Report.Lines {
			if l.Point == "bed" {
				bed = l
			}
		}
		require.NotNil(t, bed.Baseline, "the loop's baseline")
		assert.InDelta(t, 1000, bed.Baseline.Rest, 2)
		assert.InDelta(t, 2000, bed.Baseline.Acted, 3)
		assert.Contains(t, bed.Seen, "baseline 1,000 Ω at rest, 2,000 Ω acted on")

		saved, err := device.LoadBaselines(dir)
		require.NoError(t, err)
		assert.InDelta(t, 1000, saved.Loops["panic:bed"].Rest, 2)
		assert.InDelta(t, 2000, saved.Loops["panic:bed"].Acted, 3)
		assert.Equal(t, "installer-7", saved.By)
		assert.NotContains(t, saved.Loops, "panic:toilet", "a plain contact has no baseline")

		data, err := os.ReadFile(out.Files[1])
		require.NoError(t, err)
		assert.Contains(t, string(data), `"rest_ohms": 1000`)
		text, err := os.ReadFile(out.Files[0])
		require.NoError(t, err)
		assert.Contains(t, string(text), "baseline 1,000 Ω at rest")

		rec, err := json.Marshal(out.Record)
		require.NoError(t, err)
		assert.NotContains(t, string(rec), "1000", "no ohms in the record")
		assert.NotContains(t, string(rec), "Ω")
		require.NoError(t, j.Close())
	})
}
