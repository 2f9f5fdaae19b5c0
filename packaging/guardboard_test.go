//go:build linux && !race

package packaging

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// What the guardboard package installs and the installer adds.
const (
	gbDefault  = "/etc/default/guardboard"
	gbConfDir  = "/etc/guardboard"
	gbAccounts = "/etc/guardboard/accounts"
	gbPassword = "/etc/guardboard/mqtt-password"
	gbCA       = "/etc/guardboard/ca.crt"
	gbState    = "/var/lib/guardboard"
	gbUnit     = "guardboard.service"
	gbOperator = "guard-7"
	gbLogin    = "a long enough password"
	gbTitle    = "Casa di prova"
)

// checkGuardboardContents reads the guardboard package as dpkg sees it,
// beside the roomd package of the same build.
func checkGuardboardContents(t *testing.T, arch, deb, roomdDeb string) {
	field := func(deb, name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "guardboard", field(deb, "Package"))
	assert.Equal(t, v1, field(deb, "Version"), "the same version as roomd's")
	assert.Equal(t, v1, field(roomdDeb, "Version"))
	assert.Equal(t, arch, field(deb, "Architecture"))
	assert.Equal(t, "systemd-sysusers | passwd", field(deb, "Depends"), "what the postinst makes the user with")
	// Neither package needs, wants or excludes the other: a Pi has no
	// board, and the central machine needs no roomd.
	for _, f := range []string{"Pre-Depends", "Depends", "Recommends", "Suggests", "Enhances", "Breaks", "Conflicts", "Replaces"} {
		assert.NotContains(t, field(deb, f), "roomd", "guardboard's %s", f)
		assert.NotContains(t, field(roomdDeb, f), "guardboard", "roomd's %s", f)
	}

	dir := t.TempDir()
	out, err := exec.Command("dpkg-deb", "--raw-extract", deb, dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	conffiles, err := os.ReadFile(filepath.Join(dir, "DEBIAN", "conffiles"))
	require.NoError(t, err)
	assert.Equal(t, gbDefault+"\n", string(conffiles), "the settings are the only conffile")
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(dir, "DEBIAN", s))
		if assert.NoError(t, err, s) {
			assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), s)
		}
	}
	for _, p := range []string{
		"usr/bin/guardboard",
		"usr/lib/systemd/system/guardboard.service", "usr/lib/sysusers.d/guardboard.conf", "usr/lib/tmpfiles.d/guardboard.conf",
		"etc/default/guardboard",
		"usr/share/man/man1/guardboard.1.gz",
		"usr/share/doc/guardboard/copyright", "usr/share/doc/guardboard/changelog.gz",
		"usr/share/doc/guardboard/guardboard.md", "usr/share/doc/guardboard/guardboard-help.txt",
		"usr/share/doc/guardboard/mosquitto.md", "usr/share/doc/guardboard/img/board-panic.png",
		"usr/share/lintian/overrides/guardboard",
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if assert.NoError(t, err, "the package holds /%s", p) {
			assert.True(t, fi.Mode().IsRegular(), p)
		}
	}
	// /etc/guardboard is the postinst's (its group is made there), not a
	// file of the package.
	assert.NoDirExists(t, filepath.Join(dir, "etc/guardboard"))
	assert.Equal(t, readFile(t, "guardboard/default"), readFile(t, filepath.Join(dir, "etc/default/guardboard")))
	help := readFile(t, filepath.Join(dir, "usr/share/doc/guardboard/guardboard-help.txt"))
	assert.Contains(t, help, "guardboard accounts add|passwd|remove ID --accounts FILE", "generated from guardboard help")
	assert.Contains(t, help, "[$GUARDBOARD_BROKER_PASSWORD_FILE]", "and from guardboard serve -h")

	// No path in both packages: they install side by side.
	roomdDir := t.TempDir()
	out, err = exec.Command("dpkg-deb", "--extract", roomdDeb, roomdDir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	gbFiles, roomdFiles := fileList(t, dir), fileList(t, roomdDir)
	require.NotEmpty(t, roomdFiles)
	for _, p := range gbFiles {
		assert.NotContains(t, roomdFiles, p, "both packages hold %s", p)
	}

	// The binary is for the package's architecture, static, and carries
	// the package's version (run natively or under qemu, as roomd's).
	path := filepath.Join(dir, "usr/bin/guardboard")
	f, err := elf.Open(path)
	require.NoError(t, err)
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}[arch]
	assert.Equal(t, machine, f.Machine)
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "guardboard is static")
	require.NoError(t, f.Close())
	bi, err := buildinfo.ReadFile(path)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	if arch == "armhf" {
		assert.Equal(t, "6", settings["GOARM"])
	}
	var run []string
	switch arch {
	case "amd64":
		run = []string{path}
	case "arm64":
		run = []string{testtier.Tool(t, "qemu-aarch64", "qemu-user"), "-cpu", "cortex-a53", path}
	case "armhf":
		run = []string{testtier.Tool(t, "qemu-arm", "qemu-user"), "-cpu", "arm1176", path}
	}
	out, err = exec.Command(run[0], append(run[1:], "version")...).CombinedOutput()
	require.NoError(t, err, "guardboard version: %s", out)
	assert.Equal(t, "guardboard "+v1+"\n", string(out))
}

