package journal

import (
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

// smallTmpfs mounts a tmpfs of size bytes at a new directory, for the tests
// of a really full disk. It needs root (CAP_SYS_ADMIN): it skips without
// it, except under CI=true where it fails.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		testtier.Missing(t, "cannot mount a %s tmpfs at %s (needs root): %v", size, dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestFullDiskKeepsDeliveringAndLosesNothing fills a real 64 KiB tmpfs: the
// journal goes on taking entries in memory under a new epoch, the
// acknowledgement position is still recorded (in place, no new space), and
// once space is freed the backlog is written and survives a reopen.
func TestFullDiskKeepsDeliveringAndLosesNothing(t *testing.T) {
	dir := smallTmpfs(t, "64k")
	jdir := dir + "/journal"
	j, err := Open(jdir, Options{SegmentBytes: 8 << 10})
	require.NoError(t, err)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	var appended []*Entry
	var de *DiskError
	for i := 0; ; i++ {
		require.Less(t, i, 2000, "the disk never filled")
		e := s.next()
		appended = append(appended, e)
		if err := j.Append(e); err != nil {
			require.ErrorAs(t, err, &de)
			require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
			break
		}
	}
	durableEpoch := appended[0].Epoch
	for range 20 {
		e := s.next()
		appended = append(appended, e)
		require.ErrorAs(t, j.Append(e), &de)
	}
	last := appended[len(appended)-1]
	require.NotEqual(t, durableEpoch, last.Epoch, "entries that only live in memory carry a new epoch")
	got, err := j.Get(last.LSN)
	require.NoError(t, err, "visible at once, for delivery")
	require.Equal(t, last.Epoch, got.Epoch)

	// Delivery goes on: acknowledgements are recorded without new space.
	j.Ack(Pos{LSN: appended[3].LSN})
	require.NoError(t, j.Sync(), "the head is written in place on a full disk")

	// Space comes back (the tmpfs grows): the next append writes the
	// backlog, and a reopen finds every entry with the epoch it was
	// published under.
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=4m,mode=0700"))
	require.NoError(t, j.Append())
	require.NoError(t, j.Degraded())
	require.NoError(t, j.Close())
	j2, err := Open(jdir, Options{SegmentBytes: 8 << 10})
	require.NoError(t, err)
	defer j2.Close()
	require.False(t, j2.Recovered().Damaged(), "%v", j2.Recovered().Damage)
	for _, e := range appended {
		got, err := j2.Get(e.LSN)
		require.NoError(t, err, "entry %d", e.LSN)
		require.Equal(t, e.Epoch, got.Epoch, "entry %d", e.LSN)
	}
	require.Equal(t, last.Epoch, j2.Epoch(), "the epoch the backlog was published under goes on")
	require.Equal(t, Pos{LSN: appended[3].LSN}, j2.Acked())
}
