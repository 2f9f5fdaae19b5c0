package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/mqttconn"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/wallclock"
)

// check-config --connect: an installer's check of a room against its
// broker, from the room's Pi, with the room's own credentials. Each check
// says what it proved and, when it failed, what to do.
//
// It logs in as the room, so it refuses to run while roomd does: with the
// shipped broker config the username is the client id, and the check
// would take roomd's session over. It never asks for a clean session (the
// room's queued commands stay) and acknowledges no message the broker
// delivers (they stay queued for roomd).
//
// What MQTT lets it prove: mosquitto acknowledges a publish its ACL refuses
// and drops it (MQTT 3.1.1), and grants every subscription, delivering
// only what the identity may read. So the ACL checks speak MQTT 5, whose
// PUBACK says "not authorized" (0x87): a publish the room needs is sent
// once and its answer read, and so is a sample of what it must never send
// (a command, to itself or another room; another room's state). These
// probes carry no payload (availability carries "offline", true while
// roomd is stopped): consumers take an empty message for nothing, and
// roomd publishes its state and info again when it starts. What the room
// reads cannot be proved without a message to read (nobody but the room's
// senders may write its command topics): the check subscribes as roomd
// does, which a broker that checks subscriptions would refuse; only a
// command answered proves it (visitctl state ROOM from a console). That
// it reads nothing else is checked against what the broker retains: a
// subscription to everything must bring nothing the room may not read.

// checkStatus is the outcome of one check.
type checkStatus uint8

const (
	checkOK   checkStatus = iota + 1 // proved
	checkFail                        // proved wrong: the fix says what to do
	checkNote                        // not proved either way: the detail says why
)

func (s checkStatus) String() string {
	switch s {
	case checkOK:
		return "ok"
	case checkFail:
		return "FAIL"
	default:
		return "note"
	}
}

// checkResult is one line of the report.
type checkResult struct {
	Status checkStatus
	What   string
	Detail string
	Fix    string
}

// doctor runs the checks of one room's config.
type doctor struct {
	cfg *configs.Config
	// now is the Pi's clock (certificate dates).
	now func() time.Time
	// settle is how long the check waits for retained messages it must
	// not read.
	settle  time.Duration
	results []checkResult
	// siteFile names the broker's site file in fixes.
	siteFile string
	// reached and tlsOK: said once, not for each connection.
	reached, tlsOK bool
}

// defaultSettle is how long check-config --connect waits for retained
// messages the room must not read.
const defaultSettle = time.Second

// connectCheck runs the checks of cfg against its broker and prints them;
// it fails when one failed.
func connectCheck(ctx context.Context, cfg *configs.Config, stdout io.Writer) error {
	d := &doctor{cfg: cfg, now: wallclock.Now, settle: defaultSettle, siteFile: "/etc/mosquitto/site.yaml"}
	d.run(ctx)
	if err := writeReport(stdout, d.results); err != nil {
		return err
	}
	if n := d.failed(); n > 0 {
		return fmt.Errorf("check-config --connect: room %s: %d of %d checks failed", cfg.Room, n, len(d.results))
	}
	return nil
}

func (d *doctor) add(s checkStatus, what, detail, fix string) {
	d.results = append(d.results, checkResult{Status: s, What: what, Detail: detail, Fix: fix})
}

func (d *doctor) failed() int {
	n := 0
	for _, r := range d.results {
		if r.Status == checkFail {
			n++
		}
	}
	return n
}