// fileList lists the files and links under dir as absolute paths of the
// package, without the control files.
func fileList(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == "DEBIAN" {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, "/"+rel)
		return nil
	}))
	return files
}

// owned is a file's owner, group and mode in the root.
type owned struct {
	user, group string
	mode        os.FileMode
}

func (r *root) owned(p string) owned {
	r.t.Helper()
	fi, err := os.Lstat(r.path(p))
	require.NoError(r.t, err, "%s exists", p)
	st := fi.Sys().(*syscall.Stat_t)
	name := func(file string, id uint32) string {
		for _, line := range strings.Split(readFile(r.t, r.path(file)), "\n") {
			if f := strings.Split(line, ":"); len(f) > 2 && f[2] == strconv.Itoa(int(id)) {
				return f[0]
			}
		}
		return strconv.Itoa(int(id))
	}
	return owned{name("etc/passwd", st.Uid), name("etc/group", st.Gid), fi.Mode().Perm() | fi.Mode().Type()}
}

// checkBoardUser checks the guardboard account either way of making it
// gives: a system account with no login, its home the state directory.
func (r *root) checkBoardUser() account {
	r.t.Helper()
	u, ok := r.user("guardboard")
	require.True(r.t, ok, "user guardboard exists")
	uid, err := strconv.Atoi(u.uid)
	require.NoError(r.t, err)
	assert.Less(r.t, uid, 1000, "a system account")
	assert.Equal(r.t, "guardboard guard station board", u.gecos)
	assert.Equal(r.t, gbState, u.home)
	assert.Equal(r.t, "/usr/sbin/nologin", u.shell)
	gid, members, ok := r.group("guardboard")
	require.True(r.t, ok, "group guardboard exists")
	assert.Equal(r.t, gid, u.gid, "guardboard's primary group is guardboard")
	assert.Empty(r.t, members)

	assert.Equal(r.t, owned{"guardboard", "guardboard", os.ModeDir | 0o700}, r.owned(gbState))
	assert.Equal(r.t, owned{"root", "guardboard", os.ModeDir | 0o750}, r.owned(gbConfDir))
	assert.Equal(r.t, owned{"root", "guardboard", 0o640}, r.owned(gbAccounts))
	assert.Equal(r.t, owned{"root", "root", 0o644}, r.owned(gbDefault))
	return u
}

// enabled reports whether the unit is enabled (the link systemctl enable
// and deb-systemd-helper enable make).
func (r *root) enabled(unit string) bool {
	target, err := os.Readlink(r.path("etc/systemd/system/multi-user.target.wants/" + unit))
	if err != nil {
		return false
	}
	assert.Equal(r.t, "/lib/systemd/system/"+unit, target)
	return true
}

