package timebase

import (
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSources is a hand-driven clock source.
type fakeSources struct {
	wall   time.Time
	boot   time.Duration
	bootID string
	idErr  error
	synced bool
}

func (f *fakeSources) Synced() bool        { return f.synced }
func (f *fakeSources) Wall() time.Time     { return f.wall }
func (f *fakeSources) Boot() time.Duration { return f.boot }
func (f *fakeSources) BootID() (string, error) {
	if f.idErr != nil {
		return "", f.idErr
	}
	return f.bootID, nil
}

// advance moves both clocks forward by d, as real time passing would.
func (f *fakeSources) advance(d time.Duration) {
	f.wall = f.wall.Add(d)
	f.boot += d
}

var (
	buildDate = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	realNow   = time.Date(2025, 9, 3, 14, 0, 0, 0, time.UTC)
)

func TestFirstStartUsesPlausibleWall(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: 30 * time.Second, bootID: "boot-a"}
	c, n := Resume(nil, time.Time{}, src, buildDate)
	assert.Equal(t, NoticeNone, n)
	assert.True(t, realNow.Equal(c.Now()))
	src.advance(90 * time.Second)
	assert.True(t, realNow.Add(90*time.Second).Equal(c.Now()))
	assert.Equal(t, Anchor{BootID: "boot-a", Boot: 30 * time.Second, At: realNow}, c.Anchor())
}

func TestFirstStartImplausibleWall(t *testing.T) {
	src := &fakeSources{wall: time.Unix(0, 0).UTC(), boot: 5 * time.Second, bootID: "boot-a"}
	c, n := Resume(nil, time.Time{}, src, buildDate)
	assert.Equal(t, NoticeWallImplausible, n)
	assert.True(t, buildDate.Equal(c.Now()))
}

func TestSameBootContinuesExactly(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: 100 * time.Second, bootID: "boot-a"}
	c1, n := Resume(nil, time.Time{}, src, buildDate)
	require.Equal(t, NoticeNone, n)
	src.advance(10 * time.Minute)
	cp := c1.Checkpoint()
	// The wall clock is stepped by NTP while the daemon is down; it must not matter.
	src.advance(7 * time.Second)
	src.wall = src.wall.Add(-3 * time.Hour)

	// Persist through JSON as the daemon does.
	raw, err := json.Marshal(cp)
	require.NoError(t, err)
	var got Checkpoint
	require.NoError(t, json.Unmarshal(raw, &got))

	c2, n := Resume(&got.Anchor, got.Axis, src, buildDate)
	assert.Equal(t, NoticeNone, n)
	want := realNow.Add(10*time.Minute + 7*time.Second)
	assert.True(t, want.Equal(c2.Now()), "got %v want %v", c2.Now(), want)
	assert.Equal(t, c1.Anchor().Boot, c2.Anchor().Boot)
	assert.True(t, c1.Anchor().At.Equal(c2.Anchor().At))
}

func TestRebootWithGoodWall(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: 100 * time.Second, bootID: "boot-a"}
	c1, _ := Resume(nil, time.Time{}, src, buildDate)
	src.advance(time.Hour)
	cp := c1.Checkpoint()

	// Reboot: boot clock restarts, new boot id, wall clock correct (NTP synced).
	src.bootID, src.boot = "boot-b", 20*time.Second
	src.wall = realNow.Add(time.Hour + 5*time.Minute)
	c2, n := Resume(&cp.Anchor, cp.Axis, src, buildDate)
	assert.Equal(t, NoticeNone, n)
	assert.True(t, src.wall.Equal(c2.Now()))
	assert.Equal(t, "boot-b", c2.Anchor().BootID)
	assert.Equal(t, 20*time.Second, c2.Anchor().Boot)
}

func TestRebootWithImplausibleWall(t *testing.T) {
	for name, wall := range map[string]time.Time{
		"1970":             time.Unix(0, 0).UTC(),
		"before build":     buildDate.Add(-time.Hour),
		"before last axis": realNow.Add(30 * time.Minute), // plausible date, but before the last persisted axis time
	} {
		t.Run(name, func(t *testing.T) {
			src := &fakeSources{wall: realNow, boot: 100 * time.Second, bootID: "boot-a"}
			c1, _ := Resume(nil, time.Time{}, src, buildDate)
			src.advance(time.Hour)
			cp := c1.Checkpoint()

			src.bootID, src.boot, src.wall = "boot-b", 15*time.Second, wall
			c2, n := Resume(&cp.Anchor, cp.Axis, src, buildDate)
			assert.Equal(t, NoticeWallImplausible, n)
			assert.True(t, n.Has(NoticeWallImplausible))
			assert.True(t, cp.Axis.Equal(c2.Now()), "resumes from the last persisted axis time")
			src.advance(2 * time.Minute)
			assert.Equal(t, 2*time.Minute, c2.Now().Sub(cp.Axis))
		})
	}
}

