package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// CA is a throw-away certificate authority for tests. Certificates it issues
// are valid from one hour ago for one day and use ECDSA P-256 keys.
type CA struct {
	// CertFile is the PEM CA certificate (mosquitto's cafile).
	CertFile string
	// KeyFile is the PEM PKCS#8 CA key.
	KeyFile string

	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA creates a CA named name, writing name.crt and name.key into dir.
// It fails the test on error.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	ca, err := GenerateCA(dir, name)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return ca
}

// GenerateCA creates a CA named name, writing name.crt and name.key into
// dir; it is NewCA for callers without a test (a benchmark).
func GenerateCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: generate key: %w", name, err)
	}
	sn, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"roomd test"}},
		NotBefore:             wallclock.Now().Add(-Validity),
		NotAfter:              wallclock.Now().Add(Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: parse: %w", name, err)
	}
	ca := &CA{dir: dir, cert: cert, key: key}
	if ca.CertFile, ca.KeyFile, err = writePair(dir, name, der, key); err != nil {
		return nil, fmt.Errorf("create CA %s: %w", name, err)
	}
	return ca, nil
}

// Validity is how long before and after its making a test certificate is
// valid: wider than any clock a test runs on (a run shifted a year either
// way, or a peer on the machine's own clock), so that no test fails on the
// date it runs.
const Validity = 2 * 366 * 24 * time.Hour

// Issue signs a certificate with common name cn, writing cn.crt and cn.key
// into the CA's directory. Each host (an IP address or DNS name) becomes a
// subject alternative name and makes it a server certificate; with no hosts
// it is a client certificate. It fails the test on error.
func (ca *CA) Issue(t testing.TB, cn string, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := ca.IssueFiles(cn, hosts...)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return certFile, keyFile
}

// IssueFiles is Issue for callers without a test.
func (ca *CA) IssueFiles(cn string, hosts ...string) (certFile, keyFile string, err error) {
	return ca.issue(cn, false, hosts)
}

// IssuePeerFiles issues a certificate for the given hosts that serves both
// ways, as a server's and as a client's (a cluster node's route to its
// peers is both), named cn.
func (ca *CA) IssuePeerFiles(cn string, hosts ...string) (certFile, keyFile string, err error) {
	return ca.issue(cn, true, hosts)
}

func (ca *CA) issue(cn string, peer bool, hosts []string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("issue certificate %s: generate key: %w", cn, err)
	}
	sn, err := serialNumber()
	if err != nil {
		return "", "", fmt.Errorf("issue certificate %s: %w", cn, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"roomd test"}},
		NotBefore:    wallclock.Now().Add(-Validity),
		NotAfter:     wallclock.Now().Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	switch {
	case peer:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case len(hosts) > 0:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("issue certificate %s: %w", cn, err)
	}
	if certFile, keyFile, err = writePair(ca.dir, cn, der, key); err != nil {
		return "", "", fmt.Errorf("issue certificate %s: %w", cn, err)
	}
	return certFile, keyFile, nil
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ClientTLS returns a TLS client configuration trusting only this CA, with
// the given client certificate if certFile is not empty.
func (ca *CA) ClientTLS(t testing.TB, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := ca.ClientConfig(certFile, keyFile)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return cfg
}

// ClientConfig is ClientTLS for callers without a test.
func (ca *CA) ClientConfig(certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", certFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return n, nil
}

func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) (certFile, keyFile string, err error) {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal key %s: %w", name, err)
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", kder, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
