//go:build linux && !race

// These tests drive dpkg, lintian, debootstrap and mosquitto; their own code
// only orders the steps. Under the race detector (go test -race ./...) they
// would repeat the same minutes of work and find nothing new, so they run in
// the plain CI=true (or ROOMD_SLOW=1) go test ./... alone.

package packaging

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// Two versions of the same tree, for the upgrade.
const (
	v1   = "0.0.1~test.1"
	v2   = "0.0.1~test.2"
	room = "pkg-room"
)

// waitLimit bounds every wait for something to happen; reaching it fails
// the test (nothing here sleeps).
const waitLimit = 90 * time.Second

// packageNames are the packages .ci/package.sh builds for each architecture.
var packageNames = []string{"roomd", "guardboard", "roompager"}

// buildPackages runs .ci/package.sh for version and archs and returns the
// packages by name and architecture.
func buildPackages(t *testing.T, version, archs string) map[string]map[string]string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("bash", "../.ci/package.sh")
	cmd.Env = append(os.Environ(), "ROOMD_VERSION="+version, "ROOMD_ARCHS="+archs, "ROOMD_DIST="+dist)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := wallclock.Now()
	out, err := cmd.Output()
	require.NoError(t, err, "package.sh: %s", stderr.String())
	t.Logf("package.sh built %s for %s in %s", version, archs, wallclock.Since(start).Round(100*time.Millisecond))
	var want, got []string
	debs := map[string]map[string]string{}
	for _, name := range packageNames {
		debs[name] = map[string]string{}
		for _, arch := range strings.Fields(archs) {
			p := filepath.Join(dist, name+"_"+version+"_"+arch+".deb")
			want = append(want, p)
			debs[name][arch] = p
		}
	}
	got = strings.Fields(string(out))
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got, "package.sh prints the path of every package it built")
	return debs
}

func TestDebianPackages(t *testing.T) {
	testtier.Slow(t, "builds three packages and installs one into a Debian root")
	testtier.Tool(t, "dpkg-deb", "dpkg")
	first := buildPackages(t, v1, "amd64 arm64 armhf")
	second := buildPackages(t, v2, "amd64")

	t.Run("contents", func(t *testing.T) {
		for arch, deb := range first["roomd"] {
			t.Run(arch, func(t *testing.T) { checkContents(t, arch, deb) })
		}
	})
	t.Run("lintian", func(t *testing.T) {
		lintian := testtier.Tool(t, "lintian", "lintian")
		var debs []string
		for _, name := range packageNames {
			for _, arch := range []string{"amd64", "arm64", "armhf"} {
				debs = append(debs, first[name][arch])
			}
		}
		start := wallclock.Now()
		out, err := exec.Command(lintian, append([]string{"--fail-on", "error,warning", "--no-tag-display-limit"},
			debs...)...).CombinedOutput()
		t.Logf("lintian took %s; it says:\n%s", wallclock.Since(start).Round(100*time.Millisecond), out)
		require.NoError(t, err, "lintian reports errors or warnings:\n%s", out)
		for _, line := range strings.Split(string(out), "\n") {
			assert.False(t, strings.HasPrefix(line, "E:") || strings.HasPrefix(line, "W:"), "%s", line)
		}
	})
	t.Run("installed", func(t *testing.T) { testInstalled(t, first["roomd"]["amd64"], second["roomd"]["amd64"]) })

	t.Run("guardboard contents", func(t *testing.T) {
		for arch, deb := range first["guardboard"] {
			t.Run(arch, func(t *testing.T) { checkGuardboardContents(t, arch, deb, first["roomd"][arch]) })
		}
	})
	t.Run("guardboard installed", func(t *testing.T) {
		testGuardboardInstalled(t, first["guardboard"]["amd64"], second["guardboard"]["amd64"])
	})
}

