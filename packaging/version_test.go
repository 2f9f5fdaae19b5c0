package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

// TestPackageVersionFromGit runs the version logic of .ci/package.sh in a
// scratch repository through its life: no tag, a tag, commits after it, a
// pre-release tag, uncommitted changes. dpkg must accept every version and
// order them as they were made.
func TestPackageVersionFromGit(t *testing.T) {
	testtier.Tool(t, "git", "git")
	testtier.Tool(t, "dpkg", "dpkg")
	script, err := os.ReadFile("../.ci/package.sh")
	require.NoError(t, err)
	repo := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(repo, ".ci"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, ".ci", "package.sh"), script, 0o755))

	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	commit := func(date string) string {
		t.Helper()
		f := filepath.Join(repo, "file")
		old, _ := os.ReadFile(f)
		require.NoError(t, os.WriteFile(f, append(old, 'x'), 0o644))
		git("add", "-A")
		cmd := exec.Command("git", "commit", "-q", "-m", "change", "--date", date)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return git("rev-parse", "--short=7", "HEAD")
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("bash", ".ci/package.sh", "--print-version")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "ROOMD_VERSION=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}

	git("init", "-q")
	var got []string
	sha := commit("2026-03-01T12:00:00+01:00")
	got = append(got, version())
	assert.Equal(t, "0.0.0~git20260301110000."+sha, got[0], "no tag: the commit's UTC time and hash")
	sha = commit("2026-03-02T12:00:00Z")
	got = append(got, version())
	assert.Equal(t, "0.0.0~git20260302120000."+sha, got[1])

	git("tag", "v1.3.0-rc.1")
	got = append(got, version())
	assert.Equal(t, "1.3.0~rc.1", got[2], "a pre-release sorts before its release")
	sha = commit("2026-03-03T12:00:00Z")
	got = append(got, version())
	assert.Equal(t, "1.3.0~rc.1+1.g"+sha, got[3])

	git("tag", "v1.3.0")
	got = append(got, version())
	assert.Equal(t, "1.3.0", got[4])
	commit("2026-03-04T12:00:00Z")
	sha = commit("2026-03-05T12:00:00Z")
	got = append(got, version())
	assert.Equal(t, "1.3.0+2.g"+sha, got[5], "two commits after the tag")

	require.NoError(t, os.WriteFile(filepath.Join(repo, "file"), []byte("edited"), 0o644))
	got = append(got, version())
	assert.Equal(t, "1.3.0+2.g"+sha+"+dirty", got[6], "uncommitted changes")

	git("tag", "v1.3.1")
	assert.Regexp(t, regexp.MustCompile(`^1\.3\.1\+dirty$`), version())

	for i, v := range got {
		out, err := exec.Command("dpkg", "--validate-version", v).CombinedOutput()
		require.NoError(t, err, "%s: %s", v, out)
		if i > 0 {
			assert.NoError(t, exec.Command("dpkg", "--compare-versions", got[i-1], "lt", v).Run(),
				"dpkg orders %s before %s", got[i-1], v)
		}
	}

	// ROOMD_VERSION wins.
	cmd := exec.Command("bash", ".ci/package.sh", "--print-version")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "ROOMD_VERSION=2.0.0")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "2.0.0\n", string(out))
}
