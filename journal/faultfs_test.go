package journal

import (
	"errors"
	"io"
	"io/fs"
	"sync"
	"syscall"
)

// faultFS wraps a real FS and fails one chosen write operation (counted from
// 1 across every write-like call), the way a crash or a failing disk would:
//
//   - crash mode: the failing operation does part of its work (a WriteAt
//     writes a prefix of its data) and every later operation fails, as if
//     the process had died there; the test then reopens the directory with
//     the plain OS file system;
//   - error mode: only the chosen operation fails (with err), later ones
//     succeed, as a disk that was full for a moment.
type faultFS struct {
	FS
	mu      sync.Mutex
	n       int   // write operations so far
	failAt  int   // 0: never
	err     error // the error returned
	crash   bool
	crashed bool
	prefix  func(n int) int // how much of a failing WriteAt lands; nil: none
	failOp  string          // every operation of this name fails with err
	ops     []string
}

func (f *faultFS) step(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return syscall.EIO
	}
	f.n++
	f.ops = append(f.ops, op)
	if f.failOp != "" && op == f.failOp {
		return f.err
	}
	if f.failAt != 0 && f.n == f.failAt {
		if f.crash {
			f.crashed = true
		}
		return f.err
	}
	return nil
}

func (f *faultFS) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *faultFS) MkdirAll(dir string, perm fs.FileMode) error {
	if err := f.step("mkdir"); err != nil {
		return err
	}
	return f.FS.MkdirAll(dir, perm)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&(syscall.O_CREAT|syscall.O_TRUNC) != 0 {
		if err := f.step("create " + name); err != nil {
			return nil, err
		}
	} else if f.isCrashed() {
		return nil, syscall.EIO
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) isCrashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

func (f *faultFS) Remove(name string) error {
	if err := f.step("remove " + name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *faultFS) Rename(from, to string) error {
	if err := f.step("rename " + from); err != nil {
		return err
	}
	return f.FS.Rename(from, to)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.step("syncdir"); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

func (f *faultFS) Lock(dir string) (io.Closer, error) { return f.FS.Lock(dir) }

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.step("writeat"); err != nil {
		if f.fs.prefix != nil && errors.Is(err, f.fs.err) {
			n := f.fs.prefix(len(p))
			_, _ = f.File.WriteAt(p[:n], off)
		}
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.step("write"); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.step("sync"); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.step("truncate"); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
