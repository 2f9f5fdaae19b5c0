package siteworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/wallclock"
)

// Verify waits up to timeout until the centre holds every record of every
// room on events and (alert records) on alerts, and then until the retained
// topics of every site at the centre equal the site's own (Converged); then
// checks that no command acted after its expires_at (CommandsInTime).
//
// alertsMayLack is for a centre that lost messages it had acknowledged (a
// mosquitto killed before its save): a gap on events shows the loss and a
// replay brings it back, on events and alerts; but a copy on alerts can be
// lost alone (the save fell between the two copies), and no gap shows that,
// alert seqs skipping. The contract's complete stream is events, so only
// there must nothing be missing after such a crash.
func (w *World) Verify(ctx context.Context, timeout time.Duration, alertsMayLack bool) error {
	all, alerts := w.Expected()
	var missing, missingAlerts []Key
	err := w.Booking.AwaitOr("every record at the centre", timeout, func() bool {
		missing, missingAlerts = w.Booking.Missing(all, alerts)
		return len(missing) == 0 && (len(missingAlerts) == 0 || alertsMayLack)
	}, func() string {
		return fmt.Sprintf("missing on events: %v; missing on alerts: %v", missing, missingAlerts)
	})
	if err != nil {
		return err
	}
	st := w.Booking.Stats()
	w.logf("centre: %d records of %d expected, all present; %d duplicates dropped; %d replay requests, %d records recovered by them",
		st.Records, len(all), st.Duplicates, st.Replays, st.Recovered)
	if len(missingAlerts) > 0 {
		w.logf("centre killed: %d alert records came on events only (%v)", len(missingAlerts), missingAlerts)
	}
	for _, s := range w.sites {
		if err := w.Converged(ctx, s, timeout); err != nil {
			return err
		}
	}
	acted, err := w.CommandsInTime()
	if err != nil {
		return err
	}
	w.logf("%d commands acted, each before its expires_at", acted)
	return nil
}

// bridgedRetained are the retained topics of a room that cross the bridge.
var bridgedRetained = []string{"availability", "state", "info"}

