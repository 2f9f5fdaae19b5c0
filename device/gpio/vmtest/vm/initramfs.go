// Package vm boots a test program as /init of a qemu arm64 VM and reports
// the marker line it prints on the console.
package vm

import (
	"compress/gzip"
	"fmt"
	"io"
	"strings"
)

// cpio "newc" modes.
const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeChar = 0o020000
)

// Initramfs writes a gzip-compressed cpio (newc) archive holding /dev,
// /dev/console (character device 5:1, so the kernel can give /init a
// console) and /init, an executable with the content init.
func Initramfs(w io.Writer, init []byte) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	cw := &cpioWriter{w: zw}
	cw.entry("dev", modeDir|0o755, 0, 0, nil)
	cw.entry("dev/console", modeChar|0o600, 5, 1, nil)
	cw.entry("init", modeReg|0o755, 0, 0, init)
	cw.entry("TRAILER!!!", 0, 0, 0, nil)
	if cw.err != nil {
		return fmt.Errorf("initramfs: write cpio: %w", cw.err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: finish gzip: %w", err)
	}
	return nil
}

type cpioWriter struct {
	w   io.Writer
	n   int64 // bytes written, for 4-byte alignment
	ino int
	err error
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one newc header, name and data. rdevMajor/rdevMinor are for
// device nodes.
func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor int, data []byte) {
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	fields := []int64{
		int64(c.ino), int64(mode), 0, 0, int64(nlink), 0, // ino mode uid gid nlink mtime
		int64(len(data)), 0, 0, int64(rdevMajor), int64(rdevMinor), // filesize devmajor devminor rdevmajor rdevminor
		int64(len(name) + 1), 0, // namesize check
	}
	var h strings.Builder
	h.WriteString("070701")
	for _, f := range fields {
		fmt.Fprintf(&h, "%08X", f)
	}
	c.write([]byte(h.String()))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}