// boardProc is the installed board running inside the root the way its
// unit starts it.
type boardProc struct {
	cmd   *exec.Cmd
	lines chan string
	logs  *syncBuffer
	done  chan error
}

// startBoard runs the unit's ExecStart as the unit's user and group with
// the unit's EnvironmentFile read by the root's /bin/sh (the file is
// written in the syntax both read alike), with no systemd around it.
func (r *root) startBoard() *boardProc {
	r.t.Helper()
	u, ok := r.user(r.unitOf(gbUnit, "User"))
	require.True(r.t, ok)
	gid, _, ok := r.group(r.unitOf(gbUnit, "Group"))
	require.True(r.t, ok)
	envFile := r.unitOf(gbUnit, "EnvironmentFile")
	args := append([]string{"--userspec=" + u.uid + ":" + gid, "--groups=" + gid, r.dir,
		"/bin/sh", "-c", `set -a && . "$0" && set +a && exec "$@"`, envFile},
		strings.Fields(r.unitOf(gbUnit, "ExecStart"))...)
	cmd := exec.Command("chroot", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	require.NoError(r.t, cmd.Start())
	b := &boardProc{cmd: cmd, lines: make(chan string, 4096), logs: &syncBuffer{}, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			b.logs.Write([]byte(sc.Text() + "\n"))
			select {
			case b.lines <- sc.Text():
			default:
			}
		}
		close(b.lines)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		b.done <- err
	}()
	r.owner.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-b.done
		b.done <- err
	})
	return b
}

// await returns the first log line matching re, failing if the board ends
// or nothing matches in time.
func (b *boardProc) await(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(waitLimit)
	for {
		select {
		case line, ok := <-b.lines:
			if !ok {
				err := <-b.done
				b.done <- err
				t.Fatalf("the board ended (%v) before logging %s:\n%s", err, re, b.logs.String())
			}
			if m := rx.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("the board did not log %s:\n%s", re, b.logs.String())
		}
	}
}

// stop ends the board with SIGTERM, as systemctl stop does; it must exit 0.
func (b *boardProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-b.done:
		b.done <- err
		require.NoError(t, err, "guardboard exits cleanly on SIGTERM:\n%s", b.logs.String())
	case <-time.After(waitLimit):
		t.Fatalf("guardboard did not stop on SIGTERM:\n%s", b.logs.String())
	}
}

// checkServes starts the board, waits until it listens and is connected
// to the broker, and logs in from the host as a guard would.
func (r *root) checkServes(t *testing.T) *boardProc {
	t.Helper()
	b := r.startBoard()
	site := b.await(t, `msg="guard station board" url=(\S+)`)[1]
	b.await(t, `msg="connected to the broker" .*username=guard-station`)

	resp, err := http.Get(site + "login")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `<form method="post" action="/login"`, "the login form")
	assert.Contains(t, string(body), gbTitle+" — guard station", "GUARDBOARD_TITLE from the settings")

	// The account added in the root logs in: the board, as user
	// guardboard, reads the accounts file root made.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(site+"login", url.Values{"operator": {gbOperator}, "password": {gbLogin}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "logged in:\n%s", b.logs.String())
	assert.Equal(t, "/", resp.Header.Get("Location"))
	assert.NotEmpty(t, resp.Cookies(), "a session cookie")
	b.await(t, `msg=login operator=`+gbOperator)
	return b
}

