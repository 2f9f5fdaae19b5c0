package board

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/roomd/roomd/controller"
)

// BcryptCost is the cost of the hashes the board writes (about 0.2 s per
// login on a desktop CPU; 2^12 rounds).
const BcryptCost = 12

// MinPasswordLength is the shortest password accounts add and passwd accept.
const MinPasswordLength = 10

// maxAccountsFile bounds the accounts file the board reads.
const maxAccountsFile = 1 << 20

// Accounts is the board's accounts file: one line per operator,
// "<operator id>:<bcrypt hash>", comments (#) and blank lines allowed.
// Operator ids are controller.ValidOperatorID: opaque ids such as
// "guard-7", never names. The board re-reads the file when it changes
// (another inode, size, modification or change time: "guardboard accounts"
// writes a new file and renames it over the old one), so an account added
// takes effect at the next login, and an account whose password changed or
// that was removed loses its sessions at their next request: a session
// holds the generation of the password it logged in with (Generation), and
// the board checks it against the file on every request.
type Accounts struct {
	path string

	mu     sync.Mutex
	hashes map[string][]byte
	seen   fileID
	// checks counts the passwords compared (tests of the login limit).
	checks atomic.Int64
}

// fileID is what tells that the accounts file changed.
type fileID struct {
	mod, change time.Time
	size        int64
	inode       uint64
}

func idOf(fi os.FileInfo) fileID {
	id := fileID{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.inode = uint64(st.Ino)
		id.change = time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)) // int32 on 32-bit ARM
	}
	return id
}

// generation names one password of an account: its bcrypt hash (new salt
// and all at every passwd), hashed again so that a session holds no part
// of it.
func generation(hash []byte) string {
	sum := sha256.Sum256(hash)
	return hex.EncodeToString(sum[:12])
}

// OpenAccounts reads the accounts file at path. A missing file is an error
// (create it with "guardboard accounts add").
func OpenAccounts(path string) (*Accounts, error) {
	a := &Accounts{path: path}
	if err := a.reload(true); err != nil {
		return nil, err
	}
	return a, nil
}

// reload reads the file again if it changed (or always with force).
func (a *Accounts) reload(force bool) error {
	fi, err := os.Stat(a.path)
	if err != nil {
		return fmt.Errorf("read accounts file: %w", err)
	}
	id := idOf(fi)
	a.mu.Lock()
	same := !force && id == a.seen
	a.mu.Unlock()
	if same {
		return nil
	}
	hashes, err := readAccounts(a.path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.hashes, a.seen = hashes, id
	a.mu.Unlock()
	return nil
}

func readAccounts(path string) (map[string][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read accounts file %s: not a regular file", path)
	}
	if fi.Size() > maxAccountsFile {
		return nil, fmt.Errorf("read accounts file %s: %d bytes, at most %d", path, fi.Size(), maxAccountsFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	return parseAccounts(b, path)
}

// parseAccounts reads the file's lines; every problem names its line.
func parseAccounts(b []byte, name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s:%d: want <operator id>:<bcrypt hash>", name, n))
		case !controller.ValidOperatorID(id):
			errs = append(errs, fmt.Errorf("%s:%d: operator id %q: want 1 to 64 of A-Z a-z 0-9 . _ : - (an opaque id, never a name), not on_site", name, n, id))
		case out[id] != nil:
			errs = append(errs, fmt.Errorf("%s:%d: operator %s listed twice", name, n, id))
		default:
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: operator %s: not a bcrypt hash: %w", name, n, id, err))
				continue
			}
			out[id] = []byte(hash)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// dummyHash is compared against when the operator is unknown, so that a
// login for an unknown id takes as long as one with a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such operator, no such password"), BcryptCost)
	return h
})

// Check reports whether password is operator's. It re-reads the file if it
// changed; a file that became unreadable keeps the accounts read before
// (and is logged by the caller through the error).
func (a *Accounts) Check(operator, password string) (bool, error) {
	_, ok, err := a.Verify(operator, password)
	return ok, err
}

// Verify is Check, and returns the generation of the password it checked
// (see Generation), for the session it opens.
func (a *Accounts) Verify(operator, password string) (gen string, ok bool, err error) {
	rerr := a.reload(false)
	a.mu.Lock()
	hash := a.hashes[operator]
	a.mu.Unlock()
	a.checks.Add(1)
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return "", false, rerr
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return "", false, rerr
	}
	return generation(hash), true, rerr
}

