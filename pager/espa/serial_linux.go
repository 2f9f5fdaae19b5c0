package espa

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var bauds = map[int]uint32{
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 2400: unix.B2400,
	4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400,
}

// OpenSerial opens the tty at path (a USB-RS232 adapter: /dev/ttyUSB0, or
// better its /dev/serial/by-id/ name) in raw mode with the line settings
// of s: no echo, no line editing, no character translation, no flow
// control, the modem lines ignored (CLOCAL: a 3-wire cable has none). The
// file is non-blocking, so that its read and write deadlines work.
func OpenSerial(path string, s Serial) (*os.File, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("open serial %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open serial: %w", err)
	}
	if err := configure(f, s); err != nil {
		f.Close()
		return nil, fmt.Errorf("open serial %s: %w", path, err)
	}
	return f, nil
}

func configure(f *os.File, s Serial) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = fmt.Errorf("read termios (not a tty?): %w", err)
			return
		}
		// Raw mode, as cfmakeraw(3).
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
		t.Cflag |= unix.CREAD | unix.CLOCAL | bauds[s.Baud]
		if s.DataBits == 7 {
			t.Cflag |= unix.CS7
		} else {
			t.Cflag |= unix.CS8
		}
		switch s.Parity {
		case ParityEven:
			t.Cflag |= unix.PARENB
			t.Iflag |= unix.INPCK // a character with a parity error is read as NUL: the BCC then fails
		case ParityOdd:
			t.Cflag |= unix.PARENB | unix.PARODD
			t.Iflag |= unix.INPCK
		}
		if s.StopBits == 2 {
			t.Cflag |= unix.CSTOPB
		}
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		if err := unix.IoctlSetTermios(int(fd), unix.TCSETS, t); err != nil {
			ierr = fmt.Errorf("set termios: %w", err)
		}
	})
	if err != nil {
		return err
	}
	return ierr
}
