package board

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func TestAccountsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts")
	f := AccountsFile{Path: path, Cost: bcrypt.MinCost}
	require.NoError(t, f.Add("guard-7", "correct horse battery"))
	require.NoError(t, f.Add("guard-8", "another long password"))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ids, err := f.List()
	require.NoError(t, err)
	assert.Equal(t, []string{"guard-7", "guard-8"}, ids)

	assert.ErrorContains(t, f.Add("guard-7", "whatever password"), "already has an account")
	assert.ErrorContains(t, f.Add("Maria Rossi", "whatever password"), "never a name")
	assert.ErrorContains(t, f.Add("on_site", "whatever password"), "not on_site")
	assert.ErrorContains(t, f.Add("guard-9", "short"), "at least 10")
	assert.ErrorContains(t, f.Passwd("guard-9", "whatever password"), "no such operator")

	a, err := OpenAccounts(path)
	require.NoError(t, err)
	ok, err := a.Check("guard-7", "correct horse battery")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _ = a.Check("guard-7", "wrong")
	assert.False(t, ok)
	ok, _ = a.Check("nobody", "correct horse battery")
	assert.False(t, ok)

	// Changed on disk: the board reads it again.
	require.NoError(t, f.Passwd("guard-7", "a new long password"))
	require.NoError(t, f.Remove("guard-8"))
	bump(t, path)
	ok, _ = a.Check("guard-7", "correct horse battery")
	assert.False(t, ok)
	ok, _ = a.Check("guard-7", "a new long password")
	assert.True(t, ok)
	assert.False(t, a.Exists("guard-8"))
}

// An edit keeps the file's group and mode, so that a board reading it
// through its group (root:guardboard 0640 in the Debian package) still can
// after "guardboard accounts add" as root; others lose any permission.
func TestAccountsFileEditKeepsOwnerGroupAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts")
	require.NoError(t, os.WriteFile(path, []byte("# the package's empty accounts file\n"), 0o640))
	require.NoError(t, os.Chmod(path, 0o640))
	// As root the file is given to another group, as the package's is;
	// otherwise it keeps the maker's, which the edit must keep all the same.
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 4242
	}
	require.NoError(t, os.Chown(path, os.Geteuid(), gid))
	f := AccountsFile{Path: path, Cost: bcrypt.MinCost}
	require.NoError(t, f.Add("guard-7", "correct horse battery"))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, gid, int(st.Gid))
	assert.Equal(t, os.Geteuid(), int(st.Uid))

	require.NoError(t, os.Chmod(path, 0o664))
	require.NoError(t, f.Passwd("guard-7", "a new long password"))
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "others may not read the hashes")
	assert.Equal(t, gid, int(fi.Sys().(*syscall.Stat_t).Gid))
	ids, err := f.List()
	require.NoError(t, err)
	assert.Equal(t, []string{"guard-7"}, ids)
}

// bump moves the file's time on, as a later write would.
func bump(t *testing.T, path string) {
	t.Helper()
	later := wallclock.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(path, later, later))
}

func TestAccountsFileProblemsNameTheirLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts")
	require.NoError(t, os.WriteFile(path, []byte("# comment\n\nguard-7:$2a$04$notahash\nno colon here\nMaria Rossi:x\n"), 0o600))
	_, err := OpenAccounts(path)
	require.Error(t, err)
	assert.ErrorContains(t, err, "accounts:3: operator guard-7: not a bcrypt hash")
	assert.ErrorContains(t, err, "accounts:4: want <operator id>:<bcrypt hash>")
	assert.ErrorContains(t, err, `accounts:5: operator id "Maria Rossi"`)
	_, err = OpenAccounts(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "no such file")
	_, err = OpenAccounts(t.TempDir())
	assert.ErrorContains(t, err, "not a regular file")
}

func TestLimiterPerAccountAndPerAddress(t *testing.T) {
	now := t0
	l := NewLimiter(func() time.Time { return now })
	for range LoginFailuresPerAccount {
		ok, _ := l.Allow("guard-7", "10.0.0.1")
		require.True(t, ok)
		l.Fail("guard-7", "10.0.0.1")
	}
	ok, wait := l.Allow("guard-7", "10.0.0.2")
	assert.False(t, ok, "the account is limited from any address")
	assert.Equal(t, LoginWindow, wait)
	ok, _ = l.Allow("guard-8", "10.0.0.1")
	assert.True(t, ok, "another account from the same address is not (yet)")

	now = now.Add(LoginWindow - time.Second)
	ok, wait = l.Allow("guard-7", "10.0.0.2")
	assert.False(t, ok)
	assert.Equal(t, time.Second, wait)
	now = now.Add(time.Second)
	ok, _ = l.Allow("guard-7", "10.0.0.2")
	assert.True(t, ok, "the failures left the window")

	// One address guessing many accounts.
	for i := range LoginFailuresPerAddress {
		l.Fail("guess-"+string(rune('a'+i)), "10.0.0.9")
	}
	ok, _ = l.Allow("guard-7", "10.0.0.9")
	assert.False(t, ok)
	l.Succeed("guard-7", "10.0.0.9", time.Time{})
	ok, _ = l.Allow("guard-7", "10.0.0.9")
	assert.False(t, ok, "a success clears the account, not the address")
}

func TestSessionsExpireAndEnd(t *testing.T) {
	now := t0
	s := NewSessions(func() time.Time { return now })
	id, ss := s.New("guard-7")
	got, ok := s.Get(id)
	require.True(t, ok)
	assert.Equal(t, ss, got)
	assert.True(t, CSRFMatches(got, ss.CSRF))
	assert.False(t, CSRFMatches(got, ""))
	assert.False(t, CSRFMatches(got, ss.CSRF+"x"))
	now = now.Add(SessionLife + time.Second)
	_, ok = s.Get(id)
	assert.False(t, ok)
	id, _ = s.New("guard-7")
	s.EndOperator("guard-7")
	_, ok = s.Get(id)
	assert.False(t, ok)
}
