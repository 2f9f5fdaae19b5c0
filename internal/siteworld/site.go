package siteworld

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/link/mqtttest"
)

// SiteOptions say how a site runs. The zero value runs the shipped files
// and admits nobody.
type SiteOptions struct {
	// Users are the site broker's identities, each with Password(user).
	Users []string
	// Tuning applies to the site's broker and tunnels.
	Tuning Tuning
	// BridgeRestart, if not empty, replaces the bridge's restart_timeout
	// (shipped "2 30": a backoff from 2 s up to 30 s), which a test cannot
	// wait for at every turn.
	BridgeRestart string
	// BridgeInflight, if not zero, sets max_inflight_messages on the site
	// broker: a global option, so every client of the broker, the bridge
	// included, may have this many QoS 1 messages in flight.
	BridgeInflight int
	// WANDelay is the latency each WAN link adds in each direction.
	WANDelay time.Duration
	// Tunnel rewrites more of site-tunnel.conf (see mqtttest.Rewrite), in
	// every tunnel of the site.
	Tunnel map[string][]string
}

// Site is one prison: its broker with its bridge to the centre, the tunnel
// and WAN link to each node of the centre, and, in a World, its rooms and
// guard console.
type Site struct {
	ID     string
	Broker *mqtttest.MosquittoBroker
	// Tunnels are the bridge's TLS to the centre (site-tunnel.conf), one
	// per node of the centre, in the order of Centre.Nodes.
	Tunnels []*mqtttest.StunnelProcess
	WAN     *WAN
	// Guard is the site's guard console, and Floor its floor probe; nil
	// outside a World (and Floor without Consoles.FloorProbes).
	Guard *Guard
	Floor *FloorProbe

	dir      string
	patience time.Duration

	mu      sync.Mutex
	rooms   map[string]*Room
	retired map[string][]Key // decommissioned rooms: the records they announced
}

// StartSite starts a site broker with the shipped files, mosquitto.conf and
// acl, and site-bridge.conf bridging to every node of centre (mosquitto
// tries the addresses in turn), each through a site-tunnel.conf (stunnel)
// for its TLS and a WAN link. The site's identity at the centre is a
// certificate from the centre's CA with its id as CN. Its files go under dir.
func StartSite(dir string, centre Centre, id string, o SiteOptions) (_ *Site, err error) {
	s := &Site{ID: id, dir: dir, patience: DefaultPatience, WAN: &WAN{}, rooms: map[string]*Room{}, retired: map[string][]Key{}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("site %s: %w", id, err), s.Close())
		}
	}()
	nodes := centre.Nodes()
	if len(nodes) == 0 {
		return nil, errors.New("the centre has no node")
	}
	var cert, key string
	var tunnels []string
	for i, n := range nodes {
		wan, err := mqtttest.NewProxy(n.BridgeAddr())
		if err != nil {
			return nil, err
		}
		s.WAN.links = append(s.WAN.links, wan)
		wan.SetDelay(o.WANDelay)
		if i == 0 {
			if cert, key, err = centre.CA().IssueFiles(id); err != nil {
				return nil, err
			}
		}
		set := map[string][]string{
			"connect": {wan.Addr()}, "cert": {cert}, "key": {key},
			"CAfile": {centre.CA().CertFile}, "checkHost": {"localhost"},
		}
		o.Tuning.tunnel(set)
		maps.Copy(set, o.Tunnel)
		tun, err := mqtttest.StartStunnel(filepath.Join(dir, fmt.Sprintf("tunnel-%d", i)),
			mqtttest.StunnelOptions{File: "site-tunnel.conf", Replace: []string{"site-a", id}, Set: set})
		if err != nil {
			return nil, err
		}
		s.Tunnels = append(s.Tunnels, tun)
		tunnels = append(tunnels, tun.Addr())
	}
	bridge := map[string][]string{"address": {strings.Join(tunnels, " ")}}
	if o.BridgeRestart != "" {
		bridge["restart_timeout"] = []string{o.BridgeRestart}
	}
	var extra string
	if o.BridgeInflight > 0 {
		extra = fmt.Sprintf("max_inflight_messages %d", o.BridgeInflight)
	}
	users := map[string]string{}
	for _, u := range o.Users {
		users[u] = Password(u)
	}
	// The shipped site file with this site's rooms: every user that is no
	// other identity of the site (the floor probe publishes as a room does).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	acl, err := mqtttest.WriteSiteACL(dir, func(site *access.Site) {
		site.Rooms = nil
		for _, u := range o.Users {
			if _, known := site.Identity(u); !known {
				site.Rooms = append(site.Rooms, u)
			}
		}
		slices.Sort(site.Rooms)
	})
	if err != nil {
		return nil, err
	}
	bo := mqtttest.MosquittoOptions{
		TLS: true, ShippedConfig: true, Users: users, ACLFile: acl,
		Dropins: []mqtttest.Dropin{{Name: "site-bridge.conf", Replace: []string{"site-a", id}, Set: bridge, Append: extra}},
	}
	o.Tuning.broker(&bo)
	if s.Broker, err = mqtttest.StartMosquitto(filepath.Join(dir, "broker"), bo); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the site broker's URL for its clients (ssl://).
