//go:build linux && (amd64 || arm64)

package store

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uringSyncer runs the log's fdatasync through an io_uring and waits for
// it on an eventfd in Go's network poller. A plain fdatasync keeps its
// goroutine's P (one of only GOMAXPROCS) in the system call until the
// runtime's monitor takes it back, and on a 2-CPU machine that halves
// the CPU left to the RPC handlers for most of every flush; a flush
// waited for in the poller leaves every P free. The kernel runs the
// fdatasync on one of its own worker threads: the same system call, the
// same durability.
//
// It serves one goroutine at a time (the log's writer), with one
// operation in flight; it is not safe for concurrent use.
type uringSyncer struct {
	ring  int // the io_uring's descriptor
	fd    int // the file to flush
	event *os.File
	rings []byte // the submission and completion rings (one mapping)
	sqes  []byte

	sqTail, sqMask, cqHead, cqTail, cqMask *uint32
	sqArray                                unsafe.Pointer
	cqes                                   unsafe.Pointer
	buf                                    [8]byte
	flushes                                int // done through the ring, for tests
}

// Linux's io_uring ABI (include/uapi/linux/io_uring.h).
const (
	uringOffSQRing    = 0
	uringOffSQEs      = 0x10000000
	uringFeatSingleMM = 1 << 0
	uringRegEventfd   = 4
	uringOpFsync      = 3
	uringFsyncData    = 1 << 0
	uringSQESize      = 64
	uringCQESize      = 16
)

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sq                                                                     uringSQOffsets
	cq                                                                     uringCQOffsets
}

// uringSQE is a submission queue entry, as far as fsync needs it.
type uringSQE struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	_             [24]byte
}

// newUringSyncer sets up a ring for flushing f. It fails where the
// kernel has no io_uring or forbids it (a seccomp profile, the
// io_uring_disabled sysctl): the caller then uses a plain fdatasync.
func newUringSyncer(f *os.File) (_ *uringSyncer, err error) {
	var p uringParams
	ring, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 2, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	s := &uringSyncer{ring: int(ring), fd: int(f.Fd())}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if p.features&uringFeatSingleMM == 0 {
		return nil, errors.New("io_uring: kernel too old (no single mapping)")
	}
	size := max(p.sq.array+p.sqEntries*4, p.cq.cqes+p.cqEntries*uringCQESize)
	if s.rings, err = unix.Mmap(s.ring, uringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("io_uring: map rings: %w", err)
	}
	if s.sqes, err = unix.Mmap(s.ring, uringOffSQEs, int(p.sqEntries*uringSQESize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("io_uring: map entries: %w", err)
	}
	s.sqTail, s.sqMask = s.u32(p.sq.tail), s.u32(p.sq.ringMask)
	s.cqHead, s.cqTail, s.cqMask = s.u32(p.cq.head), s.u32(p.cq.tail), s.u32(p.cq.ringMask)
	s.sqArray, s.cqes = unsafe.Pointer(&s.rings[p.sq.array]), unsafe.Pointer(&s.rings[p.cq.cqes])
	return s, s.registerEventfd()
}

// registerEventfd makes the ring signal completions on a non-blocking
// eventfd, which os.NewFile puts in the network poller.
func (s *uringSyncer) registerEventfd() error {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("io_uring: eventfd: %w", err)
	}
	s.event = os.NewFile(uintptr(efd), "io_uring completions")
	fd := int32(efd)
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(s.ring), uringRegEventfd, uintptr(unsafe.Pointer(&fd)), 1, 0, 0); errno != 0 {
		return fmt.Errorf("io_uring: register eventfd: %w", errno)
	}
	return nil
}

func (s *uringSyncer) u32(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&s.rings[off])) }

// sync flushes the file's data: it queues one IORING_OP_FSYNC with
// IORING_FSYNC_DATASYNC, and waits for its completion.
func (s *uringSyncer) sync() error {
	tail := atomic.LoadUint32(s.sqTail)
	i := tail & *s.sqMask
	sqe := (*uringSQE)(unsafe.Pointer(&s.sqes[i*uringSQESize]))
	*sqe = uringSQE{opcode: uringOpFsync, fd: int32(s.fd), opFlags: uringFsyncData, userData: uint64(tail)}
	*(*uint32)(unsafe.Add(s.sqArray, 4*i)) = i
	atomic.StoreUint32(s.sqTail, tail+1)
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(s.ring), 1, 0, 0, 0, 0)
		if errno == 0 && n == 1 {
			break
		}
		if errno != unix.EINTR {
			atomic.StoreUint32(s.sqTail, tail) // not submitted
			return &ringError{fmt.Errorf("io_uring_enter: submitted %d: %w", n, errno)}
		}
	}
	s.flushes++
	return s.wait(uint64(tail))
}

// wait reads completions until the one for user arrives.
func (s *uringSyncer) wait(user uint64) error {
	for {
		head := atomic.LoadUint32(s.cqHead)
		for ; head != atomic.LoadUint32(s.cqTail); head++ {
			cqe := unsafe.Add(s.cqes, uringCQESize*uintptr(head&*s.cqMask))
			data, res := *(*uint64)(cqe), *(*int32)(unsafe.Add(cqe, 8))
			atomic.StoreUint32(s.cqHead, head+1)
			if data != user {
				continue // a completion nobody waits for any more
			}
			if res < 0 {
				return unix.Errno(-res)
			}
			return nil
		}
		if _, err := s.event.Read(s.buf[:]); err != nil {
			return &ringError{fmt.Errorf("io_uring: wait for completion: %w", err)}
		}
	}
}

// ringError is a failure of the ring itself, not of the flush: the
// caller flushes with fdatasync instead.
type ringError struct{ err error }

func (e *ringError) Error() string { return e.err.Error() }
func (e *ringError) Unwrap() error { return e.err }

// close releases the ring. The flushed file stays open.
func (s *uringSyncer) close() {
	if s.event != nil {
		s.event.Close()
	}
	if s.sqes != nil {
		unix.Munmap(s.sqes)
	}
	if s.rings != nil {
		unix.Munmap(s.rings)
	}
	unix.Close(s.ring)
}

func isRingError(err error) bool {
	var re *ringError
	return errors.As(err, &re)
}