// checkContents reads one package as dpkg sees it.
func checkContents(t *testing.T, arch, deb string) {
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "roomd", field("Package"))
	assert.Equal(t, v1, field("Version"))
	assert.Equal(t, arch, field("Architecture"))
	assert.Equal(t, "systemd-sysusers | passwd", field("Depends"), "what the postinst makes the user with")

	dir := t.TempDir()
	out, err := exec.Command("dpkg-deb", "--raw-extract", deb, dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	conffiles, err := os.ReadFile(filepath.Join(dir, "DEBIAN", "conffiles"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/roomd/roomd.yaml\n", string(conffiles), "the config is the only conffile")
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(dir, "DEBIAN", s))
		if assert.NoError(t, err, s) {
			assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), s)
		}
	}

	for _, p := range []string{
		"usr/bin/roomd", "usr/bin/visitctl",
		"usr/lib/systemd/system/roomd.service", "usr/lib/sysusers.d/roomd.conf", "usr/lib/tmpfiles.d/roomd.conf",
		"etc/roomd/roomd.yaml",
		"usr/share/roomd/mosquitto/mosquitto.conf", "usr/share/roomd/mosquitto/acl", "usr/share/roomd/mosquitto/site.yaml",
		"usr/share/roomd/systemd/roomd-watchdog.conf",
		"usr/share/man/man1/roomd.1.gz", "usr/share/man/man1/visitctl.1.gz",
		"usr/share/doc/roomd/roomd-help.txt", "usr/share/doc/roomd/visitctl-help.txt",
		"usr/share/doc/roomd/copyright", "usr/share/doc/roomd/changelog.gz",
		"usr/share/doc/roomd/examples/roomd.example.yaml", "usr/share/doc/roomd/wiring.md",
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if assert.NoError(t, err, "the package holds /%s", p) {
			assert.True(t, fi.Mode().IsRegular(), p)
		}
	}
	for _, name := range configs.PresetNames() {
		assert.FileExists(t, filepath.Join(dir, "usr/share/roomd/policies", name+".yaml"), "every preset roomd knows")
	}
	help, err := os.ReadFile(filepath.Join(dir, "usr/share/doc/roomd/roomd-help.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(help), "roomd check-config FILE", "generated from roomd help")

	unit, err := os.ReadFile(filepath.Join(dir, "usr/lib/systemd/system/roomd.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "\nExecStart=/usr/bin/roomd run --config /etc/roomd/roomd.yaml\n")

	// The binaries are for the package's architecture, static, and carry
	// the package's version; armhf is ARMv6, for every Pi from the Zero.
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}[arch]
	for _, bin := range []string{"roomd", "visitctl"} {
		path := filepath.Join(dir, "usr/bin", bin)
		f, err := elf.Open(path)
		require.NoError(t, err)
		assert.Equal(t, machine, f.Machine, bin)
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		assert.Empty(t, libs, "%s is static", bin)
		require.NoError(t, f.Close())

		bi, err := buildinfo.ReadFile(path)
		require.NoError(t, err)
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		assert.Equal(t, "0", settings["CGO_ENABLED"], bin)
		if arch == "armhf" {
			assert.Equal(t, "6", settings["GOARM"], bin)
		}

		// It runs and reports the package's version: natively, or on the
		// Pis' own CPUs under qemu (ARM1176 of the Pi Zero and Pi 1,
		// Cortex-A53 of the Pi 3).
		var run []string
		switch arch {
		case "amd64":
			run = []string{path}
		case "arm64":
			run = []string{testtier.Tool(t, "qemu-aarch64", "qemu-user"), "-cpu", "cortex-a53", path}
		case "armhf":
			run = []string{testtier.Tool(t, "qemu-arm", "qemu-user"), "-cpu", "arm1176", path}
		}
		out, err := exec.Command(run[0], append(run[1:], "--version")...).CombinedOutput()
		require.NoError(t, err, "%s --version: %s", bin, out)
		assert.Equal(t, bin+" "+v1+"\n", string(out))
	}
}

// root is a Debian root made by debootstrap, with the commands run in it.
// t is the (sub)test now using it; owner the test that made it, which
// outlives the rooms started in it.
type root struct {
	t, owner *testing.T
	dir      string
}

// debianRoot unpacks the cached Debian root (.ci/debroot.sh) into a new
// directory, with /proc mounted as a real system has it.
func debianRoot(t *testing.T) *root {
	t.Helper()
	cmd := exec.Command("bash", "../.ci/debroot.sh")
	cmd.Env = append(os.Environ(), "ROOMD_DEBROOT_NO_INSTALL=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := wallclock.Now()
	out, err := cmd.Output()
	if err != nil {
		testtier.Missing(t, "no Debian root from .ci/debroot.sh (%v): %s", err, stderr.String())
	}
	tarball := strings.TrimSpace(string(out))
	dir := t.TempDir()
	untar, err := exec.Command("tar", "--numeric-owner", "-xf", tarball, "-C", dir).CombinedOutput()
	require.NoError(t, err, "unpack %s: %s", tarball, untar)
	t.Logf("Debian root ready in %s (%s)", wallclock.Since(start).Round(100*time.Millisecond), strings.TrimSpace(stderr.String()))
	mnt, err := exec.Command("mount", "-t", "proc", "proc", filepath.Join(dir, "proc")).CombinedOutput()
	require.NoError(t, err, "mount /proc in the root: %s", mnt)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", filepath.Join(dir, "proc")).Run() })
	return &root{t: t, owner: t, dir: dir}
}

func (r *root) path(p string) string { return filepath.Join(r.dir, p) }

// command is a command run inside the root, as root.
func (r *root) command(args ...string) *exec.Cmd {
	cmd := exec.Command("chroot", append([]string{r.dir}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	return cmd
}

// run runs a command inside the root and returns its output and error.
func (r *root) run(args ...string) (string, error) {
	out, err := r.command(args...).CombinedOutput()
	return string(out), err
}

// must runs a command inside the root that must succeed.
func (r *root) must(args ...string) string {
	r.t.Helper()
	out, err := r.run(args...)
	require.NoError(r.t, err, "%s: %s", strings.Join(args, " "), out)
	return out
}

// dpkgInstall copies deb into the root and installs it with dpkg -i.
func (r *root) dpkgInstall(deb string) string {
	r.t.Helper()
	data, err := os.ReadFile(deb)
	require.NoError(r.t, err)
	in := "/tmp/" + filepath.Base(deb)
	require.NoError(r.t, os.WriteFile(r.path(in), data, 0o644))
	return r.must("dpkg", "-i", in)
}

// account is a passwd entry.
type account struct {
	name, uid, gid, gecos, home, shell string
}

func (r *root) user(name string) (account, bool) {
	data, err := os.ReadFile(r.path("etc/passwd"))
	require.NoError(r.t, err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			return account{f[0], f[2], f[3], f[4], f[5], f[6]}, true
		}
	}
	return account{}, false
}

// group returns a group's id and members.
func (r *root) group(name string) (gid string, members []string, ok bool) {
	data, err := os.ReadFile(r.path("etc/group"))
	require.NoError(r.t, err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 4 && f[0] == name {
			if f[3] != "" {
				members = strings.Split(f[3], ",")
			}
			return f[2], members, true
		}
	}
	return "", nil, false
}

// checkUser checks the roomd account either way of making it gives: a
// system account with no login, its home the state directory, in gpio.
func (r *root) checkUser() account {
	r.t.Helper()
	u, ok := r.user("roomd")
	require.True(r.t, ok, "user roomd exists")
	uid, err := strconv.Atoi(u.uid)
	require.NoError(r.t, err)
	assert.Less(r.t, uid, 1000, "a system account")
	assert.Equal(r.t, "roomd visit room daemon", u.gecos)
	assert.Equal(r.t, "/var/lib/roomd", u.home)
	assert.Equal(r.t, "/usr/sbin/nologin", u.shell)
	gid, _, ok := r.group("roomd")
	require.True(r.t, ok, "group roomd exists")
	assert.Equal(r.t, gid, u.gid, "roomd's primary group is roomd")
	_, members, ok := r.group("gpio")
	require.True(r.t, ok, "group gpio exists")
	assert.Contains(r.t, members, "roomd", "roomd may open /dev/gpiochip*")

	fi, err := os.Stat(r.path("var/lib/roomd"))
	require.NoError(r.t, err, "the state directory exists")
	assert.Equal(r.t, os.FileMode(0o700), fi.Mode().Perm())
	assert.Equal(r.t, u.uid, strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)), "owned by roomd")
	return u
}

// unit reads a setting of the installed roomd unit.
func (r *root) unit(key string) string { return r.unitOf("roomd.service", key) }

// unitOf reads a setting of an installed unit (its last value).
func (r *root) unitOf(name, key string) string {
	r.t.Helper()
	values := r.unitValues(name, key)
	if len(values) == 0 {
		r.t.Fatalf("%s has no %s=", name, key)
		return ""
	}
	return values[len(values)-1]
}

// unitValues reads every value of a setting of an installed unit.
func (r *root) unitValues(name, key string) []string {
	r.t.Helper()
	data, err := os.ReadFile(r.path("usr/lib/systemd/system/" + name))
	require.NoError(r.t, err)
	var values []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			values = append(values, v)
		}
	}
	return values
}

