package board

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

//go:embed web
var webFS embed.FS

// CookieName is the session cookie.
const CookieName = "guardboard_session"

// maxBody bounds a request body (a login form, an action).
const maxBody = 4096

// ServerOptions configure the web side.
type ServerOptions struct {
	Board    *Board
	Accounts *Accounts
	// TLS: the board is served over HTTPS; the session cookie is Secure.
	TLS    bool
	Now    func() time.Time
	Logger *slog.Logger
	// Title is shown in the page's header (e.g. the site's name).
	Title string
	// Catalog holds the board's words (nil: the embedded catalogues).
	Catalog *Catalog
	// Prefs keeps each operator's language (nil: in memory).
	Prefs *Prefs
	// Links, if set, cuts and restores a simulated room's link to the
	// broker (a test bench's cable): the tester panel offers it.
	Links LinkCutter
}

// LinkCutter cuts and restores a simulated room's connection to the broker,
// as pulling a cable would: the broker publishes its Last Will, nothing
// from the room reaches anyone until it is restored.
type LinkCutter interface {
	// Cuttable lists the rooms it can cut.
	Cuttable() []string
	// CutLink cuts (cut true) or restores room's link.
	CutLink(room string, cut bool) error
}

// Server is the board's web side: the login, the page, the live stream and
// the actions.
type Server struct {
	o        ServerOptions
	b        *Board
	log      *slog.Logger
	now      func() time.Time
	sessions *Sessions
	limiter  *Limiter
	mux      *http.ServeMux
	login    *template.Template
	words    *Catalog
	prefs    *Prefs
}

// NewServer returns the board's HTTP handler.
func NewServer(o ServerOptions) *Server {
	if o.Now == nil {
		o.Now = wallclock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Title == "" {
		o.Title = "Visit rooms"
	}
	if o.Catalog == nil {
		c, err := DefaultCatalog()
		if err != nil {
			panic(err) // the catalogues are embedded: a test keeps them readable
		}
		o.Catalog = c
	}
	if o.Prefs == nil {
		o.Prefs, _ = OpenPrefs("")
	}
	s := &Server{o: o, b: o.Board, log: o.Logger, now: o.Now, sessions: NewSessions(o.Now), limiter: NewLimiter(o.Now),
		mux: http.NewServeMux(), words: o.Catalog, prefs: o.Prefs}
	s.login = template.Must(template.ParseFS(webFS, "web/login.html"))
	static, _ := fs.Sub(webFS, "web/static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.loginPost)
	s.mux.HandleFunc("POST /logout", s.authed(s.logout))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /api/session", s.authed(s.session))
	s.mux.HandleFunc("GET /api/events", s.authed(s.events))
	s.mux.HandleFunc("POST /api/rooms/{room}/action/{action}", s.authed(s.action))
	s.mux.HandleFunc("POST /api/rooms/{room}/sim", s.authed(s.simSet))
	s.mux.HandleFunc("POST /api/rooms/{room}/link", s.authed(s.cutLink))
	s.mux.HandleFunc("GET /api/i18n", s.i18n)
	s.mux.HandleFunc("POST /api/prefs", s.authed(s.setPrefs))
	s.mux.HandleFunc("GET /api/records", s.authed(s.records))
	s.mux.HandleFunc("GET /api/records.csv", s.authed(s.recordsCSV))
	return s
}

// Limiter returns the failed-login limiter (its limits may be tuned).
func (s *Server) Limiter() *Limiter { return s.limiter }

// ServeHTTP sets the security headers and serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes Chromium send Origin: null on a form POST
	h.Set("X-Frame-Options", "DENY")
	if s.o.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a POST whose Origin header (sent by every current
// browser on a POST) names another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type authedHandler func(w http.ResponseWriter, r *http.Request, ss Session, sid string)

// authed requires a live session of an account that still exists.
func (s *Server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		var ss Session
		ok := false
		if err == nil {
			ss, ok = s.sessions.Get(c.Value)
		}
		if ok && !s.current(ss) {
			ok = false
		}
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
			return
		}
		h(w, r, ss, c.Value)
	}
}

func (s *Server) currentSession(r *http.Request) (Session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Session{}, false
	}
	ss, ok := s.sessions.Get(c.Value)
	if ok && !s.current(ss) {
		return Session{}, false
	}
	return ss, ok
}

