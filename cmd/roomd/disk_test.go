package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// stateTmpfs mounts a tmpfs of size for a state directory (root only).
func stateTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		testtier.Missing(t, "cannot mount a tmpfs at %s (needs root): %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// ballast fills the file system at dir (ENOSPC from then on) and returns
// the file that frees it again.
func ballast(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return path
		}
	}
}

func alertRaised(kind string) func(m paho.Message) bool {
	return func(m paho.Message) bool {
		var e contract.EventMessage
		return json.Unmarshal(m.Payload(), &e) == nil && e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == kind
	}
}

func journalFault(detail string) func(m paho.Message) bool {
	return func(m paho.Message) bool {
		var e contract.EventMessage
		return json.Unmarshal(m.Payload(), &e) == nil && e.Type == "alert_raised" && e.Alert != nil &&
			e.Alert.Source == contract.SourceJournal && strings.Contains(e.Alert.Detail, detail)
	}
}

// TestProcessFullDiskThenKill: the state directory's disk is full; a panic
// is pressed (published from memory) and roomd is killed. The restarted
// roomd knows what it may have forgotten (a critical journal fault saying
// so) and never hands out that panic's alert id again.
func TestProcessFullDiskThenKill(t *testing.T) {
	bin := buildRoomd(t)
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-d"
	obs := observe(t, url, base, room)
	stateDir := stateTmpfs(t, "2m")
	cfg := writeSimConfig(t, url, room, stateDir)

	p, logs := startProcess(t, bin, cfg)
	obs.next("events", isEvent("controller_started"))
	rep := obs.command(base, room, contract.CommandMessage{RequestID: "d-1", Action: "start_visit", VisitID: "v-d", Duration: "1h"})
	require.True(t, rep.OK, "%+v\n%s", rep.Error, logs.String())
	free := ballast(t, stateDir)
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":true}`))
	first := event(t, obs.next("alerts", alertRaised("panic")))
	obs.next("alerts", func(m paho.Message) bool {
		e := event(t, m)
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournalWrite
	})
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":false}`))
	require.NoError(t, p.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()
	require.NoError(t, os.Remove(free))

	p2, logs2 := startProcess(t, bin, cfg)
	f := event(t, obs.next("alerts", journalFault("may have forgotten")))
	assert.Equal(t, "critical", f.Alert.Severity, "%s", logs2.String())
	assert.Greater(t, f.Seq, first.Seq)
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":true}`))
	again := event(t, obs.next("alerts", func(m paho.Message) bool {
		e := event(t, m)
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "panic" && e.Seq > f.Seq
	}))
	assert.NotEqual(t, first.Alert.ID, again.Alert.ID, "an alert id is never handed out twice")
	require.NoError(t, p2.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p2.Wait())
}

// ext4Dir mounts a small ext4 file system (a loop device, errors=remount-ro
// as a Pi's root is mounted) and returns its mount point, a function that
// makes the kernel find an error in it (it turns read-only, as after a
// failing card's I/O error), and one that repairs it (unmount, e2fsck,
// mount again at the same place).
func ext4Dir(t *testing.T) (dir string, fail, repair func()) {
	t.Helper()
	testtier.Tool(t, "mkfs.ext4", "e2fsprogs")
	img := filepath.Join(t.TempDir(), "card.img")
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 16<<20))
	out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput()
	require.NoError(t, err, "%s", out)
	mount := func() {
		out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, dir).CombinedOutput()
		if err != nil {
			testtier.Missing(t, "cannot mount an ext4 image (needs root and loop devices): %v: %s", err, out)
		}
	}
	mount()
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	fail = func() {
		dev, err := exec.Command("findmnt", "-n", "-o", "SOURCE", dir).Output()
		require.NoError(t, err)
		name := filepath.Base(strings.TrimSpace(string(dev)))
		require.NoError(t, os.WriteFile(filepath.Join("/sys/fs/ext4", name, "trigger_fs_error"), []byte("roomd test\n"), 0o200))
	}
	repair = func() {
		out, err := exec.Command("umount", dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
		_ = exec.Command("e2fsck", "-fy", img).Run()
		mount()
	}
	return dir, fail, repair
}

