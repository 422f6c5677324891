//go:build linux

package sipplane

import (
	"net"
	"os"
	"strconv"
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
	return &rawUDP{UDPConn: c, rc: rc, family: family}
}

func (c *rawUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	var (
		n     int
		rsa   syscall.RawSockaddrAny
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			size := uint32(syscall.SizeofSockaddrAny)
			r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, bufPtr(b), uintptr(len(b)), 0,
				uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r), e
			return e != syscall.EAGAIN
		}
	})
	if err == nil && errno != 0 {
		err = c.opError("read", nil, os.NewSyscallError("recvfrom", errno))
	}
	if err != nil {
		return 0, nil, err
	}
	return n, udpAddrOf(&rsa), nil
}

func (c *rawUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	var sa4 syscall.RawSockaddrInet4
	var sa6 syscall.RawSockaddrInet6
	var sa unsafe.Pointer
	var size uintptr
	switch ip4 := ua.IP.To4(); {
	case c.family == syscall.AF_INET && ip4 != nil:
		sa4.Family = syscall.AF_INET
		putPort(&sa4.Port, ua.Port)
		copy(sa4.Addr[:], ip4)
		sa, size = unsafe.Pointer(&sa4), syscall.SizeofSockaddrInet4
	case c.family == syscall.AF_INET6 && ua.IP.To16() != nil:
		sa6.Family = syscall.AF_INET6
		putPort(&sa6.Port, ua.Port)
		copy(sa6.Addr[:], ua.IP.To16())
		sa6.Scope_id = zoneIndex(ua.Zone)
		sa, size = unsafe.Pointer(&sa6), syscall.SizeofSockaddrInet6
	default:
		return c.UDPConn.WriteTo(b, addr) // the net package's error for it
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, bufPtr(b), uintptr(len(b)), 0, uintptr(sa), size)
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r), e
			return e != syscall.EAGAIN
		}
	})
	if err == nil && errno != 0 {
		err = c.opError("write", addr, os.NewSyscallError("sendto", errno))
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (c *rawUDP) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
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

// udpAddrOf converts what recvfrom wrote, as the net package does.
func udpAddrOf(rsa *syscall.RawSockaddrAny) *net.UDPAddr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return &net.UDPAddr{IP: append(net.IP(nil), p.Addr[:]...), Port: portOf(&p.Port)}
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return &net.UDPAddr{IP: append(net.IP(nil), p.Addr[:]...), Port: portOf(&p.Port), Zone: zoneName(p.Scope_id)}
	}
	return &net.UDPAddr{}
}

// zoneName and zoneIndex convert an IPv6 scope: an interface's name when
// there is one, else its index in decimal (link-local peers only).
func zoneName(index uint32) string {
	if index == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}

func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}
