package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// The network of the sites suite: a central broker and site brokers
// running the shipped files of configs/mosquitto (central.conf and
// central.acl; mosquitto.conf, acl and site-bridge.conf), each site's bridge
// reaching the centre through its stunnel (site-tunnel.conf) and a proxy
// that stands for the WAN. Only what must differ on one machine is
// rewritten: ports, paths, certificates, and the checked host name.

// Identities of the sites network and their passwords.
const (
	siteGuardUser = "guard-station"
	// siteGuardOperator is the guard the site's board acts for: the rooms
	// name it in their config (commands.operators), as a site does.
	siteGuardOperator = "guard-1"
	siteFloorUser     = "floor-probe" // a room-like identity at each site: the floor's publisher
	centreUser        = "booking"
)

func sitePassword(user string) string { return "pw-" + user }

// autosaveOnChanges, as --sites-autosave, makes every broker save its
// database after every change (mosquitto.conf's setting for a single site).
const autosaveOnChanges = -1

// sitesNet is the running network.
type sitesNet struct {
	dir     string
	centre  *mosquitto
	centreB string // the centre's client listener, ssl://127.0.0.1:port
	bridgeL string // the centre's listener for the sites' bridges

	ca    *mqtttest.CA
	sites []*siteNet
}

// siteNet is one site's broker, tunnel and WAN link.
type siteNet struct {
	id     string
	broker *mosquitto
	url    string
	ca     *mqtttest.CA
	tunnel *stunnel
	wan    *mqtttest.Proxy
}

