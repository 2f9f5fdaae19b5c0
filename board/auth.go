package board

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// SessionLife is how long a login lasts: a guard's shift and a margin. A
// board on a wall screen is idle for hours, so there is no idle timeout.
const SessionLife = 14 * time.Hour

// Session is a logged-in operator.
type Session struct {
	Operator string
	// Generation is that of the password the operator logged in with
	// (Accounts.Generation): once the account's password changes, or the
	// account goes, the session is over.
	Generation string
	// CSRF is the token every action must carry (header X-CSRF-Token).
	CSRF    string
	Created time.Time
}

// Sessions holds the board's sessions in memory: a board restart logs
// everybody out (the page shows the login form again).
type Sessions struct {
	mu   sync.Mutex
	byID map[string]Session
	now  func() time.Time
}

// NewSessions returns an empty store on clock now.
func NewSessions(now func() time.Time) *Sessions {
	return &Sessions{byID: map[string]Session{}, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// New starts a session for operator and returns its id (the cookie).
func (s *Sessions) New(operator string) (string, Session) { return s.Start(operator, "") }

// Start starts a session for operator, logged in with the password of
// generation, and returns its id (the cookie).
func (s *Sessions) Start(operator, generation string) (string, Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, ss := range s.byID {
		if now.Sub(ss.Created) > SessionLife {
			delete(s.byID, id)
		}
	}
	id := randomToken()
	ss := Session{Operator: operator, Generation: generation, CSRF: randomToken(), Created: now}
	s.byID[id] = ss
	return id, ss
}

// Get returns the live session with id.
func (s *Sessions) Get(id string) (Session, bool) {
	if id == "" {
		return Session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return Session{}, false
	}
	if s.now().Sub(ss.Created) > SessionLife {
		delete(s.byID, id)
		return Session{}, false
	}
	return ss, true
}

// End ends the session with id.
func (s *Sessions) End(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// EndStale ends every session of operator not of generation (the
// password changed), or all of them with "" (the account removed).
func (s *Sessions) EndStale(operator, generation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.byID {
		if ss.Operator == operator && (generation == "" || ss.Generation != generation) {
			delete(s.byID, id)
		}
	}
}

// EndOperator ends every session of operator (an account removed).
func (s *Sessions) EndOperator(operator string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.byID {
		if ss.Operator == operator {
			delete(s.byID, id)
		}
	}
}

// CSRFMatches compares a presented token with the session's in constant time.
func CSRFMatches(ss Session, presented string) bool {
	return presented != "" && subtle.ConstantTimeCompare([]byte(ss.CSRF), []byte(presented)) == 1
}

// Limits of failed logins: within LoginWindow, at most LoginFailuresPerAccount
// for one operator id (from anywhere) and LoginFailuresPerAddress from one
// client address (for any id). Beyond either, every login attempt that
// matches is refused without looking at the password until the oldest
// failure leaves the window.
const (
	LoginWindow             = 15 * time.Minute
	LoginFailuresPerAccount = 5
	LoginFailuresPerAddress = 20
)

// maxLimiterKeys is when the limiter sweeps out what left its window.
const maxLimiterKeys = 10000

// Limiter counts failed logins per account and per client address.
type Limiter struct {
	mu        sync.Mutex
	byAccount map[string][]time.Time
	byAddress map[string][]time.Time
	now       func() time.Time
	// PerAccount and PerAddress default to the constants above.
	PerAccount, PerAddress int
	Window                 time.Duration
}

// NewLimiter returns a limiter on clock now with the default limits.
func NewLimiter(now func() time.Time) *Limiter {
	return &Limiter{byAccount: map[string][]time.Time{}, byAddress: map[string][]time.Time{}, now: now,
		PerAccount: LoginFailuresPerAccount, PerAddress: LoginFailuresPerAddress, Window: LoginWindow}
}

func (l *Limiter) prune(m map[string][]time.Time, key string, now time.Time) []time.Time {
	ts := m[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(m, key)
		return nil
	}
	m[key] = ts
	return ts
}

// Allow reports whether a login for account from address may be tried
// now, and if not, how long until it may.
func (l *Limiter) Allow(account, address string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allow(account, address)
}

func (l *Limiter) allow(account, address string) (bool, time.Duration) {
	now := l.now()
	var wait time.Duration
	if ts := l.prune(l.byAccount, account, now); len(ts) >= l.PerAccount {
		wait = max(wait, l.Window-now.Sub(ts[len(ts)-l.PerAccount]))
	}
	if ts := l.prune(l.byAddress, address, now); len(ts) >= l.PerAddress {
		wait = max(wait, l.Window-now.Sub(ts[len(ts)-l.PerAddress]))
	}
	return wait == 0, wait
}

// Attempt admits a login attempt for account from address, or says how
// long until one may be tried. An admitted attempt is counted as a failure
// at once, under the same lock as the check, so that attempts that come
// all at once cannot all pass the check before the first has failed: at
// most PerAccount (and PerAddress) of them are ever tried. A login that
// succeeds gives its ticket back to Succeed.
func (l *Limiter) Attempt(account, address string) (ok bool, wait time.Duration, ticket time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok, wait = l.allow(account, address); !ok {
		return false, wait, time.Time{}
	}
	return true, 0, l.fail(account, address)
}

// Fail records a failed login.
func (l *Limiter) Fail(account, address string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail(account, address)
}

func (l *Limiter) fail(account, address string) time.Time {
	now := l.now()
	if len(l.byAccount)+len(l.byAddress) > maxLimiterKeys {
		// Bound the memory a guesser spraying ids can take: forget
		// what left the window.
		for k := range l.byAccount {
			l.prune(l.byAccount, k, now)
		}
		for k := range l.byAddress {
			l.prune(l.byAddress, k, now)
		}
	}
	l.byAccount[account] = append(l.prune(l.byAccount, account, now), now)
	l.byAddress[address] = append(l.prune(l.byAddress, address, now), now)
	return now
}

// Succeed forgets the failures of account, and the attempt of ticket
// (from Attempt) at address; not the address's other failures: a guessing
// client that also knows one password stays limited.
func (l *Limiter) Succeed(account, address string, ticket time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byAccount, account)
	ts := l.byAddress[address]
	for i, at := range ts {
		if !ticket.IsZero() && at.Equal(ticket) {
			l.byAddress[address] = append(ts[:i:i], ts[i+1:]...)
			break
		}
	}
}
