//go:build linux && !race

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPagerPackage builds the roompager package and checks it as an
// installer meets it: its contents, lintian, and an install, a config
// check and a purge in a Debian root. Slow like TestDebianPackages.
func TestPagerPackage(t *testing.T) {
	testtier.Slow(t, "builds the packages and installs roompager into a Debian root")
	testtier.Tool(t, "dpkg-deb", "dpkg")
	debs := buildPackages(t, v1, "amd64")
	deb := debs["roompager"]["amd64"]

	t.Run("contents", func(t *testing.T) {
		field := func(name string) string {
			out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
			require.NoError(t, err)
			return strings.TrimSpace(string(out))
		}
		assert.Equal(t, "roompager", field("Package"))
		assert.Equal(t, v1, field("Version"))
		assert.Equal(t, "systemd-sysusers | passwd", field("Depends"))
		dir := t.TempDir()
		out, err := exec.Command("dpkg-deb", "--raw-extract", deb, dir).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "/etc/roompager/roompager.yaml\n", readFile(t, filepath.Join(dir, "DEBIAN", "conffiles")))
		for _, p := range []string{"usr/bin/roompager", "usr/lib/systemd/system/roompager.service",
			"usr/lib/sysusers.d/roompager.conf", "etc/roompager/roompager.yaml", "usr/share/man/man1/roompager.1.gz",
			"usr/share/doc/roompager/copyright", "usr/share/doc/roompager/changelog.gz", "usr/share/doc/roompager/pager.md",
			"usr/share/doc/roompager/roompager-help.txt", "usr/share/lintian/overrides/roompager"} {
			assert.FileExists(t, filepath.Join(dir, p))
		}
		unit := readFile(t, filepath.Join(dir, "usr/lib/systemd/system/roompager.service"))
		for _, s := range []string{"User=roompager", "SupplementaryGroups=dialout", "DevicePolicy=closed",
			"DeviceAllow=char-ttyUSB rw", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"} {
			assert.Contains(t, unit, s)
		}
		assert.NotContains(t, unit, "PrivateDevices=yes", "it would hide the serial port")
		// No path shared with the other packages.
		for _, other := range []string{"roomd", "guardboard"} {
			od := t.TempDir()
			out, err := exec.Command("dpkg-deb", "--extract", debs[other]["amd64"], od).CombinedOutput()
			require.NoError(t, err, "%s", out)
			of := fileList(t, od)
			for _, p := range fileList(t, dir) {
				assert.NotContains(t, of, p, "roompager and %s both hold %s", other, p)
			}
		}
	})

	t.Run("lintian", func(t *testing.T) {
		lintian := testtier.Tool(t, "lintian", "lintian")
		out, err := exec.Command(lintian, "--fail-on", "error,warning", "--no-tag-display-limit", deb).CombinedOutput()
		t.Logf("lintian says:\n%s", out)
		require.NoError(t, err, "lintian reports errors or warnings:\n%s", out)
	})

	t.Run("installed", func(t *testing.T) {
		testtier.Root(t, "installing a package into a Debian root")
		for _, tool := range []struct{ name, pkg string }{{"chroot", "coreutils"}, {"mount", "mount"}, {"tar", "tar"}, {"systemd-analyze", "systemd"}} {
			testtier.Tool(t, tool.name, tool.pkg)
		}
		r := debianRoot(t)
		out := r.dpkgInstall(deb)
		assert.Contains(t, out, "roompager: installed but not enabled.")
		assert.Equal(t, "roompager "+v1+"\n", r.must("roompager", "version"))
		u, ok := r.user("roompager")
		require.True(t, ok, "user roompager exists")
		assert.Equal(t, "/usr/sbin/nologin", u.shell)
		_, members, ok := r.group("dialout")
		require.True(t, ok)
		assert.Contains(t, members, "roompager", "roompager may open the serial port")
		assert.False(t, r.enabled("roompager.service"), "not enabled before it is configured")
		// The shipped config names what only the installer knows.
		out, err := r.run("roompager", "check-config", "/etc/roompager/roompager.yaml")
		require.Error(t, err)
		for _, f := range []string{"gateway:", "mqtt.broker:", "serial.device:", "routes:"} {
			assert.Contains(t, out, f)
		}
		// Filled in, it passes.
		cfg := readFile(t, r.path("etc/roompager/roompager.yaml"))
		cfg = strings.Replace(cfg, "gateway:\n", "gateway: pager-1\n", 1)
		cfg = strings.Replace(cfg, "  broker:  ", "  broker: tcp://127.0.0.1:1883  ", 1)
		cfg = strings.Replace(cfg, "  device:  ", "  device: /dev/ttyUSB0  ", 1)
		cfg = strings.Replace(cfg, "routes:\n", "routes:\n  - addresses: [\"900\"]\n", 1)
		cfg = strings.Replace(cfg, "  password_file: /etc/roompager/mqtt-password\n", "", 1)
		require.NoError(t, os.WriteFile(r.path("etc/roompager/roompager.yaml"), []byte(cfg), 0o644))
		out = r.must("roompager", "check-config", "/etc/roompager/roompager.yaml")
		assert.Contains(t, out, "gateway: pager-1")
		// systemd accepts the unit as installed.
		cmd := exec.Command("systemd-analyze", "verify", "--root="+r.dir, "roompager.service")
		cmd.Env = append(os.Environ(), "MANPATH="+r.path("usr/share/man"))
		vout, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s", vout)
		out = r.must("dpkg", "--purge", "roompager")
		assert.NoFileExists(t, r.path("etc/roompager/roompager.yaml"))
		assert.NoFileExists(t, r.path("usr/bin/roompager"))
	})
}