// Exists reports whether operator still has an account.
func (a *Accounts) Exists(operator string) bool {
	_, ok := a.Generation(operator)
	return ok
}

// Generation returns the generation of operator's password as the file
// holds it now: it changes with every passwd; false if the account is
// gone. A session opened with another generation is over.
func (a *Accounts) Generation(operator string) (string, bool) {
	_ = a.reload(false)
	a.mu.Lock()
	defer a.mu.Unlock()
	hash := a.hashes[operator]
	if hash == nil {
		return "", false
	}
	return generation(hash), true
}

// AccountsFile edits an accounts file (guardboard accounts).
type AccountsFile struct {
	Path string
	// Cost is the bcrypt cost of new hashes (0: BcryptCost).
	Cost int
}

// List returns the operator ids, sorted.
func (f AccountsFile) List() ([]string, error) {
	h, err := f.read(false)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(h))
	for id := range h {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Add adds operator with password; it fails if the operator exists.
func (f AccountsFile) Add(operator, password string) error {
	return f.edit(operator, func(h map[string][]byte) error {
		if h[operator] != nil {
			return fmt.Errorf("add operator %s: already has an account (use passwd to change its password)", operator)
		}
		return f.set(h, operator, password)
	}, true)
}

// Passwd changes operator's password.
func (f AccountsFile) Passwd(operator, password string) error {
	return f.edit(operator, func(h map[string][]byte) error {
		if h[operator] == nil {
			return fmt.Errorf("passwd %s: no such operator", operator)
		}
		return f.set(h, operator, password)
	}, false)
}

// Remove removes operator.
func (f AccountsFile) Remove(operator string) error {
	return f.edit(operator, func(h map[string][]byte) error {
		if h[operator] == nil {
			return fmt.Errorf("remove %s: no such operator", operator)
		}
		delete(h, operator)
		return nil
	}, false)
}

func (f AccountsFile) set(h map[string][]byte, operator, password string) error {
	if n := len([]rune(password)); n < MinPasswordLength {
		return fmt.Errorf("password of %s: %d characters, at least %d", operator, n, MinPasswordLength)
	}
	if len(password) > 72 {
		return fmt.Errorf("password of %s: %d bytes, at most 72 (bcrypt reads no more)", operator, len(password))
	}
	cost := f.Cost
	if cost == 0 {
		cost = BcryptCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("hash the password of %s: %w", operator, err)
	}
	h[operator] = hash
	return nil
}

func (f AccountsFile) read(missingOK bool) (map[string][]byte, error) {
	h, err := readAccounts(f.Path)
	if err != nil && missingOK && errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	return h, err
}

// edit reads the file, applies change and writes it back atomically (a
// new file renamed over the old one): a crash leaves the old file or the
// new one, never half of one. The new file keeps the old one's owner,
// group and mode (less any permission for others), so that the board,
// which may read the file through its group (the Debian package's
// /etc/guardboard/accounts is root:guardboard 0640), still can after an
// edit as root; a file made anew is 0600, its maker's.
func (f AccountsFile) edit(operator string, change func(map[string][]byte) error, create bool) error {
	if !controller.ValidOperatorID(operator) {
		return fmt.Errorf("operator id %q: want 1 to 64 of A-Z a-z 0-9 . _ : - (an opaque id such as guard-7, never a name), not on_site", operator)
	}
	h, err := f.read(create)
	if err != nil {
		return err
	}
	if err := change(h); err != nil {
		return err
	}
	ids := make([]string, 0, len(h))
	for id := range h {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b bytes.Buffer
	b.WriteString("# guardboard accounts: <operator id>:<bcrypt hash>. Edit with guardboard accounts add|passwd|remove.\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "%s:%s\n", id, h[id])
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, ".accounts-*")
	if err != nil {
		return fmt.Errorf("write accounts file: %w", err)
	}
	defer os.Remove(tmp.Name())
	mode := os.FileMode(0o600)
	old, err := os.Stat(f.Path)
	if err == nil {
		mode = old.Mode().Perm() &^ 0o007
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
				tmp.Close()
				return fmt.Errorf("write accounts file: keep the owner and group of %s (uid %d, gid %d): %w", f.Path, st.Uid, st.Gid, err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write accounts file: %w", err)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write accounts file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write accounts file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write accounts file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("write accounts file: %w", err)
	}
	return nil
}