// writeReport prints the results.
func writeReport(w io.Writer, results []checkResult) error {
	for _, r := range results {
		line := fmt.Sprintf("%-4s  %s", r.Status, r.What)
		if r.Detail != "" {
			line += ": " + r.Detail
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		if r.Fix != "" {
			if _, err := fmt.Fprintf(w, "      fix: %s\n", r.Fix); err != nil {
				return err
			}
		}
	}
	return nil
}

// aclFix is what to do when the room has no ACL block.
func (d *doctor) aclFix() string {
	return fmt.Sprintf("on the broker, list %s under rooms: in %s, write the ACL from it (visitctl acl %s > /etc/mosquitto/acl) and reload mosquitto (systemctl reload mosquitto)",
		d.cfg.Room, d.siteFile, d.siteFile)
}

// aclRewrite is what to do when the room's ACL block is not its role's.
func (d *doctor) aclRewrite() string {
	return fmt.Sprintf("on the broker, write the ACL from the site file again (visitctl acl %s > /etc/mosquitto/acl; visitctl acl --check /etc/mosquitto/acl %s names what differs) and reload mosquitto (systemctl reload mosquitto)",
		d.siteFile, d.siteFile)
}

// run checks everything in order; a check that cannot pass stops those
// that need it.
func (d *doctor) run(ctx context.Context) {
	cfg := d.cfg
	if !d.roomdStopped() {
		return
	}
	u, err := url.Parse(cfg.MQTT.Broker)
	if err != nil || u.Host == "" {
		d.add(checkFail, "broker URL", fmt.Sprintf("%q cannot be read", cfg.MQTT.Broker), "set mqtt.broker, e.g. tls://broker.example:8883")
		return
	}
	secure := false
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		secure = true
	case "tcp", "mqtt":
	default:
		d.add(checkNote, "broker "+cfg.MQTT.Broker, "the check speaks MQTT over TCP or TLS, not "+u.Scheme, "")
		return
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "8883", false: "1883"}[secure])
	}
	dial := func() (net.Conn, bool) { return d.dial(ctx, u, addr, secure) }
	password := ""
	if cfg.MQTT.PasswordFile != "" {
		if password, err = mqttconn.ReadPasswordFile(cfg.MQTT.PasswordFile); err != nil {
			d.add(checkFail, "password file", err.Error(), "write the room's broker password into mqtt.password_file, readable by roomd alone")
			return
		}
	}

	// As roomd logs in: MQTT 3.1.1.
	conn, ok := dial()
	if !ok {
		return
	}
	p, err := dialProbe(conn, false, cfg.MQTT.ClientID, cfg.MQTT.Username, password, cfg.MQTT.ConnectTimeout)
	if err != nil {
		_ = conn.Close()
		d.loginFailed(err, secure, password != "")
		return
	}
	p.close()
	who := cfg.MQTT.Username
	if who == "" {
		who = "(anonymous)"
	}
	d.add(checkOK, "login as "+who, "MQTT 3.1.1, as roomd logs in; the room's persistent session kept", "")
	if cfg.MQTT.Username == "" {
		d.add(checkNote, "identity", "mqtt.username is empty: the broker admits anonymous clients, and its ACL cannot tell this room from any other",
			"give the room its own user (its id) and password: configs/mosquitto/README.md, Users")
	}

	// The ACL, with MQTT 5.
	conn, ok = dial()
	if !ok {
		return
	}
	p, err = dialProbe(conn, true, cfg.MQTT.ClientID, cfg.MQTT.Username, password, cfg.MQTT.ConnectTimeout)
	if err != nil {
		_ = conn.Close()
		var ce *ConnackError
		if errors.As(err, &ce) && ce.Code == rcUnsupportedProtocol5 {
			d.add(checkNote, "ACL", "the broker speaks no MQTT 5, whose answer to a publish says whether the ACL let it through; with MQTT 3.1.1 a refused publish looks accepted, so the ACL was not checked", "")
			return
		}
		d.add(checkFail, "login with MQTT 5 (for the ACL checks)", err.Error(), "")
		return
	}
	defer p.close()
	d.checkACL(p)
}

// roomdStopped reports whether roomd is stopped for this room (its
// journal unlocked), adding a failure if not.
func (d *doctor) roomdStopped() bool {
	dir := filepath.Join(d.cfg.StateDir, room.JournalDir)
	lock, err := journal.OS{}.Lock(dir)
	switch {
	case err == nil:
		_ = lock.Close()
		return true
	case errors.Is(err, journal.ErrLocked):
		d.add(checkFail, "roomd", "roomd is running for this room (its journal "+dir+" is locked): the check logs in as the room and would take its broker session over",
			"stop it first (systemctl stop roomd), check, then start it again (systemctl start roomd)")
		return false
	case errors.Is(err, fs.ErrNotExist):
		return true // the room never ran here
	default:
		d.add(checkNote, "roomd", "cannot tell whether roomd runs: "+err.Error(), "")
		return true
	}
}