// Converged waits up to timeout until the centre's retained messages under
// the site's prefix equal the site's own retained messages on the bridged
// topics. A state is compared without its at and visit.remaining_s, which
// every heartbeat changes.
func (w *World) Converged(ctx context.Context, s *Site, timeout time.Duration) error {
	deadline := wallclock.Now().Add(timeout)
	for {
		site, err := s.Retained(ctx, "visitrooms/")
		if err != nil {
			return err
		}
		centre, err := w.CentreRetained(ctx, "visitrooms/"+s.ID+"/")
		if err != nil {
			return err
		}
		mine := map[string]string{}
		for topic, p := range site {
			parts := strings.Split(topic, "/")
			if len(parts) == 3 && slices.Contains(bridgedRetained, parts[2]) {
				mine["visitrooms/"+s.ID+"/"+parts[1]+"/"+parts[2]] = normalise(parts[2], p)
			}
		}
		theirs := map[string]string{}
		for topic, p := range centre {
			parts := strings.Split(topic, "/")
			if len(parts) == 4 {
				theirs[topic] = normalise(parts[3], p)
			}
		}
		if len(mine) > 0 && maps.Equal(mine, theirs) {
			w.logf("site %s: %d retained messages equal at the centre", s.ID, len(mine))
			return nil
		}
		if wallclock.Now().After(deadline) {
			return fmt.Errorf("retained messages of site %s at the site and at the centre differ after %s: %s", s.ID, timeout, diff(mine, theirs))
		}
		select {
		case <-w.Booking.changed:
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// diff lists the topics whose messages differ between the site and the
// centre.
func diff(site, centre map[string]string) string {
	topics := slices.Sorted(maps.Keys(site))
	for t := range centre {
		if _, ok := site[t]; !ok {
			topics = append(topics, t)
		}
	}
	var b strings.Builder
	if len(site) == 0 {
		b.WriteString("the site has none; ")
	}
	for _, t := range topics {
		mine, okm := site[t]
		theirs, okt := centre[t]
		switch {
		case !okt:
			fmt.Fprintf(&b, "\n  %s: at the site %q, not at the centre", t, mine)
		case !okm:
			fmt.Fprintf(&b, "\n  %s: at the centre %q, not at the site", t, theirs)
		case mine != theirs:
			fmt.Fprintf(&b, "\n  %s: at the site %q, at the centre %q", t, mine, theirs)
		}
	}
	return b.String()
}

// normalise drops from a state what every heartbeat changes.
func normalise(kind, payload string) string {
	if kind != "state" {
		return payload
	}
	var m map[string]any
	if json.Unmarshal([]byte(payload), &m) != nil {
		return payload
	}
	delete(m, "at")
	if v, ok := m["visit"].(map[string]any); ok {
		delete(v, "remaining_s")
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// Retained returns the site broker's retained messages whose topics start
// with prefix, as the booking identity reads them (Retained).
func (s *Site) Retained(ctx context.Context, prefix string) (map[string]string, error) {
	return Retained(ctx, s.Broker.Addr(), Creds{CAFile: s.Broker.CA.CertFile, User: BookingUser}, prefix)
}

// CentreRetained returns the centre's retained messages whose topics start
// with prefix, as monitoring reads them from the first node that answers.
func (w *World) CentreRetained(ctx context.Context, prefix string) (map[string]string, error) {
	cert, key, err := w.Centre.ClientCert(MonitorUser)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range w.Centre.Nodes() {
		if n.Pid() == 0 {
			continue
		}
		got, err := Retained(ctx, n.ClientAddr(), Creds{CAFile: w.Centre.CA().CertFile, User: MonitorUser, CertFile: cert, KeyFile: key}, prefix)
		if err == nil {
			return got, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Creds are how a client of a world proves who it is: the CA it trusts,
// its user (with Password(user)) and, for a broker that maps certificates
// to users, its certificate.
type Creds struct {
	CAFile, User      string
	CertFile, KeyFile string
}

// Retained reads the retained availability, state and info of every room
// at the broker at addr (TLS, with creds) whose topics start with prefix,
// with mosquitto_sub, a client nobody here wrote. It keeps what the broker
// sends on subscribing (the retained messages) and stops at the first live
// message (the rooms' heartbeats make sure one comes) or after a few quiet
// seconds.
func Retained(ctx context.Context, addr string, creds Creds, prefix string) (map[string]string, error) {
	sub, err := testtier.LookTool("mosquitto_sub")
	if err != nil {
		return nil, fmt.Errorf("%w; install it with `apt-get install mosquitto-clients`", err)
	}
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(ctx, DefaultPatience)
	defer cancel()
	args := []string{"-h", host, "-p", port, "--cafile", creds.CAFile, "--retained-only", "-F", "%j", "-W", "4"}
	// The retained topics a room has, at a site (visitrooms/<room>/...)
	// and at a centre (visitrooms/<site>/<room>/...): the readers' roles
	// grant those, and a centre that refuses a wider filter whole (NATS)
	// would refuse visitrooms/#.
	for _, kind := range bridgedRetained {
		args = append(args, "-t", "visitrooms/+/"+kind, "-t", "visitrooms/+/+/"+kind)
	}
	if creds.CertFile != "" {
		// The certificate names the user; no username beside it.
		args = append(args, "--cert", creds.CertFile, "--key", creds.KeyFile)
	} else {
		args = append(args, "-u", creds.User, "-P", Password(creds.User))
	}
	out, err := exec.CommandContext(ctx, sub, args...).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 27) { // 27: timed out, quietly
		return nil, fmt.Errorf("mosquitto_sub on %s: %w\n%s", addr, err, out)
	}
	got := map[string]string{}
	for _, ln := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(ln, "{") {
			continue
		}
		var m struct {
			Topic   string          `json:"topic"`
			Retain  int             `json:"retain"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			return nil, fmt.Errorf("mosquitto_sub output %q: %w", ln, err)
		}
		if m.Retain != 1 || !strings.HasPrefix(m.Topic, prefix) {
			continue
		}
		p := string(m.Payload)
		var s string
		if json.Unmarshal(m.Payload, &s) == nil {
			p = s
		}
		got[m.Topic] = p
	}
	return got, nil
}

// CommandsInTime checks every reply in every running room's journal to a
// command the consoles sent: the command acted at a time (the step's) no
// later than its expires_at. It returns how many acted, and an error naming
// each that acted late.
func (w *World) CommandsInTime() (int, error) {
	sent := w.cmds.snapshot()
	acted := 0
	var errs []error
	for _, s := range w.sites {
		for _, id := range s.RoomIDs() {
			r := s.Room(id)
			if r == nil {
				continue
			}
			j := r.Journal()
			for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
				e, err := j.Get(lsn)
				if err != nil {
					continue
				}
				for _, rep := range e.Replies {
					exp, ok := sent[rep.Reply.RequestID]
					if !ok {
						continue
					}
					acted++
					if e.At.After(exp) {
						errs = append(errs, fmt.Errorf("%s/%s: command %s acted at %s, after its expires_at %s",
							s.ID, id, rep.Reply.RequestID, e.At.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano)))
					}
				}
			}
		}
	}
	return acted, errors.Join(errs...)
}
