package siteworld

import (
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/roomd/roomd/link/mqtttest"
)

// Centre is the central end of every site's bridge: one broker, or a
// cluster of nodes. The world reaches it only through this interface, so
// that another engine can stand in for central.conf's mosquitto.
type Centre interface {
	// Nodes lists the centre's brokers, in the order a site's bridge tries
	// them.
	Nodes() []Node
	// CA signs the certificates the nodes present, which every client of
	// the world trusts, and the sites' certificates (CN: the site's id)
	// that their bridge listeners accept.
	CA() *mqtttest.CA
	// ClientCert returns the certificate and key a central identity
	// (BookingUser, MonitorUser) presents, for a centre that maps
	// certificates to users; empty for one that takes passwords
	// (Password), as central.conf's client listener does.
	ClientCert(user string) (certFile, keyFile string, err error)
	// Close stops every node.
	Close() error
}

// Node is one broker process of the centre.
type Node interface {
	// ClientAddr is the TLS listener ("127.0.0.1:port") of the centre's own
	// clients: the booking system and monitoring, with their passwords
	// (Password).
	ClientAddr() string
	// BridgeAddr is the TLS listener the sites' tunnels connect to, each
	// with its site's certificate.
	BridgeAddr() string
	// Kill ends the node at once (SIGKILL): no final save, no goodbye.
	Kill() error
	// Restart stops the node if it runs (SIGTERM) and starts it again on
	// the same addresses and data.
	Restart() error
	// Pid is the node's process id; 0 while it is down.
	Pid() int
}

// Identities of a world. Each has the password Password(name); a room's
// identity is its id.
const (
	GuardUser = "guard-station" // a site's guard console
	// GuardOperator is the guard the site's console acts for, as the board
	// does: it sends on cmd/guard-1 and the rooms name it in their config
	// (commands.operators).
	GuardOperator = "guard-1"
	FloorUser     = "floor-probe" // a site's bare publisher (FloorProbe)
	BookingUser   = "booking"     // the booking system; at a site it reads the retained topics
	MonitorUser   = "monitor"     // central monitoring, read only
)

// Password is the password of an identity of a world.
func Password(user string) string { return "pw-" + user }

// Tuning says how a world's mosquittos and tunnels run differently from the
// shipped files, beyond their ports, paths and certificates. The zero value
// runs them as shipped.
type Tuning struct {
	// QuietLogs keeps only errors and warnings in the logs of brokers and
	// tunnels: the shipped log levels would log every connection of a
	// thousand rooms.
	QuietLogs bool
	// Autosave, if not zero, makes every broker save its database at this
	// interval (whole seconds), or after every change (AutosaveOnChanges),
	// instead of as the shipped files say.
	Autosave time.Duration
}

// AutosaveOnChanges, as Tuning.Autosave, makes a broker save its database
// after every change (mosquitto.conf's setting for a single site).
const AutosaveOnChanges time.Duration = -1

// broker applies the tuning to a shipped mosquitto's options.
func (tu Tuning) broker(o *mqtttest.MosquittoOptions) {
	if tu.QuietLogs {
		if o.Set == nil {
			o.Set = map[string][]string{}
		}
		o.Set["log_type"] = []string{"error", "warning", "", ""}
	}
	switch a := tu.Autosave; {
	case a == AutosaveOnChanges:
		// After the shipped file and its drop-ins (include_dir), so that
		// it wins.
		o.ExtraConfig = "autosave_on_changes true\nautosave_interval 1"
	case a > 0:
		o.ExtraConfig = fmt.Sprintf("autosave_on_changes false\nautosave_interval %d", int(a.Seconds()))
	}
}

// tunnel applies the tuning to the rewrites of site-tunnel.conf.
func (tu Tuning) tunnel(set map[string][]string) {
	if tu.QuietLogs {
		set["debug"] = []string{"3"}
	}
}

// CentralMosquitto is the shipped centre: central.conf and central.acl on
// one mosquitto, which is its one node. Its clients' listener is the
// config's first, the sites' bridge listener its second.
type CentralMosquitto struct {
	Broker *mqtttest.MosquittoBroker
}

// CentralOptions returns the options of the shipped centre's mosquitto,
// with the identities booking and monitor: for mqtttest.Mosquitto, when a
// test starts the centre itself.
func CentralOptions(tu Tuning) (mqtttest.MosquittoOptions, error) {
	shipped, err := mqtttest.ShippedDir()
	if err != nil {
		return mqtttest.MosquittoOptions{}, fmt.Errorf("centre: %w", err)
	}
	o := mqtttest.MosquittoOptions{
		TLS: true, ShippedConfig: true, ShippedFile: "central.conf", ACLFile: filepath.Join(shipped, "central.acl"),
		Users: map[string]string{BookingUser: Password(BookingUser), MonitorUser: Password(MonitorUser)},
	}
	tu.broker(&o)
	return o, nil
}

// StartCentralMosquitto starts the shipped centre with its files under dir.
func StartCentralMosquitto(dir string, tu Tuning) (*CentralMosquitto, error) {
	o, err := CentralOptions(tu)
	if err != nil {
		return nil, err
	}
	b, err := mqtttest.StartMosquitto(dir, o)
	if err != nil {
		return nil, fmt.Errorf("centre: %w", err)
	}
	return &CentralMosquitto{Broker: b}, nil
}

// Nodes returns the centre itself.
func (c *CentralMosquitto) Nodes() []Node { return []Node{c} }

// ClientCert is empty: central.conf's client listener takes passwords.
func (c *CentralMosquitto) ClientCert(string) (certFile, keyFile string, err error) {
	return "", "", nil
}

// CA is the broker's generated CA.
func (c *CentralMosquitto) CA() *mqtttest.CA { return c.Broker.CA }

// ClientAddr is central.conf's first listener.
func (c *CentralMosquitto) ClientAddr() string { return c.Broker.ListenerAddr(0) }

// BridgeAddr is central.conf's second listener.
func (c *CentralMosquitto) BridgeAddr() string { return c.Broker.ListenerAddr(1) }

// Kill sends SIGKILL.
func (c *CentralMosquitto) Kill() error { return c.Broker.Signal(syscall.SIGKILL) }

// Restart stops mosquitto (SIGTERM, it saves first) and starts it again.
func (c *CentralMosquitto) Restart() error {
	if err := c.Broker.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("centre: %w", err)
	}
	if err := c.Broker.Start(); err != nil {
		return fmt.Errorf("centre: %w", err)
	}
	return nil
}

// Pid is mosquitto's process id.
func (c *CentralMosquitto) Pid() int { return c.Broker.Pid() }

// Close stops mosquitto.
func (c *CentralMosquitto) Close() error { return c.Broker.Close() }
