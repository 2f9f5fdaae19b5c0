package board

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// The board's own surface, tested like the broker's: every endpoint ×
// without a session, with another operator's session, without the CSRF
// token, with another session's token, with a wrong method, from another
// origin; the login limit when attempts come all at once; and sessions
// ended by a password change or an account removed, from the file.

// surface is a board's web side with two operators logged in.
type surface struct {
	ts  *httptest.Server
	acc *Accounts
	af  AccountsFile
}

func newSurface(t *testing.T) *surface {
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
	ts := httptest.NewServer(NewServer(ServerOptions{Board: b, Accounts: acc}))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		cancel()
		<-done
		ts.Close()
	})
	return &surface{ts: ts, acc: acc, af: af}
}

// login returns the session cookie and CSRF token of operator.
func (s *surface) login(t *testing.T, op, pw string) (cookie, token string) {
	t.Helper()
	c := client(t, s.ts)
	resp := postLogin(t, c, s.ts, op, pw)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "login of %s", op)
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			cookie = ck.Value
		}
	}
	require.NotEmpty(t, cookie)
	return cookie, csrfOf(t, c, s.ts)
}

// request is one request of the matrix.
type request struct {
	method, path, body string
	cookie, token      string
	origin             string
}

// do sends r and returns the status and the start of the body (a stream
// is cut short).
func (s *surface) do(t *testing.T, r request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, s.ts.URL+r.path, strings.NewReader(r.body))
	require.NoError(t, err)
	if r.cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: r.cookie})
	}
	if r.token != "" {
		req.Header.Set("X-CSRF-Token", r.token)
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	if r.method == http.MethodPost && strings.HasPrefix(r.path, "/login") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.bare().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// bare is a client that keeps no cookie (the server's own Client is shared,
// and client() gives it a cookie jar) and follows no redirect.
func (s *surface) bare() *http.Client {
	return &http.Client{Transport: s.ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// endpoint is one route of the board.
type endpoint struct {
	method, path, body string
	// session: needs a live session; csrf: needs the session's token too.
	session, csrf bool
	// wrong are methods the route does not take.
	wrong []string
}

var endpoints = []endpoint{
	{method: "GET", path: "/static/board.js", wrong: []string{"POST", "PUT", "DELETE"}},
	{method: "GET", path: "/login", wrong: []string{"PUT", "DELETE", "PATCH"}},
	{method: "POST", path: "/login", body: "operator=guard-9&password=x", wrong: []string{"PUT", "DELETE"}},
	{method: "GET", path: "/", session: true, wrong: []string{"POST", "PUT", "DELETE"}},
	{method: "GET", path: "/api/session", session: true, wrong: []string{"POST", "PUT", "DELETE"}},
	{method: "GET", path: "/api/events", session: true, wrong: []string{"POST", "PUT", "DELETE"}},
	{method: "POST", path: "/api/rooms/room-1/action/ack_alert", body: `{"alert_id":"panic-1"}`, session: true, csrf: true, wrong: []string{"GET", "PUT", "DELETE"}},
	{method: "POST", path: "/api/rooms/room-1/action/end_visit", body: `{}`, session: true, csrf: true, wrong: []string{"GET", "PUT", "DELETE"}},
	{method: "POST", path: "/api/rooms/room-1/sim", body: `{"door":"open"}`, session: true, csrf: true, wrong: []string{"GET", "PUT", "DELETE"}},
	{method: "POST", path: "/logout", session: true, csrf: true, wrong: []string{"GET", "PUT", "DELETE"}},
}

// refused are the statuses of a request the board refuses before acting.
func refused(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusMethodNotAllowed ||
		status == http.StatusSeeOther || status == http.StatusTooManyRequests
}

func TestEndpointMatrix(t *testing.T) {
	s := newSurface(t)
	for _, e := range endpoints {
		name := e.method + " " + e.path
		t.Run(name, func(t *testing.T) {
			// Each case with fresh sessions: /logout ends the one it is given.
			mine, myToken := s.login(t, "guard-7", "pw-guard-7-long")
			theirs, theirToken := s.login(t, "guard-8", "pw-guard-8-long")
			base := request{method: e.method, path: e.path, body: e.body}

			// Without a session.
			st, body := s.do(t, base)
			switch {
			case e.path == "/":
				assert.Equal(t, http.StatusSeeOther, st, "the page sends a stranger to the login")
			case e.session:
				assert.Equal(t, http.StatusUnauthorized, st, "without a session")
				assert.Contains(t, body, "login required")
			case e.method == "POST":
				assert.Equal(t, http.StatusUnauthorized, st, "a login with a wrong password")
			default:
				assert.Equal(t, http.StatusOK, st, "a public page")
			}
			// With a session that is gone (logged out, or made up).
			r := base
			r.cookie, r.token = "not-a-session", myToken
			if st, _ := s.do(t, r); e.session {
				assert.True(t, st == http.StatusUnauthorized || st == http.StatusSeeOther, "a made-up session: %d", st)
			}

			if e.csrf {
				// Without the CSRF token.
				r = base
				r.cookie = mine
				st, _ = s.do(t, r)
				assert.Equal(t, http.StatusForbidden, st, "without the CSRF token")
				// With the token of another session (another operator's).
				r.token = theirToken
				st, _ = s.do(t, r)
				assert.Equal(t, http.StatusForbidden, st, "with the token of another session")
				// From another origin, with everything right.
				r.token, r.origin = myToken, "http://evil.example"
				st, _ = s.do(t, r)
				assert.Equal(t, http.StatusForbidden, st, "from another origin")
			}

			// Wrong methods, even with a session and its token.
			for _, m := range e.wrong {
				r = base
				r.method, r.cookie, r.token = m, mine, myToken
				st, _ = s.do(t, r)
				assert.Equal(t, http.StatusMethodNotAllowed, st, "%s %s", m, e.path)
			}

			// Another operator's session acts as that operator, never as
			// the first: what it is told, what it does, what it ends.
			if e.session {
				r = base
				r.cookie, r.token = theirs, theirToken
				st, body = s.do(t, r)
				assert.False(t, refused(st), "the other operator's own session and token pass: %d %s", st, body)
				switch {
				case e.path == "/api/session":
					assert.Contains(t, body, `"operator":"guard-8"`)
					assert.NotContains(t, body, "guard-7")
					assert.NotContains(t, body, myToken)
				case strings.Contains(e.path, "/action/"):
					var res ActionResult
					require.NoError(t, json.Unmarshal([]byte(body), &res), body)
					assert.Equal(t, "guard-8", res.Operator)
				}
				// The first operator's session still stands (/logout
				// ended the other's only).
				st, body = s.do(t, request{method: "GET", path: "/api/session", cookie: mine})
				assert.Equal(t, http.StatusOK, st)
				assert.Contains(t, body, `"operator":"guard-7"`)
			}

			// Everything right: the board acts (here: no such room, no
			// simulator, or done).
			r = base
			r.cookie, r.token = mine, myToken
			st, body = s.do(t, r)
			if e.method == "POST" && e.path == "/login" {
				return
			}
			assert.False(t, refused(st) && !(e.path == "/logout" && st == http.StatusOK), "with a session and its token: %d %s", st, body)
		})
	}
}

// TestLoginLimitHoldsAtOnce: 100 wrong passwords at once for one operator,
// then the right one: at most 5 passwords are ever compared (the account's
// limit), the others are refused without a look, and so is the right one.
func TestLoginLimitHoldsAtOnce(t *testing.T) {
	s := newSurface(t)
	before := s.acc.checks.Load()
	var wg sync.WaitGroup
	counts := map[int]int{}
	var mu sync.Mutex
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, _ := s.doQuiet(request{method: "POST", path: "/login", body: "operator=guard-7&password=wrong-" + fmt.Sprint(i)})
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	st, _ := s.do(t, request{method: "POST", path: "/login", body: "operator=guard-7&password=pw-guard-7-long"})
	checked := s.acc.checks.Load() - before
	t.Logf("100 wrong passwords at once: %v; password comparisons: %d; then the right one: %d", counts, checked, st)
	assert.Equal(t, int64(LoginFailuresPerAccount), checked, "passwords compared")
	assert.Equal(t, LoginFailuresPerAccount, counts[http.StatusUnauthorized], "tried and wrong")
	assert.Equal(t, 100-LoginFailuresPerAccount, counts[http.StatusTooManyRequests], "refused unseen")
	assert.Equal(t, http.StatusTooManyRequests, st, "the right password, after the limit, gets no session")

	// One address spraying many accounts at once: 20 compared.
	before = s.acc.checks.Load()
	wg = sync.WaitGroup{}
	start = make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _ = s.doQuiet(request{method: "POST", path: "/login", body: fmt.Sprintf("operator=guess-%d&password=x", i)})
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(LoginFailuresPerAddress-LoginFailuresPerAccount), s.acc.checks.Load()-before,
		"the address had %d failures already; it may try %d in all", LoginFailuresPerAccount, LoginFailuresPerAddress)
}

// doQuiet is do for goroutines: no test assertions.
func (s *surface) doQuiet(r request) (int, error) {
	req, err := http.NewRequest(r.method, s.ts.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.bare().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestPasswordChangeAndRemovalEndSessions: guardboard accounts passwd and
// remove write the accounts file; the board, reading only the file, ends
// the operator's sessions at their next request, and no other's.
func TestPasswordChangeAndRemovalEndSessions(t *testing.T) {
	s := newSurface(t)
	session := func(cookie string) int {
		st, _ := s.do(t, request{method: "GET", path: "/api/session", cookie: cookie})
		return st
	}
	seven1, _ := s.login(t, "guard-7", "pw-guard-7-long")
	seven2, _ := s.login(t, "guard-7", "pw-guard-7-long")
	eight, eightToken := s.login(t, "guard-8", "pw-guard-8-long")
	require.Equal(t, http.StatusOK, session(seven1))

	require.NoError(t, s.af.Passwd("guard-7", "a brand new password"))
	assert.Equal(t, http.StatusUnauthorized, session(seven1), "the password changed: the session is over")
	assert.Equal(t, http.StatusUnauthorized, session(seven2), "every session of that operator")
	st, _ := s.do(t, request{method: "POST", path: "/api/rooms/room-1/action/ack_alert", body: `{"alert_id":"panic-1"}`, cookie: seven2})
	assert.Equal(t, http.StatusUnauthorized, st, "nor can it act")
	assert.Equal(t, http.StatusOK, session(eight), "another operator's session stands")
	c := client(t, s.ts)
	assert.Equal(t, http.StatusUnauthorized, postLogin(t, c, s.ts, "guard-7", "pw-guard-7-long").StatusCode, "the old password")
	seven3, _ := s.login(t, "guard-7", "a brand new password")
	assert.Equal(t, http.StatusOK, session(seven3), "a login with the new password")

	// The same password set again is another generation too (a new salt).
	require.NoError(t, s.af.Passwd("guard-8", "pw-guard-8-long"))
	assert.Equal(t, http.StatusUnauthorized, session(eight))
	assert.Equal(t, http.StatusOK, session(seven3))

	// Removed: its sessions end, its token is worth nothing.
	require.NoError(t, s.af.Remove("guard-7"))
	assert.Equal(t, http.StatusUnauthorized, session(seven3))
	st, _ = s.do(t, request{method: "POST", path: "/logout", cookie: seven3, token: eightToken})
	assert.Equal(t, http.StatusUnauthorized, st)
}

// TestOpenStreamEndsWithItsSession: a browser's live stream stops at the
// next tick once its session is over: the password changed, or a logout.
func TestOpenStreamEndsWithItsSession(t *testing.T) {
	s := newSurface(t)
	stream := func(cookie string) <-chan error {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, s.ts.URL+"/api/events", nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
		resp, err := s.bare().Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		ended := make(chan error, 1)
		go func() {
			defer resp.Body.Close()
			_, err := io.Copy(io.Discard, resp.Body)
			ended <- err
		}()
		return ended
	}
	wait := func(ended <-chan error, what string) {
		t.Helper()
		select {
		case err := <-ended:
			assert.NoError(t, err, what)
		case <-time.After(10 * time.Second):
			t.Fatalf("the stream went on after %s", what)
		}
	}
	seven, _ := s.login(t, "guard-7", "pw-guard-7-long")
	ended := stream(seven)
	require.NoError(t, s.af.Passwd("guard-7", "a brand new password"))
	wait(ended, "the password changed")

	eight, token := s.login(t, "guard-8", "pw-guard-8-long")
	ended = stream(eight)
	st, _ := s.do(t, request{method: "POST", path: "/logout", cookie: eight, token: token})
	require.Equal(t, http.StatusOK, st)
	wait(ended, "the logout")
}
