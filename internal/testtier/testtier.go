// Package testtier sorts roomd's tests into two tiers, and is the one place
// that decides whether a test whose tool is missing skips or fails.
//
// The fast tier is what go test ./... runs on any machine: it needs nothing
// but Go, and takes about a minute. The slow tier is the integration tests
// that build and install the Debian packages, run programs under qemu, drive
// chromium, build and run roomd or visitctl binaries in a terminal, run the
// benchmark smoke run, or start a world of mosquitto brokers: they run when
// CI=true, or when ROOMD_SLOW=1 asks for them on a developer's machine.
//
// A test that needs something from outside Go (mosquitto, chromium, lintian,
// root, a kernel image, node and its modules) asks for it here: when it is
// missing the test is skipped, but under CI=true it fails, because there
// everything is installed (.ci/install-deps) and a missing piece is a broken
// pipeline, not a bare machine.
package testtier

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Var is the environment variable that runs the slow tier outside CI:
// ROOMD_SLOW=1 go test ./...
const Var = "ROOMD_SLOW"

// CI reports whether the tests run in CI (CI=true): the slow tier runs, and
// a missing tool fails the test instead of skipping it.
func CI() bool { return isTrue(os.Getenv("CI")) }

// SlowTier reports whether the slow tier runs: under CI=true, or when
// ROOMD_SLOW is set to a true value (1, true).
func SlowTier() bool { return CI() || isTrue(os.Getenv(Var)) }

func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Slow marks t as a test of the slow tier; call it first. what says why the
// test is slow ("builds three packages and installs one into a Debian
// root"). Unless the slow tier runs (CI=true or ROOMD_SLOW=1), the test is
// skipped with a message that names the variable. -short skips it too.
func Slow(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow tier (" + what + "): skipped with -short")
	}
	if !SlowTier() {
		t.Skip("slow tier (" + what + "): runs with " + Var + "=1 go test, or under CI=true")
	}
}

// Tool returns the path of the program name, looked up in PATH and then in
// dirs (Debian installs some programs in /usr/sbin, which a non-root PATH
// often lacks). When it is not found the test is skipped, or fails under
// CI=true; debianPackage names the package that provides it, for the
// message.
func Tool(t testing.TB, name, debianPackage string, dirs ...string) string {
	t.Helper()
	p, err := LookTool(name, dirs...)
	if err != nil {
		Missing(t, "%v; install it with `apt-get install %s` (or run .ci/install-deps)", err, debianPackage)
	}
	return p
}

// LookTool finds the program name in PATH or in one of dirs, for callers
// that report a missing program themselves.
func LookTool(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	where := "PATH"
	if len(dirs) > 0 {
		where += " or " + strings.Join(dirs, ", ")
	}
	return "", fmt.Errorf("%s not found in %s", name, where)
}

// Root requires that the test runs as root (to mount a tmpfs, to chroot):
// without it the test is skipped, or fails under CI=true. what says what
// needs root.
func Root(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "%s needs root", what)
	}
}

// Missing reports that something the test needs is not there (a kernel
// image, node's modules, a tmpfs that would not mount): the test is skipped,
// or fails under CI=true. The message should say how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatal(msg + " (CI=true: a missing piece fails the test)")
	}
	t.Skip(msg + " (skipped; under CI=true this fails)")
}
