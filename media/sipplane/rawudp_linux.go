//go:build linux && (amd64 || arm64)

package sipplane

import (
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// rawUDP is a listener's UDP socket as sipgo reads and writes it, with
// recvfrom and sendto made as raw system calls inside the socket's
// RawConn, so that waiting for a datagram is still the runtime's poller.
//
// Why: the net package enters every system call through the runtime's
// entersyscall, and the first one after the process was idle wakes the
// runtime's monitor thread, which then polls every 20 µs for the next
// millisecond. A node answering a few hundred calls a second goes idle
// between calls, so each call paid for that: 16% of trunkd's CPU at 500
// rejected calls/s (perf). The socket is non-blocking: neither call ever
// waits in the kernel, so holding the P through it costs nothing.
type rawUDP struct {
	*net.UDPConn
	rc     syscall.RawConn
	family int // AF_INET or AF_INET6, the socket's

	rmu  sync.Mutex // one reader at a time (sipgo has one)
	read *rawOp
}

// newRawUDP wraps c, or returns it as it is when its descriptor cannot
// be reached.
func newRawUDP(c *net.UDPConn) net.PacketConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	family := -1
	_ = rc.Control(func(fd uintptr) {
		family, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	})
	if err != nil || (family != syscall.AF_INET && family != syscall.AF_INET6) {
		return c
	}
	return &rawUDP{UDPConn: c, rc: rc, family: family, read: newRawOp()}
}

// rawOp is one recvfrom or sendto: its buffer, address and result, and
// the callbacks RawConn runs, made once so that a datagram allocates
// nothing here. A socket keeps one for reading; writes take one from a
// pool, as sipgo writes from many goroutines.
type rawOp struct {
	b     []byte
	sa    syscall.RawSockaddrAny // the source read, or the destination
	size  uint32                 // of sa: in and out for recvfrom, in for sendto
	n     int
	errno syscall.Errno

	recv, send func(fd uintptr) bool
}

func newRawOp() *rawOp {
	op := &rawOp{}
	op.recv, op.send = op.recvfrom, op.sendto
	return op
}

var rawOps = sync.Pool{New: func() any { return newRawOp() }}

func (op *rawOp) recvfrom(fd uintptr) bool {
	for {
		op.size = syscall.SizeofSockaddrAny
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(op.b))),
			uintptr(len(op.b)), 0, uintptr(unsafe.Pointer(&op.sa)), uintptr(unsafe.Pointer(&op.size)))
		if e != syscall.EINTR {
			op.n, op.errno = int(r), e
			return e != syscall.EAGAIN
		}
	}
}

func (op *rawOp) sendto(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(op.b))),
			uintptr(len(op.b)), 0, uintptr(unsafe.Pointer(&op.sa)), uintptr(op.size))
		if e != syscall.EINTR {
			op.n, op.errno = int(r), e
			return e != syscall.EAGAIN
		}
	}
}

func (c *rawUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	op := c.read
	op.b = b
	defer func() { op.b = nil }()
	err := c.rc.Read(op.recv)
	if err == nil && op.errno != 0 {
		err = c.opError("read", nil, os.NewSyscallError("recvfrom", op.errno))
	}
	if err != nil {
		return 0, nil, err
	}
	return op.n, udpAddrOf(&op.sa), nil
}

func (c *rawUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return c.UDPConn.WriteTo(b, addr)
	}
	op := rawOps.Get().(*rawOp)
	defer func() { op.b = nil; rawOps.Put(op) }()
	if !op.setDest(c.family, ua) {
		return c.UDPConn.WriteTo(b, addr) // the net package's error for it
	}
	op.b = b
	err := c.rc.Write(op.send)
	if err == nil && op.errno != 0 {
		err = c.opError("write", addr, os.NewSyscallError("sendto", op.errno))
	}
	if err != nil {
		return 0, err
	}
	return op.n, nil
}

// setDest puts ua into op.sa as a socket of family takes it: IPv4 as
// itself or, on an IPv6 socket, IPv4-mapped. It is false for an address
// the socket cannot send to.
func (op *rawOp) setDest(family int, ua *net.UDPAddr) bool {
	ip4 := ua.IP.To4()
	switch {
	case family == syscall.AF_INET && ip4 != nil:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET}
		putPort(&sa.Port, ua.Port)
		copy(sa.Addr[:], ip4)
		op.size = syscall.SizeofSockaddrInet4
	case family == syscall.AF_INET6 && ua.IP.To16() != nil:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&op.sa))
		*sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Scope_id: zones.index(ua.Zone)}
		putPort(&sa.Port, ua.Port)
		copy(sa.Addr[:], ua.IP.To16())
		op.size = syscall.SizeofSockaddrInet6
	default:
		return false
	}
	return true
}

func (c *rawUDP) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// putPort and portOf convert between a port and its network byte order
// in a sockaddr.
func putPort(p *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func portOf(p *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(p))
	return int(b[0])<<8 | int(b[1])
}

// udpAddr is a UDPAddr with room for its IP, so that reporting a
// datagram's source is one allocation.
type udpAddr struct {
	net.UDPAddr
	ip [net.IPv6len]byte
}

// udpAddrOf converts what recvfrom wrote, as the net package does: a
// 4-byte IP from an IPv4 socket, 16 bytes from an IPv6 one.
func udpAddrOf(rsa *syscall.RawSockaddrAny) *net.UDPAddr {
	a := &udpAddr{}
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		copy(a.ip[:], p.Addr[:])
		a.IP, a.Port = a.ip[:net.IPv4len], portOf(&p.Port)
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		copy(a.ip[:], p.Addr[:])
		a.IP, a.Port, a.Zone = a.ip[:], portOf(&p.Port), zones.name(p.Scope_id)
	}
	return &a.UDPAddr
}

// zones caches IPv6 scopes (link-local peers only) both ways: looking an
// interface up lists them all through netlink.
var zones zoneCache

type zoneCache struct {
	mu      sync.RWMutex
	names   map[uint32]string
	indexes map[string]uint32
}

// name is the interface name of scope index, else the index in decimal.
func (z *zoneCache) name(index uint32) string {
	if index == 0 {
		return ""
	}
	z.mu.RLock()
	name, ok := z.names[index]
	z.mu.RUnlock()
	if ok {
		return name
	}
	name = strconv.FormatUint(uint64(index), 10)
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		name = ifi.Name
	}
	z.store(func() { z.names[index] = name })
	return name
}

// index is the scope index of zone, an interface name or a decimal index.
func (z *zoneCache) index(zone string) uint32 {
	if zone == "" {
		return 0
	}
	z.mu.RLock()
	index, ok := z.indexes[zone]
	z.mu.RUnlock()
	if ok {
		return index
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		index = uint32(ifi.Index)
	} else if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		index = uint32(n)
	}
	z.store(func() { z.indexes[zone] = index })
	return index
}

// store runs set under the lock, on maps that it empties now and then:
// interfaces come and go, and a peer may name any zone.
func (z *zoneCache) store(set func()) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.names == nil || len(z.names)+len(z.indexes) > 64 {
		z.names, z.indexes = map[uint32]string{}, map[string]uint32{}
	}
	set()
}
