package arch

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/roomd/roomd/"

// foundation may be imported by every package but the controller, which
// reads no clock: wallclock is where the wall clock is read.
var foundation = []string{"wallclock"}

// allowed lists, for every package of the module, the module's packages its
// non-test files may import. Test files are free: a test may run a real room.
var allowed = map[string][]string{
	"arch":                  nil,
	"wallclock":             nil,
	"internal/testtier":     nil,
	"internal/proc":         nil,
	"buildinfo":             nil,
	"controller":            nil,
	"daemon/timebase":       nil,
	"mqttconn":              nil,
	"contract":              {"controller"},
	"contract/contracttest": nil,
	"access":                {"contract", "controller"},

	"device":                {"controller", "device/eol"},
	"device/eol":            nil,
	"device/devicetest":     {"controller", "device", "device/eol"},
	"device/gpio":           {"controller", "device"},
	"device/gpio/vmtest":    {"commission", "contract", "controller", "daemon", "device", "device/gpio", "journal"},
	"device/gpio/vmtest/vm": nil,
	"sim":                   {"contract", "controller", "device", "device/eol"},
	"journal":               {"contract", "controller"},
	"journal/migrate":       {"controller", "daemon/timebase", "journal"},
	"daemon":                {"contract", "controller", "daemon/timebase", "device", "journal"},
	"link":                  {"contract", "controller", "journal", "mqttconn"},
	"link/broker":           nil,
	"link/homeassistant":    {"contract", "controller"},
	"link/mqtttest":         {"access", "internal/proc", "internal/testtier", "link/broker"},
	"commission":            {"contract", "controller", "daemon", "daemon/timebase", "device", "device/eol", "journal"},
	"configs":               {"contract", "controller", "device/eol"},
	"configs/mosquitto":     nil,
	"configs/nats":          nil,
	"configs/prometheus":    nil,
	"packaging":             nil,
	"metrics":               nil,

	"room": {"configs", "contract", "controller", "daemon", "device", "device/eol", "device/gpio", "journal", "journal/migrate",
		"link", "link/homeassistant", "metrics", "mqttconn", "sim"},
	"room/roomtest": {"configs", "room", "sim"},
	"sim/scenario":  {"configs", "contract", "controller", "daemon", "journal", "room", "sim"},

	// The world of bridged sites, for configs/mosquitto's tests and
	// roombench: test support, which no production binary compiles in.
	"internal/siteworld":           {"access", "configs", "contract", "controller", "internal/testtier", "journal", "link/mqtttest", "room", "sim"},
	"internal/siteworld/worldtest": {"configs", "controller", "internal/siteworld"},

	"roomclient":     {"contract", "controller", "mqttconn"},
	"pager":          {"contract", "controller", "mqttconn", "pager/espa", "roomclient"},
	"pager/espa":     nil,
	"pager/espatest": nil,
	"board":          {"contract", "controller", "metrics", "roomclient"},

	"cmd/guardboard": {"board", "buildinfo", "configs", "contract", "controller", "daemon", "link/broker", "metrics", "mqttconn", "room", "roomclient"},
	"cmd/roombench":  {"access", "configs", "contract", "controller", "device", "internal/proc", "internal/siteworld", "journal", "link", "link/mqtttest", "room", "roomclient", "sim"},
	"cmd/roomd": {"access", "buildinfo", "commission", "configs", "contract", "controller", "daemon", "device", "journal", "link/broker", "metrics", "mqttconn",
		"room", "sim", "sim/scenario"},
	"cmd/roompager": {"buildinfo", "contract", "mqttconn", "pager", "pager/espa", "roomclient"},
	"cmd/visitctl":  {"access", "buildinfo", "contract", "controller", "link/homeassistant", "mqttconn", "roomclient"},
}

// neverReached: what a package must not compile in, directly or not. The
// clients of the contract carry nothing of a room.
var neverReached = map[string][]string{
	"contract":      {"journal", "daemon", "device", "sim", "room", "link", "mqttconn", "configs"},
	"access":        {"journal", "daemon", "device", "sim", "room", "link", "mqttconn", "configs"},
	"roomclient":    {"journal", "daemon", "device", "sim", "room", "link", "configs"},
	"board":         {"journal", "daemon", "device", "sim", "room", "link", "configs"},
	"pager":         {"journal", "daemon", "device", "sim", "room", "link", "configs"},
	"cmd/roompager": {"journal", "daemon", "device", "sim", "room", "link", "internal/siteworld", "link/mqtttest"},
	"cmd/visitctl":  {"journal", "daemon", "device", "sim", "room", "link", "internal/siteworld", "link/mqtttest"},
	"controller":    {"contract", "journal", "daemon", "device", "link", "mqttconn"},
	"daemon":        {"link", "mqttconn", "room", "roomclient", "board"},
	"journal":       {"daemon", "link", "room", "device", "sim", "mqttconn"},

	// The production binaries carry no test support.
	"cmd/roomd":      {"internal/siteworld", "link/mqtttest"},
	"cmd/guardboard": {"internal/siteworld", "link/mqtttest"},
}

// imports returns the module's packages (relative paths) with the module's
// packages each one's non-test files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	got := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "dist") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		var own []string
		for _, imp := range pkg.Imports {
			if after, ok := strings.CutPrefix(imp, module); ok {
				own = append(own, after)
			}
		}
		got[filepath.ToSlash(rel)] = own
		return nil
	})
	require.NoError(t, err)
	return got
}

// TestImportDirections: every package is in the table, and imports only
// what its row allows.
func TestImportDirections(t *testing.T) {
	got := imports(t)
	require.Greater(t, len(got), 25, "the walk found the module's packages")
	for pkg, imps := range got {
		row, known := allowed[pkg]
		if !assert.True(t, known, "package %s is not in arch's table: add its row, with what it may import", pkg) {
			continue
		}
		for _, imp := range imps {
			if slices.Contains(foundation, imp) && pkg != "controller" {
				continue
			}
			assert.True(t, slices.Contains(row, imp), "%s imports %s, which its row in arch's table does not allow", pkg, imp)
		}
	}
	for pkg := range allowed {
		_, ok := got[pkg]
		assert.True(t, ok, "arch's table names %s, which is not a package any more", pkg)
	}
}

// TestNeverReached: the transitive imports keep the layers apart.
func TestNeverReached(t *testing.T) {
	got := imports(t)
	for pkg, banned := range neverReached {
		seen := map[string]bool{}
		var walk func(p string)
		walk = func(p string) {
			for _, imp := range got[p] {
				if !seen[imp] {
					seen[imp] = true
					walk(imp)
				}
			}
		}
		walk(pkg)
		for _, b := range banned {
			assert.False(t, seen[b], "%s reaches %s, directly or not", pkg, b)
		}
	}
}

// clockReads are the calls TestWallClockReadInOnePlace looks for, spelt so
// that this file does not contain them.
var clockReads = []string{"time" + ".Now", "time" + ".Since(", "time" + ".Until("}

// TestWallClockReadInOnePlace: outside package wallclock no file, test or
// not, calls time.Now, time.Since or time.Until; so a run with the wall clock shifted (wallclock's
// timeshift tag) shifts every date the code and its tests read.
func TestWallClockReadInOnePlace(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "dist" || name == "wallclock") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "//")
			for _, call := range clockReads {
				if strings.Contains(code, call) {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s:%d calls %s; call wallclock's Now, Since or Until instead", rel, i+1, call)
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, checked, 100)
}