// TestProcessReadOnlyDiskThenKill: the state directory's ext4 turns
// read-only under roomd after an error; a panic is published from memory,
// roomd is killed, the file system is repaired: the restart says what may
// have been forgotten and gives the next panic a new alert id.
func TestProcessReadOnlyDiskThenKill(t *testing.T) {
	bin := buildRoomd(t)
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-r"
	obs := observe(t, url, base, room)
	stateDir, fail, repair := ext4Dir(t)
	cfg := writeSimConfig(t, url, room, stateDir)

	p, _ := startProcess(t, bin, cfg)
	obs.next("events", isEvent("controller_started"))
	rep := obs.command(base, room, contract.CommandMessage{RequestID: "r-1", Action: "start_visit", VisitID: "v-r", Duration: "1h"})
	require.True(t, rep.OK)
	fail()
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":true}`))
	first := event(t, obs.next("alerts", alertRaised("panic")))
	require.NoError(t, p.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()
	repair()

	p2, logs2 := startProcess(t, bin, cfg)
	f := event(t, obs.next("alerts", journalFault("may have forgotten")))
	assert.Equal(t, "critical", f.Alert.Severity, "%s", logs2.String())
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":false}`))
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":true}`))
	again := event(t, obs.next("alerts", func(m paho.Message) bool {
		e := event(t, m)
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "panic" && e.Seq > f.Seq
	}))
	assert.NotEqual(t, first.Alert.ID, again.Alert.ID)
	require.NoError(t, p2.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p2.Wait())
}

// TestProcessJournalDeletedWhileRunning: the journal directory is deleted
// under a running roomd. Within seconds a critical journal fault says so,
// and a restart resumes the visit in the same epoch instead of starting
// afresh at seq 1.
func TestProcessJournalDeletedWhileRunning(t *testing.T) {
	bin := buildRoomd(t)
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-x"
	obs := observe(t, url, base, room)
	stateDir := t.TempDir()
	cfg := writeSimConfig(t, url, room, stateDir)

	p, logs := startProcess(t, bin, cfg)
	obs.next("events", isEvent("controller_started"))
	rep := obs.command(base, room, contract.CommandMessage{RequestID: "x-1", Action: "start_visit", VisitID: "v-x", Duration: "1h"})
	require.True(t, rep.OK)
	started := event(t, obs.next("events", isEvent("visit_started")))
	require.NoError(t, os.RemoveAll(filepath.Join(stateDir, "journal")))
	at := wallclock.Now()
	f := event(t, obs.next("alerts", journalFault("deleted")))
	assert.Less(t, wallclock.Since(at), 5*time.Second, "noticed within seconds\n%s", logs.String())
	assert.Equal(t, "critical", f.Alert.Severity)
	require.NoError(t, p.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()

	p2, _ := startProcess(t, bin, cfg)
	resumed := event(t, obs.next("events", func(m paho.Message) bool {
		e := event(t, m)
		return e.Type == "controller_started" && e.Seq > f.Seq
	}))
	assert.Equal(t, started.Epoch, resumed.Epoch, "the same epoch, not a fresh journal")
	require.NotNil(t, resumed.Resumed)
	assert.True(t, *resumed.Resumed, "the visit's state was rewritten, not lost")
	require.NoError(t, p2.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p2.Wait())
}

// TestProcessKillStormOnAFillingDisk kills roomd at random moments while
// its disk fills and empties. Whatever happens, it never starts again at
// seq 1 in the same epoch, no key ever names two records, and a running
// visit is never lost without a fault saying the room may have forgotten.
func TestProcessKillStormOnAFillingDisk(t *testing.T) {
	bin := buildRoomd(t)
	m := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	const base, room = "visitrooms", "room-s"
	stateDir := stateTmpfs(t, "1m")
	cfg := writeSimConfig(t, m.URL(), room, stateDir)
	c := newKeyedConsumer(t, m.URL(), base+"/"+room+"/#")
	obs := observe(t, m.URL(), base, room)
	seed := uint64(wallclock.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	var starts []contract.EventMessage
	var forgot int
	var free string
	for k := range 15 {
		p, logs := startProcess(t, bin, cfg)
		s := event(t, obs.next("events", func(m paho.Message) bool {
			e := event(t, m)
			return e.Type == "controller_started" && (len(starts) == 0 || e.Seq > starts[len(starts)-1].Seq)
		}))
		starts = append(starts, s)
		if k == 0 {
			rep := obs.command(base, room, contract.CommandMessage{RequestID: "s-1", Action: "start_visit", VisitID: "v-s", Duration: "2h"})
			require.True(t, rep.OK, "%s", logs.String())
		}
		for i := range 3 + rng.IntN(6) {
			obs.publish(base+"/"+room+"/sim/set", fmt.Appendf(nil, `{"door":%q}`, []string{"open", "closed"}[i%2]))
		}
		switch {
		case free == "" && rng.IntN(2) == 0:
			free = ballast(t, stateDir)
		case free != "" && rng.IntN(2) == 0:
			require.NoError(t, os.Remove(free))
			free = ""
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond) // the random moment
		require.NoError(t, p.Process.Signal(syscall.SIGKILL))
		_ = p.Wait()
	}
	if free != "" {
		require.NoError(t, os.Remove(free))
	}
	p, plogs := startProcess(t, bin, cfg)
	plogs.waitFor(t, "room running", 30*time.Second)
	st := obs.next("state", func(m paho.Message) bool {
		var s contract.StateMessage
		return json.Unmarshal(m.Payload(), &s) == nil && s.Seq > starts[len(starts)-1].Seq
	})
	var sm contract.StateMessage
	require.NoError(t, json.Unmarshal(st.Payload(), &sm))
	for {
		select {
		case m := <-obs.ch:
			obs.seen = append(obs.seen, m)
			continue
		default:
		}
		break
	}
	for _, m := range obs.seen {
		if m != nil && journalFault("may have forgotten")(m) {
			forgot++
		}
	}
	if sm.Visit == nil {
		assert.Positive(t, forgot, "the visit is gone: only with a fault saying the room may have forgotten")
	}
	for i := 1; i < len(starts); i++ {
		assert.False(t, starts[i].Epoch == starts[0].Epoch && starts[i].Seq <= starts[0].Seq,
			"start %d went back to seq %d in the first epoch", i, starts[i].Seq)
		assert.Greater(t, starts[i].Seq, starts[i-1].Seq, "seqs only grow, across epochs")
	}
	require.NoError(t, p.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait())
	t.Logf("%d starts, %d records, %d faults saying the room may have forgotten, visit running at the end: %v",
		len(starts), c.count(), forgot, sm.Visit != nil)
}
