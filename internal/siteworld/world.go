package siteworld

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// Options describe a world.
type Options struct {
	// Dir holds the world's files: the sites' brokers and tunnels, their
	// certificates and passwords, and (unless Rooms.Dir says otherwise) the
	// rooms' state. The caller removes it.
	Dir string
	// Centre is the running centre the sites bridge into; Close closes it.
	Centre Centre
	// Sites maps each site's id to its rooms' ids; a room's id need only be
	// unique within its site.
	Sites map[string][]string
	// Site says how the sites run. Its Users are the world's own: the guard
	// station, the booking system (which reads a site's retained topics),
	// the floor probe and the rooms.
	Site     SiteOptions
	Rooms    RoomOptions
	Consoles Consoles
	// Patience bounds every wait only a failure reaches; 0 means
	// DefaultPatience.
	Patience time.Duration
	// Logf receives what Verify found; nil drops it.
	Logf func(format string, args ...any)
	// Errorf receives what a console saw wrong (a malformed record, a full
	// inbox); nil drops it.
	Errorf func(format string, args ...any)
}

// World is a centre, its sites with their rooms and guard consoles, and the
// booking system at the centre.
type World struct {
	Centre  Centre
	Booking *Consumer

	opts  Options
	sites []*Site
	cmds  *commandLog
}

// Need skips the test, or fails it under CI=true, unless the programs a
// world runs are installed: mosquitto and mosquitto_passwd, stunnel, and
// mosquitto_sub (which reads the retained topics).
func Need(t testing.TB) {
	t.Helper()
	mqtttest.NeedMosquitto(t)
	mqtttest.NeedStunnel(t)
	testtier.Tool(t, "mosquitto_sub", "mosquitto-clients")
}

// Start starts the sites, each bridged to the centre, the booking system,
// the guard consoles (and floor probes), and returns once the centre holds
// every site's bridge as up. The rooms start with StartRooms.
func Start(o Options) (_ *World, err error) {
	switch {
	case o.Centre == nil:
		return nil, errors.New("siteworld: no centre (Options.Centre)")
	case o.Dir == "":
		return nil, errors.New("siteworld: no directory (Options.Dir)")
	}
	if o.Patience == 0 {
		o.Patience = DefaultPatience
	}
	w := &World{Centre: o.Centre, opts: o, cmds: &commandLog{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.Close())
		}
	}()
	ids := slices.Sorted(maps.Keys(o.Sites))
	for _, id := range ids {
		so := o.Site
		so.Users = append([]string{GuardUser, BookingUser, FloorUser}, o.Sites[id]...)
		s, err := StartSite(filepath.Join(o.Dir, id), o.Centre, id, so)
		if err != nil {
			return nil, err
		}
		s.patience = o.Patience
		w.sites = append(w.sites, s)
	}
	if w.Booking, err = newConsumer(o.Centre, ids, o.Consoles, w.cmds, o.Errorf, o.Patience); err != nil {
		return nil, err
	}
	for _, s := range w.sites {
		if s.Guard, err = newGuard(s, o.Consoles.Persistent, w.cmds, o.Errorf, o.Patience); err != nil {
			return nil, err
		}
		if o.Consoles.FloorProbes {
			if s.Floor, err = newFloorProbe(s, w.Booking, o.Patience); err != nil {
				return nil, err
			}
		}
	}
	if err := w.AwaitLinks(true, o.Patience); err != nil {
		return nil, err
	}
	return w, nil
}

// Sites returns the sites, by id.
func (w *World) Sites() []*Site { return w.sites }

// Site returns the site id, or nil.
func (w *World) Site(id string) *Site {
	for _, s := range w.sites {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// AwaitLinks waits until the centre holds every site's bridge as up (or
// down), each within timeout.
func (w *World) AwaitLinks(up bool, timeout time.Duration) error {
	for _, s := range w.sites {
		if err := w.Booking.AwaitLink(s.ID, up, timeout); err != nil {
			return err
		}
	}
	return nil
}

// StartRooms starts every room of Options.Sites, site by site in the
// order given, at most parallel at once. With answer, each start waits up to
// answer until the room answers a command (get_state) through its site's
// guard.
func (w *World) StartRooms(ctx context.Context, parallel int, answer time.Duration) error {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, s := range w.sites {
		for _, id := range w.opts.Sites[s.ID] {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := w.startRoom(ctx, s, id, answer)
				mu.Lock()
				defer mu.Unlock()
				errs = append(errs, err)
			})
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *World) startRoom(ctx context.Context, s *Site, id string, answer time.Duration) error {
	r, err := s.StartRoom(id, w.opts.Rooms)
	if err != nil || answer <= 0 {
		return err
	}
	if _, err := s.Guard.Request(ctx, id, controller.Command{Action: controller.ActionGetState}, answer, nil); err != nil {
		return errors.Join(fmt.Errorf("%s/%s does not answer commands: %w", s.ID, id, err), r.Stop())
	}
	return nil
}

// Expected returns every record of every room of every site, running or
// retired: all on events, and the alert records again on alerts.
func (w *World) Expected() (all, alerts []Key) {
	for _, s := range w.sites {
		a, al := s.Expected()
		all, alerts = append(all, a...), append(alerts, al...)
	}
	return all, alerts
}

// Logs returns what the sites' brokers and tunnels have logged.
func (w *World) Logs() string {
	var b strings.Builder
	for _, s := range w.sites {
		b.WriteString(s.Log())
	}
	return b.String()
}

// Close stops the rooms, the consoles, the sites and the centre.
func (w *World) Close() error {
	var errs []error
	var wg sync.WaitGroup
	roomErrs := make([]error, len(w.sites))
	for i, s := range w.sites {
		wg.Go(func() { roomErrs[i] = s.stopRooms() })
	}
	wg.Wait()
	errs = append(errs, roomErrs...)
	for _, s := range w.sites {
		if s.Floor != nil {
			s.Floor.Close()
		}
		if s.Guard != nil {
			s.Guard.Close()
		}
	}
	if w.Booking != nil {
		w.Booking.Close()
	}
	for _, s := range w.sites {
		errs = append(errs, s.Close())
	}
	errs = append(errs, w.Centre.Close())
	return errors.Join(errs...)
}

func (w *World) logf(format string, args ...any) {
	if w.opts.Logf != nil {
		w.opts.Logf(format, args...)
	}
}