// current reports whether ss still stands: its account exists and has the
// password it logged in with. A session that does not is ended, with every
// other of its operator's that does not (guardboard accounts passwd or
// remove, from another process: the accounts file tells).
func (s *Server) current(ss Session) bool {
	gen, ok := s.o.Accounts.Generation(ss.Operator)
	if ok && gen == ss.Generation {
		return true
	}
	s.sessions.EndStale(ss.Operator, gen)
	s.log.Info("session ended: the operator's account changed", "operator", ss.Operator, "removed", !ok)
	return false
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.currentSession(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	// The page says its language from the first byte (the script then
	// fills in the words).
	b = []byte(strings.Replace(string(b), `<html lang="en">`, `<html lang="`+s.sessionLang(r, ss.Operator)+`">`, 1))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

type loginData struct {
	Title, Error, Operator string
	// Lang is the page's language; T its words.
	Lang string
	T    map[string]string
}

// browserLang is the language for a request without a session: ?lang=,
// else the browser's Accept-Language.
func (s *Server) browserLang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); Supported(l) {
		return l
	}
	return s.words.Match(r.Header.Get("Accept-Language"))
}

// sessionLang is an operator's language: their choice, else the browser's.
func (s *Server) sessionLang(r *http.Request, operator string) string {
	if l := s.prefs.Lang(operator); l != "" {
		return l
	}
	return s.browserLang(r)
}

func (s *Server) loginData(r *http.Request) loginData {
	l := s.browserLang(r)
	return loginData{Title: s.o.Title, Lang: l, T: s.words.Messages(l)}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, http.StatusOK, s.loginData(r))
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, d loginData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.login.Execute(w, d); err != nil {
		s.log.Error("render login page", "err", err)
	}
}

// clientAddress is the peer's IP (the board trusts no forwarding header:
// put no proxy in front of it, or limit there too).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	d := s.loginData(r)
	if err := r.ParseForm(); err != nil {
		d.Error = s.words.T(d.Lang, "login.unreadable", nil)
		s.renderLogin(w, http.StatusBadRequest, d)
		return
	}
	if l := r.PostForm.Get("lang"); Supported(l) {
		d.Lang, d.T = l, s.words.Messages(l) // the language the form was shown in
	}
	op, pw := strings.TrimSpace(r.PostForm.Get("operator")), r.PostForm.Get("password")
	addr := clientAddress(r)
	d.Operator = op
	ok, wait, ticket := s.limiter.Attempt(op, addr)
	if !ok {
		s.log.Warn("login refused: too many failed logins", "operator", op, "address", addr, "retry_after", wait.Round(time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		d.Error = s.words.T(d.Lang, "login.too_many", map[string]any{"Minutes": roundUpMinutes(wait)})
		s.renderLogin(w, http.StatusTooManyRequests, d)
		return
	}
	good, gen := false, ""
	if controller.ValidOperatorID(op) {
		var err error
		gen, good, err = s.o.Accounts.Verify(op, pw)
		if err != nil {
			s.log.Error("accounts file", "err", err)
		}
	}
	if !good {
		// Attempt counted it already.
		s.log.Warn("login failed", "operator", op, "address", addr)
		d.Error = s.words.T(d.Lang, "login.wrong", nil)
		s.renderLogin(w, http.StatusUnauthorized, d)
		return
	}
	s.limiter.Succeed(op, addr, ticket)
	sid, _ := s.sessions.Start(op, gen)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sid, Path: "/", HttpOnly: true, Secure: s.o.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionLife / time.Second)})
	s.log.Info("login", "operator", op, "address", addr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func roundUpMinutes(d time.Duration) int { return max(int((d+time.Minute-1)/time.Minute), 1) }

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss Session, sid string) {
	if !CSRFMatches(ss, r.Header.Get("X-CSRF-Token")) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong CSRF token"})
		return
	}
	s.sessions.End(sid)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.o.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	res := map[string]any{"operator": ss.Operator, "csrf": ss.CSRF, "title": s.o.Title,
		"sim_driver": s.b.SimEnabled(), "lang": s.sessionLang(r, ss.Operator), "link_cutter": s.o.Links != nil}
	if s.o.Links != nil {
		res["cuttable"] = s.o.Links.Cuttable()
	}
	writeJSON(w, http.StatusOK, res)
}