// freeLoopbackPort returns a loopback TCP port that was free a moment ago.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func testGuardboardInstalled(t *testing.T, debV1, debV2 string) {
	testtier.Root(t, "installing a package into a Debian root")
	for _, tool := range []struct{ name, pkg string }{
		{"chroot", "coreutils"}, {"mount", "mount"}, {"tar", "tar"}, {"systemd-analyze", "systemd"}, {"man", "man-db"},
	} {
		testtier.Tool(t, tool.name, tool.pkg)
	}
	r := debianRoot(t)

	var fallback account
	ok := t.Run("user made without systemd-sysusers", func(t *testing.T) {
		r.t = t
		sysusers := r.path("usr/bin/systemd-sysusers")
		require.FileExists(t, sysusers)
		require.NoError(t, os.Rename(sysusers, sysusers+".hidden"))
		out := r.dpkgInstall(debV1)
		require.NoError(t, os.Rename(sysusers+".hidden", sysusers))
		assert.NotContains(t, out, "Creating user", "systemd-sysusers was not used")
		fallback = r.checkBoardUser()
		// Nothing added to /etc/guardboard: the purge removes it all.
		out = r.must("dpkg", "--purge", "guardboard")
		assert.NotContains(t, out, "kept what was added")
		assert.NoDirExists(t, r.path(gbConfDir))
		assert.NoDirExists(t, r.path(gbState))
		r.must("userdel", "guardboard")
		_, exists := r.user("guardboard")
		require.False(t, exists)
		_, _, exists = r.group("guardboard")
		require.False(t, exists)
	})
	if !ok {
		return
	}

	var installOut string
	ok = t.Run("install", func(t *testing.T) {
		r.t = t
		installOut = r.dpkgInstall(debV1)
		assert.Contains(t, installOut, "Creating user 'guardboard'", "systemd-sysusers made the user")
		u := r.checkBoardUser()
		u.uid, u.gid, fallback.uid, fallback.gid = "", "", "", ""
		assert.Equal(t, fallback, u, "the fallback makes the user systemd-sysusers makes")
		assert.Equal(t, "guardboard "+v1+"\n", r.must("guardboard", "version"))
		assert.Equal(t, readFile(t, "guardboard/default"), readFile(t, r.path(gbDefault)))
		assert.Contains(t, r.must("dpkg-query", "--show", "--showformat=${Conffiles}", "guardboard"), gbDefault)
		// Installed, not enabled and not started: the installer enables it
		// once it is configured, and is told so.
		assert.False(t, r.enabled(gbUnit), "the unit is not enabled before it is configured")
		assert.Contains(t, installOut, "guardboard: the board is installed but not enabled.")
		assert.Contains(t, installOut, "systemctl enable --now guardboard")
		assert.Empty(t, r.must("guardboard", "accounts", "list", "--accounts", gbAccounts), "no account yet")
		// The man page is there for man.
		cmd := exec.Command("man", "-w", "guardboard")
		cmd.Env = append(os.Environ(), "MANPATH="+r.path("usr/share/man"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	})
	if !ok {
		return
	}

	ok = t.Run("guardboard accounts add in the root", func(t *testing.T) {
		r.t = t
		cmd := r.command("guardboard", "accounts", "add", gbOperator, "--accounts", gbAccounts)
		cmd.Stdin = strings.NewReader(gbLogin + "\n")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "added: "+gbOperator+" in "+gbAccounts)
		assert.Equal(t, gbOperator+"\n", r.must("guardboard", "accounts", "list", "--accounts", gbAccounts))
		accounts := readFile(t, r.path(gbAccounts))
		assert.Regexp(t, `(?m)^`+gbOperator+`:\$2a\$12\$`, accounts, "a bcrypt hash")
		assert.NotContains(t, accounts, gbLogin)
		assert.Equal(t, owned{"root", "guardboard", 0o640}, r.owned(gbAccounts), "the board can still read it")
		leftovers, _ := filepath.Glob(r.path(gbConfDir + "/.accounts-*"))
		assert.Empty(t, leftovers)
	})
	if !ok {
		return
	}

	ok = t.Run("systemd-analyze verifies the installed unit", func(t *testing.T) {
		r.t = t
		cmd := exec.Command("systemd-analyze", "verify", "--root="+r.dir, gbUnit)
		cmd.Env = append(os.Environ(), "MANPATH="+r.path("usr/share/man"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Empty(t, string(out))

		// The hardening, as systemd scores it (0 safest, 10 worst; 2.0 and
		// below is "OK"). --offline reads the unit in the root.
		out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--root="+r.dir, "--no-pager", gbUnit).CombinedOutput()
		require.NoError(t, err, "%s", out)
		m := regexp.MustCompile(`Overall exposure level for guardboard\.service: ([0-9.]+) (\S+)`).FindStringSubmatch(string(out))
		require.NotNil(t, m, "%s", out)
		t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
		exposure, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		assert.LessOrEqual(t, exposure, 2.0, "%s", out)

		// A board that dies comes back, for ever; it runs unprivileged with
		// its settings from the conffile and its marks in its state
		// directory.
		assert.Equal(t, "always", r.unitOf(gbUnit, "Restart"))
		assert.Equal(t, "0", r.unitOf(gbUnit, "StartLimitIntervalSec"))
		assert.Equal(t, "guardboard", r.unitOf(gbUnit, "User"))
		assert.Equal(t, "yes", r.unitOf(gbUnit, "NoNewPrivileges"))
		assert.Equal(t, "strict", r.unitOf(gbUnit, "ProtectSystem"))
		assert.Equal(t, []string{""}, r.unitValues(gbUnit, "CapabilityBoundingSet"))
		assert.Equal(t, gbDefault, r.unitOf(gbUnit, "EnvironmentFile"))
		assert.Equal(t, "/usr/bin/guardboard serve", r.unitOf(gbUnit, "ExecStart"))
		assert.Equal(t, filepath.Base(gbState), r.unitOf(gbUnit, "StateDirectory"))
		assert.Contains(t, readFile(t, r.path(gbDefault)), "\nGUARDBOARD_STATE_FILE="+gbState+"/marks.json\n",
			"the marks go where the unit may write")
	})
	if !ok {
		return
	}

	// The installer's steps: the broker's password and CA in place, the
	// broker's URL in the settings; the site's own title too. The broker is
	// a mosquitto with the shipped config and ACL, over TLS with passwords.
	brokerPassword := "guard-station-secret"
	broker := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true,
		Users: map[string]string{"guard-station": brokerPassword}})
	listen := "127.0.0.1:" + freeLoopbackPort(t)
	var settings string
	var b *boardProc
	ok = t.Run("a configured board serves its login page from the installed files", func(t *testing.T) {
		r.t = t
		require.NoError(t, os.WriteFile(r.path(gbCA), []byte(readFile(t, broker.CA.CertFile)), 0o644))
		r.must("install", "-m", "0640", "-o", "root", "-g", "guardboard", "/dev/null", gbPassword)
		require.NoError(t, os.WriteFile(r.path(gbPassword), []byte(brokerPassword+"\n"), 0o640))
		assert.Equal(t, owned{"root", "guardboard", 0o640}, r.owned(gbPassword))

		settings = readFile(t, r.path(gbDefault))
		for _, edit := range []struct{ from, to string }{
			{"\nGUARDBOARD_BROKER=\n", "\nGUARDBOARD_BROKER=" + broker.URL() + "\n"},
			{"\nGUARDBOARD_LISTEN=127.0.0.1:8080\n", "\nGUARDBOARD_LISTEN=" + listen + "\n"},
			{"\n#GUARDBOARD_TITLE=\"Visit rooms\"\n", "\nGUARDBOARD_TITLE=\"" + gbTitle + "\"\n"},
		} {
			require.Equal(t, 1, strings.Count(settings, edit.from), "the shipped settings hold %q", edit.from)
			settings = strings.Replace(settings, edit.from, edit.to, 1)
		}
		require.NoError(t, os.WriteFile(r.path(gbDefault), []byte(settings), 0o644))
		r.must("systemctl", "enable", "guardboard")
		require.True(t, r.enabled(gbUnit))
		b = r.checkServes(t)
	})
	if !ok {
		return
	}

	ok = t.Run("an upgrade keeps the settings, the accounts and the enabled unit", func(t *testing.T) {
		r.t = t
		accounts := readFile(t, r.path(gbAccounts))
		out := r.dpkgInstall(debV2)
		assert.NotContains(t, out, "not enabled", "the board is enabled: nothing to tell")
		assert.Equal(t, "guardboard "+v2+"\n", r.must("guardboard", "version"))
		assert.Equal(t, settings, readFile(t, r.path(gbDefault)), "the installer's settings")
		assert.Equal(t, accounts, readFile(t, r.path(gbAccounts)), "the accounts")
		assert.Equal(t, owned{"root", "guardboard", 0o640}, r.owned(gbAccounts))
		assert.Equal(t, owned{"root", "guardboard", 0o640}, r.owned(gbPassword))
		assert.True(t, r.enabled(gbUnit), "still enabled")
		for _, pattern := range []string{"etc/default/guardboard.dpkg-*", "etc/guardboard/*.dpkg-*"} {
			left, _ := filepath.Glob(r.path(pattern))
			assert.Empty(t, left, pattern)
		}

		// Installed again, the same version: nothing changes either.
		r.dpkgInstall(debV2)
		assert.Equal(t, settings, readFile(t, r.path(gbDefault)))
		assert.Equal(t, accounts, readFile(t, r.path(gbAccounts)))
		assert.Equal(t, owned{"root", "guardboard", 0o640}, r.owned(gbAccounts))
		assert.Equal(t, owned{"root", "guardboard", os.ModeDir | 0o750}, r.owned(gbConfDir))

		// Under systemd the postinst restarts a running board
		// (try-restart); here the test does: the new binary serves the
		// same guards.
		b.stop(t)
		b = r.checkServes(t)
		b.stop(t)
	})
	if !ok {
		return
	}

	t.Run("remove and purge leave only the user and the installer's files", func(t *testing.T) {
		r.t = t
		list := strings.Fields(readFile(t, r.path("var/lib/dpkg/info/guardboard.list")))
		require.Contains(t, list, "/usr/bin/guardboard")

		r.must("dpkg", "--remove", "guardboard")
		assert.NoFileExists(t, r.path("usr/bin/guardboard"))
		assert.Equal(t, settings, readFile(t, r.path(gbDefault)), "remove keeps the settings")
		assert.FileExists(t, r.path(gbAccounts), "and the accounts")

		out := r.must("dpkg", "--purge", "guardboard")
		_, err := r.run("dpkg-query", "--status", "guardboard")
		assert.Error(t, err, "not installed any more")
		pristine := pristineDirs(t)
		for _, p := range list {
			fi, err := os.Lstat(r.path(p))
			if err != nil {
				continue
			}
			assert.True(t, fi.IsDir() && pristine[p], "purge left %s", p)
		}
		assert.NoFileExists(t, r.path(gbDefault))
		assert.NoFileExists(t, r.path(gbAccounts), "the guards' password hashes")
		assert.NoDirExists(t, r.path(gbState), "the board's marks")
		for _, pattern := range []string{"etc/systemd/system/*/guardboard.service", "etc/systemd/system/guardboard.service",
			"var/lib/systemd/deb-systemd-helper-*/guardboard.service*", "var/lib/systemd/deb-systemd-helper-*/*/guardboard.service"} {
			left, _ := filepath.Glob(r.path(pattern))
			assert.Empty(t, left, "purge left %s", pattern)
		}
		// Kept, and named: what the installer put in /etc/guardboard.
		assert.Equal(t, []string{filepath.Base(gbCA), filepath.Base(gbPassword)}, dirNames(t, r.path(gbConfDir)))
		assert.Contains(t, out, "guardboard: kept what was added to /etc/guardboard")
		assert.Contains(t, out, "  "+gbPassword+"\n")
		assert.Contains(t, out, "  "+gbCA+"\n")
		// Kept: the user (delete it by hand: userdel guardboard).
		_, exists := r.user("guardboard")
		assert.True(t, exists)
	})
}
