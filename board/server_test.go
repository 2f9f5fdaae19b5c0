package board

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// webOnly is the board's web side with a board that has no broker (it
// keeps trying tcp://127.0.0.1:1): login, sessions, CSRF and the stream.
func webOnly(t *testing.T, tlsOn bool) (*httptest.Server, AccountsFile) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts")
	af := AccountsFile{Path: path, Cost: bcrypt.MinCost}
	require.NoError(t, af.Add("guard-7", "pw-guard-7-long"))
	require.NoError(t, af.Add("guard-8", "pw-guard-8-long"))
	acc, err := OpenAccounts(path)
	require.NoError(t, err)
	b := New(Options{Broker: "tcp://127.0.0.1:1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	srv := NewServer(ServerOptions{Board: b, Accounts: acc, TLS: tlsOn})
	var ts *httptest.Server
	if tlsOn {
		ts = httptest.NewTLSServer(srv)
	} else {
		ts = httptest.NewServer(srv)
	}
	t.Cleanup(func() {
		ts.CloseClientConnections()
		cancel()
		<-done
		ts.Close()
	})
	return ts, af
}

func client(t *testing.T, ts *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func postLogin(t *testing.T, c *http.Client, ts *httptest.Server, op, pw string) *http.Response {
	t.Helper()
	resp, err := c.PostForm(ts.URL+"/login", url.Values{"operator": {op}, "password": {pw}})
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func csrfOf(t *testing.T, c *http.Client, ts *httptest.Server) string {
	t.Helper()
	resp, err := c.Get(ts.URL + "/api/session")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	_, rest, _ := strings.Cut(string(b), `"csrf":"`)
	tok, _, _ := strings.Cut(rest, `"`)
	require.NotEmpty(t, tok)
	return tok
}

func TestLoginSessionCookieAndCSRF(t *testing.T) {
	ts, af := webOnly(t, false)
	c := client(t, ts)

	resp, err := c.Get(ts.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/login", resp.Header.Get("Location"))
	for _, p := range []string{"/api/session", "/api/events"} {
		resp, err = c.Get(ts.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
	}

	resp = postLogin(t, c, ts, "guard-7", "wrong")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = postLogin(t, c, ts, "guard-7", "pw-guard-7-long")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			cookie = ck
		}
	}
	require.NotNil(t, cookie)
	assert.True(t, cookie.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	assert.False(t, cookie.Secure, "plain HTTP on loopback")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")

	tok := csrfOf(t, c, ts)
	action := func(header string, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/rooms/room-1/action/end_visit", strings.NewReader("{}"))
		if header != "" {
			req.Header.Set("X-CSRF-Token", header)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, action("", ""), "no CSRF token")
	assert.Equal(t, http.StatusForbidden, action("forged", ""), "a wrong CSRF token")
	assert.Equal(t, http.StatusForbidden, action(tok, "http://evil.example"), "another site's page")
	assert.Equal(t, http.StatusNotFound, action(tok, ts.URL), "a room the board does not know")

	// The account removed: its session ends at the next request.
	require.NoError(t, af.Remove("guard-7"))
	later := wallclock.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(af.Path, later, later))
	resp, err = c.Get(ts.URL + "/api/session")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestSecureCookieWithTLS(t *testing.T) {
	ts, _ := webOnly(t, true)
	c := client(t, ts)
	resp := postLogin(t, c, ts, "guard-8", "pw-guard-8-long")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.NotEmpty(t, resp.Cookies())
	assert.True(t, resp.Cookies()[0].Secure)
	assert.NotEmpty(t, resp.Header.Get("Strict-Transport-Security"))
}

func TestFailedLoginsAreLimited(t *testing.T) {
	ts, _ := webOnly(t, false)
	c := client(t, ts)
	for range LoginFailuresPerAccount {
		assert.Equal(t, http.StatusUnauthorized, postLogin(t, c, ts, "guard-8", "wrong").StatusCode)
	}
	resp := postLogin(t, c, ts, "guard-8", "pw-guard-8-long")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "refused even with the right password")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, http.StatusSeeOther, postLogin(t, c, ts, "guard-7", "pw-guard-7-long").StatusCode,
		"another account from the same address still logs in")
}

func TestStreamStartsWithASnapshotAndSaysTheBrokerIsLost(t *testing.T) {
	ts, _ := webOnly(t, false)
	c := client(t, ts)
	require.Equal(t, http.StatusSeeOther, postLogin(t, c, ts, "guard-7", "pw-guard-7-long").StatusCode)
	resp, err := c.Get(ts.URL + "/api/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	r := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 8 {
		ln, err := r.ReadString('\n')
		require.NoError(t, err)
		lines = append(lines, strings.TrimSpace(ln))
		if strings.HasPrefix(ln, "event: tick") {
			break
		}
	}
	text := strings.Join(lines, "\n")
	assert.Contains(t, text, "retry: 1000")
	assert.Contains(t, text, "event: snapshot")
	assert.Contains(t, text, `"link":{"connected":false`)
	assert.Regexp(t, `id: [0-9a-f]{8}\.\d+`, text)
}