// dial opens the connection (TLS included) and names what went wrong.
func (d *doctor) dial(ctx context.Context, u *url.URL, addr string, secure bool) (net.Conn, bool) {
	cfg := d.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.MQTT.ConnectTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		var dns *net.DNSError
		switch {
		case errors.As(err, &dns):
			d.add(checkFail, "reach "+addr, "cannot resolve "+u.Hostname()+": "+dns.Err, "check the host in mqtt.broker and this Pi's DNS (resolvectl status)")
		case errors.Is(err, syscall.ECONNREFUSED):
			d.add(checkFail, "reach "+addr, "connection refused: nothing listens there",
				"is mosquitto running on that machine (systemctl status mosquitto), and is the port the listener's (8883 for TLS in the shipped config)?")
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
			d.add(checkFail, "reach "+addr, fmt.Sprintf("no answer within %s", cfg.MQTT.ConnectTimeout), "a firewall on the way, or the wrong address in mqtt.broker")
		default:
			d.add(checkFail, "reach "+addr, err.Error(), "check mqtt.broker and the network between this Pi and the broker")
		}
		return nil, false
	}
	if !d.reached {
		d.add(checkOK, "reach "+addr, "TCP connection open", "")
		d.reached = true
	}
	if !secure {
		return raw, true
	}
	conf, err := d.tlsConfig(u)
	if err != nil {
		_ = raw.Close()
		d.add(checkFail, "TLS files", err.Error(), "fix mqtt.tls: the CA file must hold the site's CA certificate (ca.crt), the certificate and key must be the room's")
		return nil, false
	}
	var seen []*x509.Certificate
	var verifyErr error
	name := conf.ServerName
	roots := conf.RootCAs
	conf.InsecureSkipVerify = true
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates
		if len(seen) == 0 {
			verifyErr = errors.New("the broker sent no certificate")
			return verifyErr
		}
		inter := x509.NewCertPool()
		for _, c := range seen[1:] {
			inter.AddCert(c)
		}
		_, verifyErr = seen[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: d.now()})
		return verifyErr
	}
	tc := tls.Client(raw, conf)
	err = tc.HandshakeContext(dctx)
	if err == nil {
		if !d.tlsOK {
			leaf := seen[0]
			d.add(checkOK, "TLS", fmt.Sprintf("the broker's certificate (%s) is signed by %s and valid until %s", leaf.Subject, caName(cfg.MQTT.TLS.CAFile),
				leaf.NotAfter.UTC().Format(time.DateOnly)), "")
			d.tlsOK = true
		}
		return tc, true
	}
	_ = raw.Close()
	d.tlsFailed(err, verifyErr, seen, name)
	return nil, false
}

func caName(file string) string {
	if file == "" {
		return "a CA this Pi trusts (the system's roots)"
	}
	return "the CA in " + file
}

// tlsConfig is roomd's TLS configuration for the broker.
func (d *doctor) tlsConfig(u *url.URL) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if files := mqttconn.TLSFiles(d.cfg.MQTT.TLS); !files.Empty() {
		c, err := files.Config()
		if err != nil {
			return nil, err
		}
		conf = c
	}
	if conf.ServerName == "" {
		conf.ServerName = u.Hostname()
	}
	if conf.RootCAs == nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("read the system's CA roots: %w", err)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// tlsFailed names a failed handshake.
