//go:build !(linux && (amd64 || arm64))

package store

import (
	"errors"
	"os"
)

// uringSyncer exists only on Linux amd64 and arm64; elsewhere the log
// calls fdatasync directly.
type uringSyncer struct{}

func newUringSyncer(*os.File) (*uringSyncer, error) {
	return nil, errors.New("io_uring: not on this platform")
}

func (*uringSyncer) sync() error { return errors.ErrUnsupported }
func (*uringSyncer) close()      {}

func isRingError(error) bool { return false }