// roomd is roomd running inside the root the way its unit starts it.
type roomd struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// startRoom runs the unit's ExecStart as the unit's user and groups, with
// no systemd around it (no NOTIFY_SOCKET, no watchdog).
func (r *root) startRoom() *roomd {
	r.t.Helper()
	user, group, extra := r.unit("User"), r.unit("Group"), r.unit("SupplementaryGroups")
	u, ok := r.user(user)
	require.True(r.t, ok)
	gid, _, ok := r.group(group)
	require.True(r.t, ok)
	var groups []string
	for _, g := range strings.Fields(extra) {
		id, _, ok := r.group(g)
		require.True(r.t, ok, "group %s", g)
		groups = append(groups, id)
	}
	args := append([]string{"--userspec=" + u.uid + ":" + gid, "--groups=" + strings.Join(groups, ","), r.dir},
		strings.Fields(r.unit("ExecStart"))...)
	cmd := exec.Command("chroot", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(r.t, cmd.Start())
	rm := &roomd{cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { rm.done <- cmd.Wait() }()
	r.owner.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-rm.done
		rm.done <- err
	})
	return rm
}

// stop ends the room with SIGTERM, as systemctl stop does; it must exit 0.
func (rm *roomd) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, rm.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-rm.done:
		rm.done <- err // for the cleanup
		require.NoError(t, err, "roomd exits cleanly on SIGTERM:\n%s", rm.logs.String())
	case <-time.After(waitLimit):
		t.Fatalf("roomd did not stop on SIGTERM:\n%s", rm.logs.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// subscriber is mosquitto_sub printing every message under the room's
// topics, one "topic payload" line each.
type subscriber struct {
	lines chan string
	seen  *syncBuffer
}

func subscribe(t *testing.T, host, port, topic string) *subscriber {
	t.Helper()
	bin := testtier.Tool(t, "mosquitto_sub", "mosquitto-clients")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-q", "1", "-v", "-t", topic)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	s := &subscriber{lines: make(chan string, 1024), seen: &syncBuffer{}}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(s.seen, sc.Text())
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return s
}

// next returns the payload of the next message on the topic ending in
// suffix that match accepts.
func (s *subscriber) next(t *testing.T, suffix string, match func(payload string) bool) string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("mosquitto_sub ended; it saw:\n%s", s.seen.String())
			}
			topic, payload, _ := strings.Cut(line, " ")
			if strings.HasSuffix(topic, "/"+suffix) && match(payload) {
				return payload
			}
		case <-deadline:
			t.Fatalf("no matching message on .../%s; mosquitto_sub saw:\n%s", suffix, s.seen.String())
		}
	}
}