func (d *doctor) tlsFailed(err, verifyErr error, seen []*x509.Certificate, name string) {
	tlsFiles := d.cfg.MQTT.TLS
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var rec tls.RecordHeaderError
	now := d.now()
	switch {
	case errors.As(verifyErr, &unknown):
		leaf := seen[0]
		d.add(checkFail, "TLS", fmt.Sprintf("the broker's certificate (%s, issued by %s) is not signed by %s", leaf.Subject, leaf.Issuer, caName(tlsFiles.CAFile)),
			"set mqtt.tls.ca_file to the site's CA certificate, the ca.crt that signed the broker's certificate (configs/mosquitto/README.md, Certificates)")
	case errors.As(verifyErr, &invalid) && invalid.Reason == x509.Expired:
		leaf := seen[0]
		if now.Before(leaf.NotBefore) {
			d.add(checkFail, "TLS", fmt.Sprintf("this Pi's clock says %s, before the start of the broker's certificate (%s)",
				now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339)),
				"set the clock: timedatectl set-ntp true, and let it reach a time server (a Pi has no clock of its own and starts in the past); then check again")
		} else {
			d.add(checkFail, "TLS", fmt.Sprintf("the broker's certificate expired on %s (this Pi's clock says %s)",
				leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)),
				"renew the broker's certificate (configs/mosquitto/README.md, Certificates), or set this Pi's clock if it is wrong")
		}
	case errors.As(verifyErr, &host):
		leaf := seen[0]
		names := append(slices.Clone(leaf.DNSNames), ipStrings(leaf.IPAddresses)...)
		d.add(checkFail, "TLS", fmt.Sprintf("the broker's certificate names %s, not %s", strings.Join(names, ", "), name),
			"reach the broker by a name its certificate carries (mqtt.broker, or mqtt.tls.server_name), or reissue the certificate with "+name+" in its subjectAltName")
	case verifyErr != nil:
		d.add(checkFail, "TLS", "the broker's certificate does not verify: "+verifyErr.Error(), "check mqtt.tls.ca_file and the broker's certificate")
	case errors.As(err, &rec):
		d.add(checkFail, "TLS", "the broker's port does not speak TLS (it answered in plain text)",
			"use tcp:// for a plain port, or the TLS port (8883 in the shipped config) with tls://")
	case strings.Contains(err.Error(), "certificate required") || strings.Contains(err.Error(), "bad certificate"):
		if tlsFiles.CertFile == "" {
			d.add(checkFail, "TLS", "the broker wants a client certificate (require_certificate) and the room has none",
				"issue one for the room (CN = its user name) and set mqtt.tls.cert_file and key_file")
		} else {
			d.add(checkFail, "TLS", "the broker refused the room's client certificate ("+tlsFiles.CertFile+")",
				"the certificate must be signed by the broker's cafile and still valid; issue it again (configs/mosquitto/README.md, Certificates)")
		}
	default:
		d.add(checkFail, "TLS", err.Error(), "check mqtt.tls and the broker's listener")
	}
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// loginFailed names a refused CONNECT.
func (d *doctor) loginFailed(err error, secure, hasPassword bool) {
	user := d.cfg.MQTT.Username
	var ce *ConnackError
	switch {
	case errors.As(err, &ce) && ce.credentials():
		if user == "" {
			d.add(checkFail, "login", "the broker admits no anonymous client ("+connackText(ce.V5, ce.Code)+")",
				"set mqtt.username (the room id) and mqtt.password_file")
			return
		}
		fix := fmt.Sprintf("the password in %s must be the one the broker has for %s: on the broker, mosquitto_passwd /etc/mosquitto/passwd %s and reload mosquitto; here, write the same password into %s",
			d.cfg.MQTT.PasswordFile, user, user, d.cfg.MQTT.PasswordFile)
		if !hasPassword {
			fix = "set mqtt.password_file to a file holding the password the broker has for " + user
		}
		d.add(checkFail, "login as "+user, "the broker refused the user name or password ("+connackText(ce.V5, ce.Code)+"; mosquitto says so for an unknown user too)", fix)
	case errors.As(err, &ce):
		d.add(checkFail, "login as "+user, err.Error(), "see the broker's log (journalctl -u mosquitto)")
	case !secure && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		d.add(checkFail, "login as "+user, "the broker closed the connection without answering",
			"the port may want TLS: use tls:// (and mqtt.tls.ca_file) for the shipped config's port 8883")
	default:
		d.add(checkFail, "login as "+user, err.Error(), "see the broker's log (journalctl -u mosquitto)")
	}
}