// startSitesNet starts the centre and n sites, each admitting the rooms
// roomIDs(site) returns. A non-zero autosave makes every broker save its
// database at that interval, or after every change (autosaveOnChanges),
// instead of as the shipped files say; a non-zero inflight replaces the
// site brokers' max_inflight_messages.
func startSitesNet(dir string, n int, rooms func(site string) []string, wanDelay, autosave time.Duration, inflight int) (_ *sitesNet, err error) {
	shipped, err := mqtttest.ShippedDir()
	if err != nil {
		return nil, fmt.Errorf("%w (run roombench from the repository)", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	nw := &sitesNet{dir: dir}
	defer func() {
		if err != nil {
			nw.Close()
		}
	}()
	if nw.ca, err = mqtttest.GenerateCA(dir, "centre-ca"); err != nil {
		return nil, err
	}
	serverCert, serverKey, err := nw.ca.IssueFiles("centre", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	cdir := filepath.Join(dir, "centre")
	var addrs []string
	nw.centre, addrs, err = shippedBroker(shipped, cdir, "central.conf", "central.acl", 2, nw.ca.CertFile, serverCert, serverKey,
		map[string]string{centreUser: sitePassword(centreUser), "monitor": sitePassword("monitor")}, nil, autosave)
	if err != nil {
		return nil, fmt.Errorf("centre: %w", err)
	}
	nw.centreB, nw.bridgeL = "ssl://"+addrs[0], addrs[1]
	for i := range n {
		id := fmt.Sprintf("site-%c", 'a'+i)
		s := &siteNet{id: id}
		nw.sites = append(nw.sites, s)
		if s.wan, err = mqtttest.NewProxy(nw.bridgeL); err != nil {
			return nil, err
		}
		s.wan.SetDelay(wanDelay / 2)
		cert, key, err := nw.ca.IssueFiles(id)
		if err != nil {
			return nil, err
		}
		sdir := filepath.Join(dir, id)
		if err := os.MkdirAll(sdir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", sdir, err)
		}
		if s.tunnel, err = startStunnel(shipped, sdir, id, map[string][]string{
			"connect": {s.wan.Addr()}, "cert": {cert}, "key": {key}, "CAfile": {nw.ca.CertFile}, "checkHost": {"localhost"},
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if s.ca, err = mqtttest.GenerateCA(sdir, "site-ca"); err != nil {
			return nil, err
		}
		sc, sk, err := s.ca.IssueFiles("site", "127.0.0.1", "localhost")
		if err != nil {
			return nil, err
		}
		users := map[string]string{siteGuardUser: sitePassword(siteGuardUser), siteFloorUser: sitePassword(siteFloorUser)}
		for _, r := range rooms(id) {
			users[r] = sitePassword(r)
		}
		bridge, err := os.ReadFile(filepath.Join(shipped, "site-bridge.conf"))
		if err != nil {
			return nil, err
		}
		text, err := mqtttest.Rewrite(strings.ReplaceAll(string(bridge), "site-a", id),
			map[string][]string{"address": {s.tunnel.addr}})
		if err != nil {
			return nil, fmt.Errorf("site-bridge.conf: %w", err)
		}
		if inflight > 0 {
			// A global option: every client of the site broker, the bridge
			// included, may have this many QoS 1 messages in flight.
			text += fmt.Sprintf("\nmax_inflight_messages %d\n", inflight)
		}
		// The shipped site file with this site's rooms, and the floor
		// probe that publishes as a room does.
		acl, err := siteACL(shipped, sdir, append(rooms(id), siteFloorUser))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		s.broker, _, err = shippedBroker(shipped, filepath.Join(sdir, "broker"), "mosquitto.conf", acl, 1, s.ca.CertFile, sc, sk, users,
			map[string]string{"site-bridge.conf": text}, autosave)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		s.url = "ssl://" + s.broker.Addr()
	}
	return nw, nil
}

// Close stops everything and removes the directory.
func (nw *sitesNet) Close() {
	for _, s := range nw.sites {
		if s.broker != nil {
			s.broker.Close()
		}
		if s.tunnel != nil {
			s.tunnel.Close()
		}
		if s.wan != nil {
			_ = s.wan.Close()
		}
	}
	if nw.centre != nil {
		nw.centre.Close()
	}
	_ = os.RemoveAll(nw.dir)
}

// clientTLS trusts the CA of a broker.
func clientTLS(ca *mqtttest.CA) (*tls.Config, error) { return ca.ClientConfig("", "") }

// shippedBroker writes and starts a shipped mosquitto config with its
// listeners on free loopback ports, its paths under dir and the given
// certificates, password file and drop-ins (name → text). It returns the
// listeners' addresses in the config's order.
func shippedBroker(shipped, dir, conf, acl string, listeners int, cafile, cert, key string, users, dropins map[string]string, autosave time.Duration) (*mosquitto, []string, error) {
	fail := func(err error) (*mosquitto, []string, error) { return nil, nil, err }
	aclPath := acl
	if !filepath.IsAbs(acl) {
		aclPath = filepath.Join(shipped, acl)
	}
	bin, err := findMosquitto()
	if err != nil {
		return fail(err)
	}
	data, err := os.ReadFile(filepath.Join(shipped, conf))
	if err != nil {
		return fail(fmt.Errorf("read shipped %s: %w", conf, err))
	}
	for _, sub := range []string{"data", "conf.d"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fail(fmt.Errorf("create %s: %w", dir, err))
		}
	}
	for name, text := range dropins {
		if err := os.WriteFile(filepath.Join(dir, "conf.d", name), []byte(text), 0o600); err != nil {
			return fail(fmt.Errorf("write %s: %w", name, err))
		}
	}
	pw := filepath.Join(dir, "passwd")
	if err := mqtttest.WritePasswordFile(pw, users); err != nil {
		return fail(err)
	}
	m := &mosquitto{bin: bin, dir: dir, conf: filepath.Join(dir, "mosquitto.conf"), logFile: filepath.Join(dir, "mosquitto.log")}
	for range 3 { // a free port can be taken between probing and binding
		var ports []string
		for range listeners {
			p, err := freePort()
			if err != nil {
				return fail(err)
			}
			ports = append(ports, fmt.Sprintf("%d 127.0.0.1", p))
		}
		m.port, _ = strconv.Atoi(strings.Fields(ports[0])[0])
		set := map[string][]string{
			"pid_file": {""}, "persistence_location": {filepath.Join(dir, "data") + "/"}, "listener": ports,
			"cafile": {cafile}, "certfile": {cert}, "keyfile": {key}, "password_file": {pw},
			"acl_file": {aclPath}, "log_dest": {"stderr"},
		}
		if mqtttest.Keywords(string(data))["include_dir"] > 0 {
			set["include_dir"] = []string{filepath.Join(dir, "conf.d")}
		}
		text, err := mqtttest.Rewrite(string(data), set)
		if err != nil {
			return fail(fmt.Errorf("shipped %s: %w", conf, err))
		}
		// Only errors and warnings: the shipped log_type lines would log
		// every connection of a thousand rooms.
		text = strings.NewReplacer("log_type information\n", "", "log_type notice\n", "").Replace(text)
		if u, err := user.Current(); err == nil && u.Username != "" {
			text = "user " + u.Username + "\n" + text
		}
		switch {
		case autosave == autosaveOnChanges:
			// After the drop-ins (include_dir), so that it wins.
			text += "\nautosave_on_changes true\nautosave_interval 1\n"
		case autosave > 0:
			text += fmt.Sprintf("\nautosave_on_changes false\nautosave_interval %d\n", int(autosave.Seconds()))
		}
		if err := os.WriteFile(m.conf, []byte(text), 0o600); err != nil {
			return fail(fmt.Errorf("write %s: %w", m.conf, err))
		}
		if err = m.start(); err == nil {
			addrs := make([]string, len(ports))
			for i, p := range ports {
				addrs[i] = "127.0.0.1:" + strings.Fields(p)[0]
			}
			return m, addrs, nil
		}
		if !strings.Contains(m.logTail(), "Address already in use") {
			return fail(fmt.Errorf("start mosquitto with %s: %w\n%s", conf, err, m.logTail()))
		}
	}
	return fail(fmt.Errorf("start mosquitto with %s: no free port\n%s", conf, m.logTail()))
}

// stunnel runs the shipped site-tunnel.conf.
type stunnel struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	mu   sync.Mutex
}

// errNoStunnel is returned when stunnel is not installed.
var errNoStunnel = errors.New("stunnel not found in PATH or /usr/bin; install it with `apt-get install stunnel4` (a site's TLS tunnel to its centre)")

func findStunnel() (string, error) {
	if p, err := exec.LookPath("stunnel"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/bin/stunnel"); err == nil && !fi.IsDir() {
		return "/usr/bin/stunnel", nil
	}
	return "", errNoStunnel
}

func startStunnel(shipped, dir, site string, set map[string][]string) (*stunnel, error) {
	bin, err := findStunnel()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(shipped, "site-tunnel.conf"))
	if err != nil {
		return nil, fmt.Errorf("read shipped site-tunnel.conf: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &stunnel{addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "stunnel.log")}
	all := map[string][]string{"accept": {s.addr}, "setuid": {""}, "setgid": {""}, "debug": {"3"}}
	for k, v := range set {
		all[k] = v
	}
	text, err := mqtttest.Rewrite(strings.ReplaceAll(string(data), "site-a", site), all)
	if err != nil {
		return nil, fmt.Errorf("site-tunnel.conf: %w", err)
	}
	conf := filepath.Join(dir, "stunnel.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", conf, err)
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, conf)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); _ = logf.Close(); close(s.done) }()
	deadline := wallclock.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(s.log)
			return nil, fmt.Errorf("stunnel exited before accepting on %s:\n%s", s.addr, out)
		case <-time.After(20 * time.Millisecond):
		}
		if wallclock.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("stunnel not accepting on %s after 10s", s.addr)
		}
	}
}

// Pid is the tunnel's process id.
func (s *stunnel) Pid() int { return s.cmd.Process.Pid }

// Close stops the tunnel.
func (s *stunnel) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// siteACL writes into dir the ACL of the shipped site file with rooms as
// its rooms (visitctl acl's), and returns its path.
func siteACL(shipped, dir string, rooms []string) (string, error) {
	data, err := os.ReadFile(filepath.Join(shipped, "site.yaml"))
	if err != nil {
		return "", fmt.Errorf("read shipped site.yaml: %w", err)
	}
	site, err := access.ReadSite(data, "site.yaml")
	if err != nil {
		return "", err
	}
	site.Rooms = rooms
	if err := site.Check(); err != nil {
		return "", fmt.Errorf("site file with the bench's rooms: %w", err)
	}
	path := filepath.Join(dir, "acl")
	if err := os.WriteFile(path, []byte(site.ACL("site.yaml")), 0o600); err != nil {
		return "", fmt.Errorf("write the site's ACL: %w", err)
	}
	return path, nil
}
