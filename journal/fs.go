package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// FS is the file system the journal works on. [OS] is the real one; tests
// wrap it to fail any single operation, so that a crash or an I/O error at
// every write point can be tried.
type FS interface {
	// MkdirAll creates dir and its parents with perm.
	MkdirAll(dir string, perm fs.FileMode) error
	// ReadDir returns the names in dir, sorted. A missing dir is an error
	// wrapping fs.ErrNotExist.
	ReadDir(dir string) ([]string, error)
	// OpenFile opens name like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes one file.
	Remove(name string) error
	// Rename renames a file within one directory, atomically.
	Rename(from, to string) error
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on dir for the life of the returned
	// Closer; a second Lock, from this or another process, fails with an
	// error wrapping ErrLocked. It must work on a read-only directory.
	Lock(dir string) (io.Closer, error)
	// Ident returns the identity of a file or directory (device, inode),
	// so that one deleted or replaced behind the journal's back is noticed.
	// A missing name is an error wrapping fs.ErrNotExist.
	Ident(name string) (FileID, error)
}

// FileID identifies a file or directory for as long as it exists.
type FileID struct{ Dev, Ino uint64 }

// File is an open journal file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer
	// Sync makes the file's data and size durable (fdatasync where the
	// system has it).
	Sync() error
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	Close() error
}

// ErrLocked is what FS.Lock wraps when another holder has the directory.
var ErrLocked = errors.New("journal locked by another process")

// OS is the operating system's file system.
type OS struct{}

var _ FS = OS{}

// MkdirAll implements FS.
func (OS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// ReadDir implements FS.
func (OS) ReadDir(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	return names, nil
}

// OpenFile implements FS.
func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OS) Rename(from, to string) error { return os.Rename(from, to) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// Ident implements FS.
func (OS) Ident(name string) (FileID, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return FileID{}, err
	}
	return fileID(fi), nil
}

// Lock implements FS with flock(2) on the directory itself, so that no file
// needs creating (the directory may be read-only).
func (OS) Lock(dir string) (io.Closer, error) { return lockDir(dir) }

type osFile struct{ f *os.File }

func (o osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o osFile) Write(p []byte) (int, error)              { return o.f.Write(p) }
func (o osFile) Sync() error                              { return datasync(o.f) }
func (o osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o osFile) Close() error                             { return o.f.Close() }
func (o osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readFile reads a whole file through fsys.
func readFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return nil, err
	}
	return b[:n], nil
}

func join(dir, name string) string { return filepath.Join(dir, name) }