func TestBootIDUnreadable(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: 100 * time.Second, bootID: "boot-a"}
	c1, _ := Resume(nil, time.Time{}, src, buildDate)
	src.advance(time.Minute)
	cp := c1.Checkpoint()

	src.idErr = errors.New("no /proc")
	c2, n := Resume(&cp.Anchor, cp.Axis, src, buildDate)
	assert.Equal(t, NoticeBootIDUnreadable, n)
	assert.True(t, src.wall.Equal(c2.Now()), "treated as a reboot with a plausible wall clock")
	assert.Empty(t, c2.Anchor().BootID)

	// Unreadable and a bad wall clock: both flags.
	src.wall = time.Unix(0, 0)
	c3, n := Resume(&cp.Anchor, cp.Axis, src, buildDate)
	assert.Equal(t, NoticeBootIDUnreadable|NoticeWallImplausible, n)
	assert.Equal(t, "wall-clock-implausible|boot-id-unreadable", n.String())
	assert.True(t, cp.Axis.Equal(c3.Now()))

	// An anchor without boot id never counts as the same boot.
	src.idErr = nil
	src.bootID = ""
	_, n = Resume(&Anchor{BootID: "", Boot: 0, At: realNow}, realNow, src, buildDate)
	assert.True(t, n.Has(NoticeBootIDUnreadable))
}

func TestSameBootButBootClockInconsistent(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: time.Hour, bootID: "boot-a"}
	prev := &Anchor{BootID: "boot-a", Boot: 2 * time.Hour, At: realNow}
	c, n := Resume(prev, realNow.Add(time.Minute), src, buildDate)
	assert.Equal(t, NoticeBootClockInconsistent, n)
	assert.True(t, realNow.Add(time.Minute).Equal(c.Now()))

	// Last axis time later than the anchor implies.
	prev = &Anchor{BootID: "boot-a", Boot: 0, At: realNow}
	c, n = Resume(prev, realNow.Add(2*time.Hour), src, buildDate)
	assert.Equal(t, NoticeBootClockInconsistent, n)
	assert.True(t, realNow.Add(2*time.Hour).Equal(c.Now()))
}

func TestWallJumpsDoNotChangeAxisDurations(t *testing.T) {
	src := &fakeSources{wall: time.Unix(0, 0).UTC(), boot: 10 * time.Second, bootID: "boot-a"}
	c, _ := Resume(nil, time.Time{}, src, buildDate)
	start := c.Now()

	src.advance(5 * time.Minute)
	src.wall = realNow // NTP steps the wall clock forward by 55 years
	assert.Equal(t, 5*time.Minute, c.Now().Sub(start))

	src.advance(time.Minute)
	src.wall = src.wall.Add(-2 * time.Hour) // and back again
	assert.Equal(t, 6*time.Minute, c.Now().Sub(start))
}

func TestNowNeverBeforeAnchor(t *testing.T) {
	src := &fakeSources{wall: realNow, boot: time.Hour, bootID: "boot-a"}
	c, _ := Resume(nil, time.Time{}, src, buildDate)
	src.boot = time.Minute // impossible, but must not move the axis backwards
	assert.True(t, realNow.Equal(c.Now()))
}

func TestNoticeString(t *testing.T) {
	assert.Equal(t, "none", NoticeNone.String())
	assert.Equal(t, "wall-clock-implausible", NoticeWallImplausible.String())
	assert.Equal(t, "boot-clock-inconsistent", NoticeBootClockInconsistent.String())
	assert.Equal(t, "unknown", Notice(1<<7).String())
}

func TestSystem(t *testing.T) {
	var s System
	b1 := s.Boot()
	b2 := s.Boot()
	assert.Positive(t, b1)
	assert.GreaterOrEqual(t, b2, b1)
	assert.False(t, s.Wall().IsZero())
	id, err := s.BootID()
	if runtime.GOOS == "linux" {
		require.NoError(t, err)
		assert.Len(t, id, 36)
		c, _ := Resume(nil, time.Time{}, s, buildDate)
		id2, _ := s.BootID()
		assert.Equal(t, id2, c.Anchor().BootID)
	} else {
		assert.Error(t, err)
	}
}
