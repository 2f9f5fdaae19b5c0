package testtier_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

// fakeTB records Skip and Fatal and ends its goroutine as the real ones
// do, so that a failure under test does not fail the test itself.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}

// run calls fn with a fake TB on a goroutine of its own and reports what
// happened, and whether fn returned (neither skipped nor failed).
func run(t *testing.T, fn func(testing.TB)) (f *fakeTB, returned bool) {
	t.Helper()
	f = &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
		returned = true
	}()
	<-done
	return f, returned
}

// env sets CI and ROOMD_SLOW for the test; "" unsets them in effect.
func env(t *testing.T, ci, slow string) {
	t.Setenv("CI", ci)
	t.Setenv(testtier.Var, slow)
}

func TestSlowSkipsUnlessAskedFor(t *testing.T) {
	if testing.Short() {
		env(t, "true", "1")
		f, returned := run(t, func(tb testing.TB) { testtier.Slow(tb, "boots a VM") })
		assert.False(t, returned, "-short skips the slow tier whatever the variables say")
		assert.Contains(t, f.skipped, "-short")
		return
	}
	env(t, "", "")
	f, returned := run(t, func(tb testing.TB) { testtier.Slow(tb, "boots a VM") })
	assert.False(t, returned)
	assert.Contains(t, f.skipped, "ROOMD_SLOW=1", "the message names the variable")
	assert.Contains(t, f.skipped, "boots a VM")
	assert.Empty(t, f.failed)
	assert.False(t, testtier.SlowTier())

	for _, tc := range []struct{ ci, slow string }{{"true", ""}, {"", "1"}, {"", "true"}, {"true", "1"}} {
		env(t, tc.ci, tc.slow)
		f, returned := run(t, func(tb testing.TB) { testtier.Slow(tb, "boots a VM") })
		assert.True(t, returned, "CI=%q ROOMD_SLOW=%q: the test runs", tc.ci, tc.slow)
		assert.Empty(t, f.skipped)
		assert.True(t, testtier.SlowTier())
	}

	for _, tc := range []struct{ ci, slow string }{{"false", "0"}, {"", "no"}, {"yes", ""}} {
		env(t, tc.ci, tc.slow)
		_, returned := run(t, func(tb testing.TB) { testtier.Slow(tb, "boots a VM") })
		assert.False(t, returned, "CI=%q ROOMD_SLOW=%q: skipped", tc.ci, tc.slow)
	}
}

// fakeProgram writes an executable name into a new directory.
func fakeProgram(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
	return dir
}

func TestToolReturnsThePath(t *testing.T) {
	env(t, "true", "")
	inPath := fakeProgram(t, "roomd-tool")
	t.Setenv("PATH", inPath)
	f, returned := run(t, func(tb testing.TB) {
		assert.Equal(t, filepath.Join(inPath, "roomd-tool"), testtier.Tool(tb, "roomd-tool", "roomd-tools"))
	})
	assert.True(t, returned, "skipped %q, failed %q", f.skipped, f.failed)

	// Outside PATH, in one of the directories given (as /usr/sbin).
	sbin := fakeProgram(t, "roomd-sbin")
	f, returned = run(t, func(tb testing.TB) {
		assert.Equal(t, filepath.Join(sbin, "roomd-sbin"), testtier.Tool(tb, "roomd-sbin", "roomd-tools", t.TempDir(), sbin))
	})
	assert.True(t, returned, "skipped %q, failed %q", f.skipped, f.failed)

	// A file that is not executable is not the program.
	plain := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(plain, "roomd-plain"), nil, 0o644))
	_, err := testtier.LookTool("roomd-plain", plain)
	assert.EqualError(t, err, "roomd-plain not found in PATH or "+plain)
}

func TestMissingToolSkipsOnADevelopersMachine(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, slow := range []string{"", "1"} { // ROOMD_SLOW runs the tier, but does not make tools required
		env(t, "", slow)
		f, returned := run(t, func(tb testing.TB) { testtier.Tool(tb, "mosquitto", "mosquitto", "/nonexistent/sbin") })
		assert.False(t, returned)
		assert.Empty(t, f.failed)
		assert.Contains(t, f.skipped, "mosquitto not found in PATH or /nonexistent/sbin")
		assert.Contains(t, f.skipped, "apt-get install mosquitto")
	}
}

func TestMissingToolFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	env(t, "true", "")
	f, returned := run(t, func(tb testing.TB) { testtier.Tool(tb, "lintian", "lintian") })
	assert.False(t, returned)
	assert.Empty(t, f.skipped, "never skipped under CI")
	assert.Contains(t, f.failed, "lintian not found in PATH")
	assert.Contains(t, f.failed, "apt-get install lintian")
	assert.Contains(t, f.failed, "CI=true")
}

func TestMissingOtherThings(t *testing.T) {
	env(t, "", "")
	f, returned := run(t, func(tb testing.TB) { testtier.Missing(tb, "no kernel at %s", "/k/Image") })
	assert.False(t, returned)
	assert.Contains(t, f.skipped, "no kernel at /k/Image")
	assert.Empty(t, f.failed)

	env(t, "true", "")
	f, returned = run(t, func(tb testing.TB) { testtier.Missing(tb, "no kernel at %s", "/k/Image") })
	assert.False(t, returned)
	assert.Contains(t, f.failed, "no kernel at /k/Image")
	assert.Empty(t, f.skipped)
}

func TestRoot(t *testing.T) {
	env(t, "true", "")
	f, returned := run(t, func(tb testing.TB) { testtier.Root(tb, "mounting a tmpfs") })
	if os.Geteuid() == 0 {
		assert.True(t, returned)
		return
	}
	assert.False(t, returned)
	assert.Contains(t, f.failed, "mounting a tmpfs needs root")
}