// checkACL probes what the room may publish and read, from the room role
// of the roles' table (package access).
func (d *doctor) checkACL(p *probe) {
	cfg := d.cfg
	site := access.Site{Broker: access.BrokerSite, Base: cfg.MQTT.Base, Rooms: []string{cfg.Room}}
	if cfg.HomeAssistant.Enabled {
		site.HomeAssistant = &access.HomeAssistant{Identity: "homeassistant", Prefix: cfg.HomeAssistant.DiscoveryPrefix}
	}
	if cfg.Device.Backend == configs.BackendSim {
		site.SimDriver = "sim-driver"
	}
	id, _ := site.Identity(cfg.Room)
	base := cfg.MQTT.Base

	// What the room publishes.
	var pubs, refused []string
	for _, g := range id.Grants() {
		if g.Access != access.Publish {
			continue
		}
		if strings.HasSuffix(g.Topic, "/config") {
			d.add(checkNote, "publish "+g.Topic, "not tried: an empty message there would remove the room from Home Assistant (roomd publishes it when it starts)", "")
			continue
		}
		payload, retained := []byte(nil), false
		if strings.HasSuffix(g.Topic, "/availability") {
			payload, retained = []byte("offline"), true
		}
		rc, err := p.publish(g.Topic, payload, retained)
		if err != nil {
			d.add(checkFail, "publish "+g.Topic, err.Error(), "")
			return
		}
		pubs = append(pubs, g.Topic)
		if rc >= 0x80 {
			refused = append(refused, g.Topic)
		}
	}
	switch {
	case len(refused) == len(pubs):
		d.add(checkFail, "publish the room's topics", fmt.Sprintf("the broker's ACL refuses every one (%s): it has no block for user %s, or one for another topic base than %s",
			strings.Join(pubs, ", "), cfg.MQTT.Username, base), d.aclFix())
	default:
		for _, t := range pubs {
			if slices.Contains(refused, t) {
				d.add(checkFail, "publish "+t, "refused by the broker's ACL: the room's block lacks the line topic write "+t, d.aclRewrite())
			} else if strings.HasSuffix(t, "/availability") {
				d.add(checkOK, "publish "+t, "allowed (it now says offline, retained: true while roomd is stopped)", "")
			} else {
				d.add(checkOK, "publish "+t, "allowed", "")
			}
		}
	}

	// What it must never publish: commands, to itself or any room, and
	// another room's outputs. A room id no site uses stands for the others.
	other := "roomd-check-config"
	for _, c := range []struct{ topic, what string }{
		{base + "/" + cfg.Room + "/cmd", "send itself commands as the booking system"},
		{base + "/" + cfg.Room + "/cmd/" + cfg.Room, "send itself commands as operator " + cfg.Room},
		{base + "/" + other + "/cmd/" + cfg.Room, "send other rooms commands as operator " + cfg.Room},
		{base + "/" + other + "/cmd", "send other rooms commands as the booking system"},
		{base + "/" + other + "/state", "publish another room's state"},
		{base + "/" + cfg.Room + "/sim/set", "set its own simulated inputs"},
	} {
		rc, err := p.publish(c.topic, nil, false)
		if err != nil {
			d.add(checkFail, "refuse "+c.topic, err.Error(), "")
			return
		}
		if rc >= 0x80 {
			d.add(checkOK, "refuse "+c.topic, "refused, as it must be", "")
		} else {
			d.add(checkFail, "refuse "+c.topic, "the broker lets the room "+c.what,
				"the ACL gives rooms more than their role (an old ACL with pattern lines such as visitrooms/+/cmd/%u?): "+d.aclRewrite())
		}
	}

	// What it reads.
	for _, g := range id.Grants() {
		if g.Access != access.Read {
			continue
		}
		rc, err := p.subscribe(g.Topic, 1)
		if err != nil {
			d.add(checkFail, "read "+g.Topic, err.Error(), "")
			return
		}
		if rc >= 0x80 {
			d.add(checkFail, "read "+g.Topic, fmt.Sprintf("the broker refused the subscription (SUBACK %#x)", rc), d.aclFix())
		} else {
			d.add(checkNote, "read "+g.Topic, "subscription granted; mosquitto's ACL file grants every subscription and withholds what may not be read, so only a command answered proves it (from a console: visitctl state "+cfg.Room+")", "")
		}
	}

	// What it must not read: nothing retained outside its own topics may
	// reach it. QoS 0, so nothing is kept in the room's session.
	var leaked []string
	for _, filter := range []string{base + "/#", "#"} {
		rc, err := p.subscribe(filter, 0)
		if err != nil {
			d.add(checkFail, "read "+filter, err.Error(), "")
			return
		}
		if rc >= 0x80 {
			d.add(checkOK, "read "+filter, fmt.Sprintf("subscription refused (SUBACK %#x)", rc), "")
			continue
		}
		p.collect(d.settle)
		if err := p.unsubscribe(filter); err != nil {
			d.add(checkFail, "read "+filter, "unsubscribe: "+err.Error(), "")
			return
		}
	}
	for _, topic := range p.delivered {
		if !site.Allowed(cfg.Room, access.Read, topic) && !slices.Contains(leaked, topic) {
			leaked = append(leaked, topic)
		}
	}
	if len(leaked) > 0 {
		more := ""
		if len(leaked) > 5 {
			more, leaked = fmt.Sprintf(" and %d more", len(leaked)-5), leaked[:5]
		}
		d.add(checkFail, "read only its own commands", "the broker let the room read "+strings.Join(leaked, ", ")+more,
			"the ACL gives rooms more than their role: "+d.aclRewrite())
	} else {
		d.add(checkOK, "read only its own commands", fmt.Sprintf("a subscription to everything brought nothing else within %s (it proves as much as the broker retains)", d.settle), "")
	}
}
