package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runArgs(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"guardboard"}, args...), func(string) string { return "" },
		strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestAccountsCommands(t *testing.T) {
	file := filepath.Join(t.TempDir(), "accounts")
	out, _, err := runArgs(t, "a long enough password\n", "accounts", "add", "guard-7", "--accounts", file)
	require.NoError(t, err)
	assert.Contains(t, out, "added: guard-7")
	_, _, err = runArgs(t, "another long password\n", "accounts", "add", "--accounts", file, "guard-8")
	require.NoError(t, err)
	out, _, err = runArgs(t, "", "accounts", "list", "--accounts", file)
	require.NoError(t, err)
	assert.Equal(t, "guard-7\nguard-8\n", out)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "a long enough password", "only the hash is kept")
	assert.Contains(t, string(b), "guard-7:$2a$12$")

	_, _, err = runArgs(t, "short\n", "accounts", "passwd", "guard-7", "--accounts", file)
	assert.ErrorContains(t, err, "at least 10")
	_, _, err = runArgs(t, "a changed long password\n", "accounts", "passwd", "guard-7", "--accounts", file)
	require.NoError(t, err)
	out, _, err = runArgs(t, "", "accounts", "remove", "guard-8", "--accounts", file)
	require.NoError(t, err)
	assert.Contains(t, out, "removed guard-8")
	out, _, _ = runArgs(t, "", "accounts", "list", "--accounts", file)
	assert.Equal(t, "guard-7\n", out)

	_, _, err = runArgs(t, "a long enough password\n", "accounts", "add", "Maria Rossi", "--accounts", file)
	assert.ErrorContains(t, err, "never a name")
	for _, args := range [][]string{{"accounts"}, {"accounts", "add", "guard-9"}, {"accounts", "frob", "--accounts", file},
		{"accounts", "add", "a", "b", "--accounts", file}, {"nonsense"}} {
		_, _, err = runArgs(t, "", args...)
		var ue *usageError
		assert.True(t, errors.As(err, &ue), "%v: %v", args, err)
	}
}

func TestServeRefusesWhatIsUnsafe(t *testing.T) {
	file := filepath.Join(t.TempDir(), "accounts")
	_, _, err := runArgs(t, "", "serve", "--broker", "tcp://127.0.0.1:1")
	assert.ErrorContains(t, err, "--accounts")
	require.NoError(t, os.WriteFile(file, []byte("# nobody yet\n"), 0o600))
	_, _, err = runArgs(t, "", "serve", "--accounts", file, "--broker", "tcp://127.0.0.1:1")
	assert.ErrorContains(t, err, "has no account")
	_, _, err = runArgs(t, "a long enough password\n", "accounts", "add", "guard-7", "--accounts", file)
	require.NoError(t, err)
	_, _, err = runArgs(t, "", "serve", "--accounts", file, "--broker", "tcp://127.0.0.1:1", "--listen", "0.0.0.0:0")
	assert.ErrorContains(t, err, "not loopback: serve the board over HTTPS")
	_, _, err = runArgs(t, "", "serve", "--accounts", file, "--broker", "tcp://127.0.0.1:1", "--tls-cert", "x")
	assert.ErrorContains(t, err, "go together")
	_, _, err = runArgs(t, "", "serve", "--accounts", file, "--broker", "tcp://127.0.0.1:1", "--broker-password-file", filepath.Join(t.TempDir(), "none"))
	assert.ErrorContains(t, err, "password file")
}

// The demo starts its rooms and the board, prints the URL and the login,
// and serves the login page; Ctrl-C ends it.
func TestDemoStartsAndServes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four rooms")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"guardboard", "-demo", "--listen", "127.0.0.1:0"}, func(string) string { return "" },
			strings.NewReader(""), w, &bytes.Buffer{})
		w.Close()
	}()
	var url string
	buf := make([]byte, 4096)
	deadline := wallclock.Now().Add(60 * time.Second)
	var got strings.Builder
	for !strings.Contains(got.String(), "Ctrl-C ends the demo") && wallclock.Now().Before(deadline) {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		require.NoError(t, err, "demo output so far: %s", got.String())
	}
	if _, rest, ok := strings.Cut(got.String(), "guard station board (demo): "); ok {
		url, _, _ = strings.Cut(rest, "\n")
	}
	require.NotEmpty(t, url, "demo output: %s", got.String())
	assert.Contains(t, got.String(), "log in as guard-1, password demo-password")
	resp, err := http.Get(url + "login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not end after Ctrl-C")
	}
}

// The board is a command of its own: roomd, which runs on the Pi, links
// none of it.
func TestRoomdStaysFreeOfTheBoard(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../roomd").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	assert.Contains(t, deps, "github.com/roomd/roomd/link", "the listing is roomd's")
	for _, d := range deps {
		assert.False(t, d == "github.com/roomd/roomd/board" || strings.HasPrefix(d, "github.com/chromedp") ||
			strings.HasPrefix(d, "golang.org/x/crypto/bcrypt"), "roomd links %s", d)
	}
}

// The demo prints the URL where roomd -demo --keep tells a newcomer to look.
func TestDemoURLMatchesRoomdsHint(t *testing.T) {
	b, err := os.ReadFile("../roomd/demo.go")
	require.NoError(t, err)
	assert.Contains(t, string(b), `"http://127.0.0.1:8080/"`)
	assert.Contains(t, string(b), demoPassword)
	assert.Contains(t, usage, "guardboard -demo")
}
