package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeConfig writes doc to a file in a new temporary directory.
func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	return path
}

// loadWithin runs Load on another goroutine and fails the test if it has
// not returned in a minute: a Load that blocks must fail, not hang the run.
func loadWithin(t *testing.T, path string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Load(path)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%s) blocked", path)
		return nil, nil
	}
}

func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for path, kind := range map[string]string{
		fifo:        "is a named pipe (FIFO), not a regular file",
		dir:         "is a directory, not a regular file",
		"/dev/zero": "is a character device, not a regular file",
		"/dev/null": "is a character device, not a regular file",
	} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("test setup: %v", err)
		}
		_, err := loadWithin(t, path)
		var nr *NotRegularError
		require.ErrorAs(t, err, &nr, "%s", path)
		assert.Equal(t, path, nr.Path)
		assert.EqualError(t, err, "read config "+path+": "+path+" "+kind)
	}
}

func TestLoadFollowsSymlinksToRegularFiles(t *testing.T) {
	real := writeConfig(t, base)
	link := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, os.Symlink(real, link))
	c, err := Load(link)
	require.NoError(t, err)
	assert.Equal(t, "room-1", c.Room)
}

func TestLoadCapsTheSize(t *testing.T) {
	// A sparse gigabyte: refused from its size, before a byte is read.
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30))
	require.NoError(t, f.Close())
	_, err = loadWithin(t, huge)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorContains(t, err, "read config "+huge+": file too large for a config (1048576 bytes at most")

	// At the limit a file is read; one byte more is refused.
	padded := func(size int) string {
		doc := base + "#"
		return doc + strings.Repeat("x", size-len(doc)-1) + "\n"
	}
	c, err := Load(writeConfig(t, padded(MaxFileSize)))
	require.NoError(t, err)
	assert.Equal(t, "room-1", c.Room)
	_, err = Load(writeConfig(t, padded(MaxFileSize+1)))
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestSecretFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode fs.FileMode, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode)) // beyond the umask
		return p
	}
	ca := file("ca.pem", 0o644, "certificate")
	cert := file("room.pem", 0o644, "certificate")
	key := file("room.key", 0o600, "key")
	config := func(password, key string) string {
		return variant(t, "tls://broker.example:8883\n", fmt.Sprintf(`tls://broker.example:8883
  username: room-1
  password_file: %s
  tls: {ca_file: %s, cert_file: %s, key_file: %s}
`, password, ca, cert, key))
	}

	_, err := Load(writeConfig(t, config(file("ok", 0o600, "s3cret\n"), key)))
	require.NoError(t, err, "a private password file and key, public certificates")
	_, err = Load(writeConfig(t, config(file("ro", 0o400, "s3cret\n"), file("ro.key", 0o400, "key"))))
	require.NoError(t, err, "read-only for the owner")

	for _, tc := range []struct {
		name, password, key string
		want                []string
	}{
		{"group-readable", file("pw-g", 0o640, "x"), key, []string{
			"mqtt.password_file: " + dir + "/pw-g is readable by its group (mode 0640), but it holds a secret"}},
		{"world-readable", file("pw-o", 0o604, "x"), key, []string{
			"mqtt.password_file: " + dir + "/pw-o is readable by everyone (mode 0604)"}},
		{"both, and the key", file("pw-go", 0o644, "x"), file("k-g", 0o660, "k"), []string{
			"mqtt.password_file: " + dir + "/pw-go is readable by its group and readable by everyone (mode 0644)",
			"mqtt.tls.key_file: " + dir + "/k-g is readable and writable by its group (mode 0660)"}},
		{"writable by others", file("pw-w", 0o602, "x"), key, []string{
			"mqtt.password_file: " + dir + "/pw-w is writable by everyone (mode 0602)"}},
		{"a directory", t.TempDir(), key, []string{"is a directory, not a regular file"}},
		{"missing", dir + "/nothing", key, []string{"mqtt.password_file: " + dir + "/nothing does not exist"}},
		{"empty", file("pw-empty", 0o600, ""), key, []string{"mqtt.password_file: " + dir + "/pw-empty is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, config(tc.password, tc.key))
			_, err := Load(path)
			got := problems(t, err)
			require.Len(t, got, len(tc.want), "%s", strings.Join(got, "\n"))
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
			// Each names the line of its key.
			assert.True(t, strings.HasPrefix(got[0], path+":19: mqtt.password_file: "), "%s", got[0])
			if len(got) > 1 {
				assert.True(t, strings.HasPrefix(got[1], path+":20: mqtt.tls.key_file: "), "%s", got[1])
			}
		})
	}

	// A public certificate may be readable by all, but must be a file.
	path := writeConfig(t, strings.Replace(config(file("pw", 0o600, "x"), key), "ca_file: "+ca, "ca_file: "+dir, 1))
	_, err = Load(path)
	assert.Equal(t, []string{path + ":20: mqtt.tls.ca_file: " + dir + " is a directory, not a regular file"}, problems(t, err))
	// Parse alone touches no file.
	_, err = Parse([]byte(config(dir+"/nothing", dir+"/nothing")), "x.yaml")
	require.NoError(t, err)
	assert.False(t, errors.Is(err, fs.ErrNotExist))
}