// i18n returns the words of a language for the page: {lang, messages}.
func (s *Server) i18n(w http.ResponseWriter, r *http.Request) {
	l := r.URL.Query().Get("lang")
	if !Supported(l) {
		l = s.browserLang(r)
		if ss, ok := s.currentSession(r); ok {
			l = s.sessionLang(r, ss.Operator)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lang": l, "messages": s.words.Messages(l)})
}

// setPrefs keeps the operator's language.
func (s *Server) setPrefs(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	if !CSRFMatches(ss, r.Header.Get("X-CSRF-Token")) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong CSRF token: reload the page"})
		return
	}
	var req struct {
		Lang string `json:"lang"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "preferences: " + err.Error()})
		return
	}
	if err := s.prefs.SetLang(ss.Operator, req.Lang); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"lang": req.Lang})
}

// recordsPeriod reads ?days= (1 to 366, default 1): the records of the
// last that many days.
func (s *Server) recordsPeriod(r *http.Request) (time.Time, time.Time, error) {
	days := 1
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			return time.Time{}, time.Time{}, fmt.Errorf("days %q: want 1 to 366", v)
		}
		days = n
	}
	to := s.now()
	return to.Add(-time.Duration(days) * 24 * time.Hour), to.Add(time.Second), nil
}

// records returns the response-time records of a period, with their sums
// per room and shift.
func (s *Server) records(w http.ResponseWriter, r *http.Request, _ Session, _ string) {
	from, to, err := s.recordsPeriod(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, s.b.Records.Summary(from, to))
}

// recordsCSV exports the response-time records of a period.
func (s *Server) recordsCSV(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	from, to, err := s.recordsPeriod(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="response-times-%s.csv"`, from.Format("2006-01-02")))
	s.log.Info("records exported", "operator", ss.Operator, "from", from, "to", to)
	if err := WriteCSV(w, s.b.Records.Between(from, to)); err != nil {
		s.log.Error("records export", "err", err)
	}
}

