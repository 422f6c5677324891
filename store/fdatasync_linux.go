package store

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data and what is needed to read it back, not its
// timestamps.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
