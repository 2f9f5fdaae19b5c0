package controller_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsOnlyStandardLibrary keeps the controller free of I/O
// dependencies: its non-test files import only the standard library, and
// none of the packages that reach the outside world or the clock.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	forbidden := []string{"os", "net", "io", "syscall", "log", "runtime", "unsafe", "math/rand", "crypto/rand"}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range parsed.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			first := strings.Split(path, "/")[0]
			require.NotContains(t, first, ".", "%s imports %s: the controller may import only the standard library", f, path)
			for _, bad := range forbidden {
				require.False(t, path == bad || strings.HasPrefix(path, bad+"/"), "%s imports %s: the controller does no I/O", f, path)
			}
		}
		checked++
	}
	require.Greater(t, checked, 3)
}

// TestNoClockReads keeps time.Now and timers out of the controller: time
// comes in with the events.
func TestNoClockReads(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src := readFile(t, f)
		for _, call := range []string{"time." + "Now(", "wallclock.", "time." + "Since(", "time." + "Until(", "time.Sleep(", "time.After(", "time.NewTimer(", "time.Tick("} {
			require.NotContains(t, src, call, "%s reads the clock", f)
		}
	}
}