func (s *Site) URL() string { return s.Broker.URL() }

// Restart stops the site broker (SIGTERM: it saves first, as on an
// upgrade) and starts it again.
func (s *Site) Restart() error {
	if err := s.Broker.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("site %s: %w", s.ID, err)
	}
	if err := s.Broker.Start(); err != nil {
		return fmt.Errorf("site %s: %w", s.ID, err)
	}
	return nil
}

// Close stops the site's broker, tunnels and WAN links (not its rooms and
// consoles: World.Close stops those first).
func (s *Site) Close() error {
	var errs []error
	if s.Broker != nil {
		errs = append(errs, s.Broker.Close())
	}
	for _, t := range s.Tunnels {
		errs = append(errs, t.Close())
	}
	errs = append(errs, s.WAN.Close())
	return errors.Join(errs...)
}

// Log returns what the site's broker and tunnels have logged.
func (s *Site) Log() string {
	var b strings.Builder
	if s.Broker != nil {
		fmt.Fprintf(&b, "site %s broker (%s):\n%s\n", s.ID, s.Broker.LogFile, s.Broker.Log())
	}
	for i, t := range s.Tunnels {
		fmt.Fprintf(&b, "site %s tunnel %d (%s):\n%s\n", s.ID, i, t.LogFile, t.Log())
	}
	return b.String()
}

// RoomIDs returns the site's running rooms.
func (s *Site) RoomIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.rooms))
}

// Room returns a running room of the site, or nil.
func (s *Site) Room(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[id]
}

// Expected returns every record of every room of the site, running or
// retired: all on events, and the alert records again on alerts.
func (s *Site) Expected() (all, alerts []Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.rooms {
		a, al := journalRecords(s.ID, id, r.Journal())
		all, alerts = append(all, a...), append(alerts, al...)
	}
	for _, keys := range s.retired {
		all = append(all, keys...)
	}
	return all, alerts
}

// WAN is a site's link to the centre: a cuttable proxy to each node's
// bridge listener (mqtttest.Proxy says what a cut does), cut and restored
// together.
type WAN struct {
	links []*mqtttest.Proxy
}

// Links are the proxies, one per node of the centre, to cut one alone.
func (w *WAN) Links() []*mqtttest.Proxy { return w.links }

// Cut cuts every link.
func (w *WAN) Cut() {
	for _, l := range w.links {
		l.Cut()
	}
}

// Resume restores every link.
func (w *WAN) Resume() {
	for _, l := range w.links {
		l.Resume()
	}
}

// Down reports whether every link is cut.
func (w *WAN) Down() bool {
	for _, l := range w.links {
		if !l.Down() {
			return false
		}
	}
	return len(w.links) > 0
}

// Accepted returns how many connections the links have forwarded.
func (w *WAN) Accepted() int {
	n := 0
	for _, l := range w.links {
		n += l.Accepted()
	}
	return n
}

// Refused returns how many connections the links closed unanswered while
// cut: the attempts to get through.
func (w *WAN) Refused() int {
	n := 0
	for _, l := range w.links {
		n += l.Refused()
	}
	return n
}

// Close closes every link.
func (w *WAN) Close() error {
	var errs []error
	for _, l := range w.links {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
