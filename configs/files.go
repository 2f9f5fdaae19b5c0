package configs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest config file Load reads. The example config,
// every key with its comment, is about 7 KiB.
const MaxFileSize = 1 * MiB

// readConfigFile reads the config file at path. It refuses anything but a
// regular file (a FIFO would wait for a writer for ever, /dev/zero never
// ends) and anything larger than MaxFileSize.
func readConfigFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
	// It changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read config %s: %w", path, &NotRegularError{Path: path, Mode: fi.Mode()})
	}
	tooLarge := fmt.Errorf("read config %s: %w (%d bytes at most; the example with every key and comment is about 7 KiB)", path, ErrTooLarge, MaxFileSize)
	if fi.Size() > MaxFileSize {
		return nil, tooLarge
	}
	// The size can change between Stat and the read: read one byte more
	// than allowed to know.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge
	}
	return data, nil
}

// ErrTooLarge is returned (wrapped) for a config file over MaxFileSize.
var ErrTooLarge = errors.New("file too large for a config")

// NotRegularError is a path that names something other than a regular
// file: a directory, a FIFO, a device, a socket.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", e.Path, fileKind(e.Mode))
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "not a regular file"
	}
}

// namedFile is a file a config names: the key that names it and whether it
// holds a secret.
type namedFile struct {
	key    []string // path of keys from the top, e.g. mqtt, password_file
	file   string   // the file named, "" if none
	secret bool
}

// files checks the files c names, as roomd will open them: each must be a
// regular file, and a secret (the broker password, the TLS client key)
// must be readable and writable by its owner alone, like ssh's keys. An
// absent or unusable file is reported at the key that names it.
func (r *reader) files(root *yaml.Node, c *Config) {
	for _, f := range []namedFile{
		{[]string{"mqtt", "password_file"}, c.MQTT.PasswordFile, true},
		{[]string{"mqtt", "tls", "ca_file"}, c.MQTT.TLS.CAFile, false},
		{[]string{"mqtt", "tls", "cert_file"}, c.MQTT.TLS.CertFile, false},
		{[]string{"mqtt", "tls", "key_file"}, c.MQTT.TLS.KeyFile, true},
	} {
		if f.file == "" {
			continue
		}
		n, field := lookup(root, f.key...), strings.Join(f.key, ".")
		fi, err := os.Stat(f.file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.bad(n, field, "%s does not exist", f.file)
		case err != nil:
			r.bad(n, field, "%v", err)
		case !fi.Mode().IsRegular():
			r.bad(n, field, "%v", &NotRegularError{Path: f.file, Mode: fi.Mode()})
		case f.secret && fi.Mode().Perm()&0o077 != 0:
			r.bad(n, field, "%s is %s (mode %04o), but it holds a secret: make it its owner's alone (chmod 600 %s, owned by the user roomd runs as)",
				f.file, exposure(fi.Mode().Perm()), fi.Mode().Perm(), f.file)
		case fi.Size() == 0:
			r.bad(n, field, "%s is empty", f.file)
		}
	}
}

// exposure says who besides the owner may use a file with permissions p,
// e.g. "readable by its group and readable by everyone".
func exposure(p fs.FileMode) string {
	verbs := func(bits fs.FileMode) string {
		var v []string
		for _, b := range []struct {
			bit  fs.FileMode
			verb string
		}{{4, "readable"}, {2, "writable"}, {1, "executable"}} {
			if bits&b.bit != 0 {
				v = append(v, b.verb)
			}
		}
		return strings.Join(v, " and ")
	}
	var parts []string
	if g := verbs(p >> 3 & 7); g != "" {
		parts = append(parts, g+" by its group")
	}
	if o := verbs(p & 7); o != "" {
		parts = append(parts, o+" by everyone")
	}
	return strings.Join(parts, " and ")
}

// lookup returns the value node at the path of keys from root, nil if
// there is none.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = resolve(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}
