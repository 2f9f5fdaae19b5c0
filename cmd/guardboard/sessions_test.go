package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/internal/testtier"
)

// TestAccountsCommandEndsSessionsAcrossProcesses: a board serves guard-7's
// session; "guardboard accounts passwd" and then "remove", run as another
// process on the same accounts file (as an administrator does while the
// board runs), end it at its next request.
func TestAccountsCommandEndsSessionsAcrossProcesses(t *testing.T) {
	testtier.Slow(t, "builds guardboard and runs its accounts command")
	dir := t.TempDir()
	bin := filepath.Join(dir, "guardboard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	file := filepath.Join(dir, "accounts")
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"accounts"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	cli("the first long password\n", "add", "guard-7", "--accounts", file)
	cli("another long password\n", "add", "guard-8", "--accounts", file)

	acc, err := board.OpenAccounts(file)
	require.NoError(t, err)
	b := board.New(board.Options{Broker: "tcp://127.0.0.1:1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	ts := httptest.NewServer(board.NewServer(board.ServerOptions{Board: b, Accounts: acc}))
	defer func() { ts.CloseClientConnections(); cancel(); <-done; ts.Close() }()
	bare := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(op, pw string) string {
		t.Helper()
		resp, err := bare.PostForm(ts.URL+"/login", url.Values{"operator": {op}, "password": {pw}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "login %s", op)
		for _, c := range resp.Cookies() {
			if c.Name == board.CookieName {
				return c.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	status := func(cookie string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/session", nil)
		req.AddCookie(&http.Cookie{Name: board.CookieName, Value: cookie})
		resp, err := bare.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	seven, eight := login("guard-7", "the first long password"), login("guard-8", "another long password")
	require.Equal(t, http.StatusOK, status(seven))

	said := cli("a second long password\n", "passwd", "guard-7", "--accounts", file)
	assert.Contains(t, said, "its sessions on the board end at their next request")
	assert.Equal(t, http.StatusUnauthorized, status(seven), "the password changed in another process")
	assert.Equal(t, http.StatusOK, status(eight))
	seven = login("guard-7", "a second long password")

	cli("", "remove", "guard-7", "--accounts", file)
	assert.Equal(t, http.StatusUnauthorized, status(seven), "the account removed in another process")
	assert.Equal(t, http.StatusOK, status(eight))
}
