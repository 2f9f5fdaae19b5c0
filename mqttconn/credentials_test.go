package mqttconn

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\r\n"), 0o600))
	got, err := ReadPasswordFile(pw)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", got)

	require.NoError(t, os.WriteFile(pw, []byte("\n"), 0o600))
	_, err = ReadPasswordFile(pw)
	assert.ErrorContains(t, err, "is empty")

	_, err = ReadPasswordFile(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read password file")
}

func TestTLSFilesConfig(t *testing.T) {
	assert.True(t, TLSFiles{}.Empty())
	c, err := TLSFiles{ServerName: "broker"}.Config()
	require.NoError(t, err)
	assert.Equal(t, "broker", c.ServerName)
	assert.Nil(t, c.RootCAs, "no CA file keeps the system roots")

	bad := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o600))
	_, err = TLSFiles{CAFile: bad}.Config()
	assert.ErrorContains(t, err, "holds no PEM certificate")

	_, err = TLSFiles{CertFile: bad, KeyFile: bad}.Config()
	assert.ErrorContains(t, err, "load client certificate")
}