// The contract's messages, as much of them as the test reads.
type (
	event struct {
		Seq     int64     `json:"seq"`
		Type    string    `json:"type"`
		VisitID string    `json:"visit_id"`
		EndsAt  time.Time `json:"ends_at"`
		Resumed *bool     `json:"resumed"`
	}
	state struct {
		Seq   int64 `json:"seq"`
		Visit *struct {
			ID     string    `json:"id"`
			EndsAt time.Time `json:"ends_at"`
		} `json:"visit"`
	}
)

func isEvent(typ string, ok func(event) bool) func(string) bool {
	return func(p string) bool {
		var e event
		return json.Unmarshal([]byte(p), &e) == nil && e.Type == typ && (ok == nil || ok(e))
	}
}

func testInstalled(t *testing.T, debV1, debV2 string) {
	testtier.Root(t, "installing a package into a Debian root")
	for _, tool := range []struct{ name, pkg string }{
		{"chroot", "coreutils"}, {"mount", "mount"}, {"tar", "tar"},
		{"systemd-analyze", "systemd"}, {"man", "man-db"}, {"mosquitto_sub", "mosquitto-clients"},
	} {
		testtier.Tool(t, tool.name, tool.pkg)
	}
	r := debianRoot(t)
	broker := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	host, port, _ := strings.Cut(broker.Addr(), ":")

	var fallback account
	ok := t.Run("user made without systemd-sysusers", func(t *testing.T) {
		// A root without systemd-sysusers: the postinst falls back to
		// the passwd package's tools.
		r.t = t
		sysusers := r.path("usr/bin/systemd-sysusers")
		require.FileExists(t, sysusers)
		require.NoError(t, os.Rename(sysusers, sysusers+".hidden"))
		out := r.dpkgInstall(debV1)
		require.NoError(t, os.Rename(sysusers+".hidden", sysusers))
		assert.NotContains(t, out, "Creating user", "systemd-sysusers was not used")
		fallback = r.checkUser()
		r.must("dpkg", "--purge", "roomd")
		r.must("userdel", "roomd")
		r.must("groupdel", "gpio")
		r.must("groupdel", "i2c")
		_, exists := r.user("roomd")
		require.False(t, exists)
		require.NoError(t, os.RemoveAll(r.path("var/lib/roomd")))
	})
	if !ok {
		return
	}

	var installOut string
	ok = t.Run("install", func(t *testing.T) {
		r.t = t
		installOut = r.dpkgInstall(debV1)
		assert.Contains(t, installOut, "Creating user 'roomd'", "systemd-sysusers made the user")
		u := r.checkUser()
		u.uid, u.gid, fallback.uid, fallback.gid = "", "", "", ""
		assert.Equal(t, u, fallback, "the fallback makes the user systemd-sysusers makes")
		assert.Equal(t, "roomd "+v1+"\n", r.must("roomd", "--version"))
		assert.Equal(t, "visitctl "+v1+"\n", r.must("visitctl", "--version"))
		// Enabled (the link deb-systemd-helper makes, as systemctl enable would).
		target, err := os.Readlink(r.path("etc/systemd/system/multi-user.target.wants/roomd.service"))
		require.NoError(t, err, "the unit is enabled")
		assert.Equal(t, "/lib/systemd/system/roomd.service", target)
		status := r.must("dpkg-query", "--show", "--showformat=${Conffiles}", "roomd")
		assert.Contains(t, status, "/etc/roomd/roomd.yaml")
	})
	if !ok {
		return
	}

	ok = t.Run("unconfigured room is not started and check-config says why", func(t *testing.T) {
		r.t = t
		assert.Contains(t, installOut, "roomd: the room is enabled but not started.")
		assert.Contains(t, installOut, "/etc/roomd/roomd.yaml:20: room: is required")
		out, err := r.run("roomd", "check-config", "/etc/roomd/roomd.yaml")
		require.Error(t, err)
		assert.Equal(t, "/etc/roomd/roomd.yaml:20: room: is required: the room's id, e.g. room-1\n"+
			"/etc/roomd/roomd.yaml:28: policy: is required: name a preset (policy.preset: one of canada, denmark, estonia, italy, punjab, spain) or give at least policy.max_duration\n"+
			"/etc/roomd/roomd.yaml:32: mqtt.broker: is required: the broker's URL, e.g. tls://broker.example:8883\n"+
			"roomd: check-config /etc/roomd/roomd.yaml: 3 problems\n", out)
	})
	if !ok {
		return
	}

	ok = t.Run("systemd-analyze verify accepts the installed unit", func(t *testing.T) {
		r.t = t
		cmd := exec.Command("systemd-analyze", "verify", "--root="+r.dir, "roomd.service")
		// Documentation=man:roomd(1) is checked with man: in the root's pages.
		cmd.Env = append(os.Environ(), "MANPATH="+r.path("usr/share/man"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Empty(t, string(out))
	})
	if !ok {
		return
	}

	// The installer's config: a simulated room on the broker.
	config := fmt.Sprintf("room: %s\npolicy: {preset: italy}\ndevice: {backend: sim}\nmqtt: {broker: \"tcp://127.0.0.1:%s\"}\n", room, port)
	require.NoError(t, os.WriteFile(r.path("etc/roomd/roomd.yaml"), []byte(config), 0o644))
	sub := subscribe(t, host, port, "visitrooms/"+room+"/#")

	var rm *roomd
	var started event
	ok = t.Run("a configured room runs from the installed files", func(t *testing.T) {
		r.t = t
		r.must("roomd", "check-config", "/etc/roomd/roomd.yaml")
		rm = r.startRoom()
		sub.next(t, "availability", func(p string) bool { return p == "online" })
		out := r.must("visitctl", "--broker", "tcp://127.0.0.1:"+port, "start", room, "--visit", "v-pkg", "--duration", "2h")
		require.NotEmpty(t, out)
		require.NoError(t, json.Unmarshal([]byte(sub.next(t, "events", isEvent("visit_started", nil))), &started))
		assert.Equal(t, "v-pkg", started.VisitID)
	})
	if !ok {
		return
	}

	ok = t.Run("an upgrade keeps the running visit", func(t *testing.T) {
		r.t = t
		// Under systemd the old prerm leaves the room running through the
		// unpack and the new postinst restarts it (try-restart). Here no
		// systemd runs, so the test does that restart around dpkg -i.
		out := r.dpkgInstall(debV2)
		// The installer's config names no operator (as a room from before
		// commands.operators): it loads, and the upgrade says what it costs.
		assert.Contains(t, out, "roomd: /etc/roomd/roomd.yaml passes roomd check-config, with warnings:")
		assert.Contains(t, out, "commands.operators names no operator: no guard can acknowledge")
		assert.NotContains(t, out, "NOT restarted")
		assert.Equal(t, config, readFile(t, r.path("etc/roomd/roomd.yaml")), "the upgrade kept the installer's config")
		leftovers, _ := filepath.Glob(r.path("etc/roomd/*.dpkg-*"))
		assert.Empty(t, leftovers)
		rm.stop(t)
		sub.next(t, "availability", func(p string) bool { return p == "offline" })
		rm = r.startRoom()
		assert.Equal(t, "roomd "+v2+"\n", r.must("roomd", "--version"))

		var resumed event
		require.NoError(t, json.Unmarshal([]byte(sub.next(t, "events", isEvent("controller_started", func(e event) bool {
			return e.Resumed != nil && *e.Resumed
		}))), &resumed), "roomd v2 resumed from v1's state\n%s", rm.logs.String())
		assert.Greater(t, resumed.Seq, started.Seq, "seq continues")
		var st state
		require.NoError(t, json.Unmarshal([]byte(sub.next(t, "state", func(p string) bool {
			var s state
			return json.Unmarshal([]byte(p), &s) == nil && s.Seq >= resumed.Seq
		})), &st))
		require.NotNil(t, st.Visit, "the visit still runs")
		assert.Equal(t, "v-pkg", st.Visit.ID)
		assert.True(t, started.EndsAt.Equal(st.Visit.EndsAt), "same deadline: %s, %s", started.EndsAt, st.Visit.EndsAt)
	})
	if !ok {
		return
	}

	ok = t.Run("an upgrade that rejects the config leaves the room alone", func(t *testing.T) {
		r.t = t
		require.NoError(t, os.WriteFile(r.path("etc/roomd/roomd.yaml"), []byte(strings.Replace(config, room, "Room 1", 1)), 0o644))
		out := r.dpkgInstall(debV2)
		assert.Contains(t, out, `/etc/roomd/roomd.yaml:1: room: "Room 1" is not a room id`)
		assert.Contains(t, out, "roomd: the room was NOT restarted")
		require.NoError(t, os.WriteFile(r.path("etc/roomd/roomd.yaml"), []byte(config), 0o644))
	})
	if !ok {
		return
	}

	t.Run("purge removes what the package installed and keeps the journal", func(t *testing.T) {
		r.t = t
		list := strings.Fields(readFile(t, r.path("var/lib/dpkg/info/roomd.list")))
		require.Contains(t, list, "/usr/bin/roomd")
		rm.stop(t) // as the prerm does under systemd
		journal := dirNames(t, r.path("var/lib/roomd"))
		require.NotEmpty(t, journal, "roomd wrote its state")

		r.must("dpkg", "--purge", "roomd")
		_, err := r.run("dpkg-query", "--status", "roomd")
		assert.Error(t, err, "not installed any more")
		pristine := pristineDirs(t)
		for _, p := range list {
			fi, err := os.Lstat(r.path(p))
			if err != nil {
				continue
			}
			assert.True(t, fi.IsDir() && pristine[p], "purge left %s", p)
		}
		assert.NoDirExists(t, r.path("etc/roomd"))
		for _, pattern := range []string{"etc/systemd/system/*/roomd.service", "etc/systemd/system/roomd.service",
			"var/lib/systemd/deb-systemd-helper-*/roomd.service*", "var/lib/systemd/deb-systemd-helper-*/*/roomd.service"} {
			left, _ := filepath.Glob(r.path(pattern))
			assert.Empty(t, left, "purge left %s", pattern)
		}
		// Kept: the journal (delete it by hand: rm -rf /var/lib/roomd)
		// and the user owning it.
		assert.Equal(t, journal, dirNames(t, r.path("var/lib/roomd")))
		_, exists := r.user("roomd")
		assert.True(t, exists)
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// pristineDirs lists the directories of the Debian root as debootstrap
// made it, as absolute paths.
func pristineDirs(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("bash", "../.ci/debroot.sh")
	cmd.Env = append(os.Environ(), "ROOMD_DEBROOT_NO_INSTALL=1")
	out, err := cmd.Output()
	require.NoError(t, err)
	list, err := exec.Command("tar", "-tf", strings.TrimSpace(string(out))).Output()
	require.NoError(t, err)
	dirs := map[string]bool{}
	for _, e := range strings.Split(string(list), "\n") {
		if strings.HasSuffix(e, "/") {
			dirs[strings.TrimSuffix(strings.TrimPrefix(e, "."), "/")] = true
		}
	}
	// Merged /usr: /lib is a link to /usr/lib, and so on.
	for _, l := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		dirs[l] = true
	}
	return dirs
}