// cutLink cuts or restores a simulated room's link (the tester panel).
func (s *Server) cutLink(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	if !CSRFMatches(ss, r.Header.Get("X-CSRF-Token")) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong CSRF token: reload the page"})
		return
	}
	room := r.PathValue("room")
	if s.o.Links == nil || !slices.Contains(s.o.Links.Cuttable(), room) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no room whose link this board can cut: " + strconv.Quote(room)})
		return
	}
	var req struct {
		Cut bool `json:"cut"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "link: " + err.Error()})
		return
	}
	if err := s.o.Links.CutLink(room, req.Cut); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("link cut", "operator", ss.Operator, "room", room, "cut", req.Cut)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// events is the live stream: Server-Sent Events. A browser that resumes
// (Last-Event-ID, or ?last_event_id= after the page reconnects by itself)
// gets every update it missed, in order, if the history still holds them,
// else a snapshot; then the updates as they come, and a tick with the
// board's clock every second.
func (s *Server) events(w http.ResponseWriter, r *http.Request, ss Session, sid string) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	h := s.b.History
	missed, ch, ok := h.Subscribe(last)
	defer h.Unsubscribe(ch)
	write := func(id, event string, data []byte) bool {
		_ = rc.SetWriteDeadline(wallclock.Deadline(10 * time.Second))
		var sb strings.Builder
		if id != "" {
			sb.WriteString("id: " + id + "\n")
		}
		sb.WriteString("event: " + event + "\n")
		sb.WriteString("data: ")
		sb.Write(data)
		sb.WriteString("\n\n")
		if _, err := io.WriteString(w, sb.String()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return
	}
	var skipTo uint64
	if !ok {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		data, head, err := s.b.Snapshot(ctx)
		cancel()
		if err != nil {
			return
		}
		skipTo, _ = h.Seq(head)
		if !write(head, "snapshot", data) {
			return
		}
	} else {
		for _, u := range missed {
			if !write(u.ID, u.Event, u.Data) {
				return
			}
		}
		if len(missed) > 0 {
			s.log.Debug("stream resumed", "from", last, "updates", len(missed))
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case u, open := <-ch:
			if !open {
				return // dropped (too slow) or the board stops: the browser resumes
			}
			if n, _ := h.Seq(u.ID); skipTo > 0 && n <= skipTo {
				continue
			}
			if !write(u.ID, u.Event, u.Data) {
				return
			}
		case <-tick.C:
			// A session logged out, or whose operator's password changed
			// or account went, stops receiving at once.
			if live, ok := s.sessions.Get(sid); !ok || live.Generation != ss.Generation || !s.current(live) {
				return
			}
			if !write("", "tick", fmt.Appendf(nil, `{"now":%q}`, contract.FormatTime(s.now()))) {
				return
			}
		}
	}
}

// actionRequest is the body of an action.
type actionRequest struct {
	AlertID string `json:"alert_id"`
	Add     string `json:"add"`
	Reason  string `json:"reason"`
}

// ActionResult is what the page shows after an action: the room's reply,
// or why there was none.
type ActionResult struct {
	OK        bool     `json:"ok"`
	Room      string   `json:"room"`
	Action    string   `json:"action"`
	Operator  string   `json:"operator"`
	RequestID string   `json:"request_id,omitempty"`
	Code      string   `json:"code,omitempty"`
	Message   string   `json:"message,omitempty"`
	Blockers  []string `json:"blockers,omitempty"`
}

// Actions a guard may take from the board. start_visit is the booking
// system's.
var boardActions = map[string]bool{"ack_alert": true, "extend_visit": true, "end_visit": true, "set_ready": true,
	"out_of_service": true, "back_in_service": true, "ack_contact": true}

func (s *Server) action(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	if !CSRFMatches(ss, r.Header.Get("X-CSRF-Token")) {
		s.log.Warn("action refused: missing or wrong CSRF token", "operator", ss.Operator, "address", clientAddress(r))
		writeJSON(w, http.StatusForbidden, ActionResult{Code: "csrf", Message: "missing or wrong CSRF token: reload the page"})
		return
	}
	room, action := r.PathValue("room"), r.PathValue("action")
	res := ActionResult{Room: room, Action: action, Operator: ss.Operator}
	if !boardActions[action] {
		res.Code, res.Message = "unknown_action", "the board has no action "+strconv.Quote(action)
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	var req actionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		res.Code, res.Message = "bad_request", "action body: "+err.Error()
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	if _, ok := s.b.View(r.Context(), room); !ok {
		res.Code, res.Message = "unknown_room", "the board knows no room "+strconv.Quote(room)
		writeJSON(w, http.StatusNotFound, res)
		return
	}
	if action == "ack_contact" {
		// The board's own alarm: the room cannot hear, the board keeps it.
		s.log.Info("action", "operator", ss.Operator, "room", room, "action", action)
		if !s.b.AckContact(r.Context(), room, ss.Operator) {
			res.Code, res.Message = "no_contact_alarm", "no unacknowledged loss of contact with "+room
			writeJSON(w, http.StatusConflict, res)
			return
		}
		res.OK = true
		writeJSON(w, http.StatusOK, res)
		return
	}
	var cmd roomclient.Command
	switch action {
	case "ack_alert":
		cmd = roomclient.AckAlert(req.AlertID)
	case "extend_visit":
		d, err := time.ParseDuration(req.Add)
		if err != nil || d <= 0 {
			res.Code, res.Message = "invalid_duration", "add: want a duration such as 15m"
			writeJSON(w, http.StatusBadRequest, res)
			return
		}
		cmd = roomclient.ExtendVisit(d)
	case "end_visit":
		cmd = roomclient.EndVisit()
	case "set_ready":
		cmd = roomclient.SetReady()
	case "out_of_service":
		cmd = roomclient.SetService(false, req.Reason)
	case "back_in_service":
		cmd = roomclient.SetService(true, "")
	}
	s.log.Info("action", "operator", ss.Operator, "room", room, "action", cmd.Action)
	reply, err := s.b.Send(r.Context(), room, ss.Operator, cmd)
	var inv *roomclient.InvalidCommandError
	var noReply *roomclient.NoReplyError
	switch {
	case errors.As(err, &inv):
		res.Code, res.Message = inv.Code, inv.Message
		writeJSON(w, http.StatusBadRequest, res)
		return
	case errors.As(err, &noReply):
		res.RequestID = noReply.RequestID
		res.Code = "no_reply"
		res.Message = fmt.Sprintf("no reply from %s within %s; the command may still reach it until it expires (1 minute): look at the tile before sending it again",
			room, noReply.Waited.Round(time.Second))
		writeJSON(w, http.StatusGatewayTimeout, res)
		return
	case errors.Is(err, ErrNotConnected):
		res.Code, res.Message = "not_connected", "the board has no broker connection: nothing was sent"
		writeJSON(w, http.StatusServiceUnavailable, res)
		return
	case err != nil:
		res.Code, res.Message = "error", err.Error()
		writeJSON(w, http.StatusBadGateway, res)
		return
	}
	res.RequestID, res.OK = reply.RequestID, reply.OK
	if !reply.OK && reply.Error != nil {
		res.Code, res.Message, res.Blockers = reply.Error.Code, reply.Error.Message, reply.Error.Blockers
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) simSet(w http.ResponseWriter, r *http.Request, ss Session, _ string) {
	if !CSRFMatches(ss, r.Header.Get("X-CSRF-Token")) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong CSRF token: reload the page"})
		return
	}
	room := r.PathValue("room")
	v, ok := s.b.View(r.Context(), room)
	if !ok || v.Backend != "sim" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no simulated room " + strconv.Quote(room)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if err := s.b.SimSet(r.Context(), room, body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.log.Info("sim/set", "operator", ss.Operator, "room", room, "control", string(body))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
