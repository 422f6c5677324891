package sipplane

import (
	"fmt"
	"net"
	"sync"

	"github.com/emiago/diago/media"
)

// portPool hands out RTP/RTCP port pairs from one trunk's range. Unlike
// diago's process-wide allocator it wraps around and skips ports that are
// busy, whether we hold them or another process does.
type portPool struct {
	start, pairs int // pair i is RTP start+2i, RTCP start+2i+1

	mu   sync.Mutex
	next int
	busy map[int]bool
}

// newPortPool covers start..end inclusive: RTP on even ports, RTCP on the
// odd port above, both inside the range.
func newPortPool(start, end int) *portPool {
	return &portPool{start: start, pairs: (end - start + 1) / 2, busy: map[int]bool{}}
}

// open binds a media session's RTP and RTCP sockets on ip at the next free
// even port of the range and returns the port and the sockets, through
// which SRTP can be turned on; release gives the port back.
func (p *portPool) open(ms *media.MediaSession, ip net.IP) (int, *mediaSockets, error) {
	var lastErr error
	for range p.pairs {
		port, ok := p.take()
		if !ok {
			break
		}
		socks, err := bindPair(ip, port)
		if err == nil {
			ms.InitWithListeners(socks.rtp, socks.rtcp, &net.UDPAddr{})
			ms.Laddr = net.UDPAddr{IP: ip, Port: port} // diago takes the RTCP port
			return port, socks, nil
		}
		p.release(port)
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("all %d port pairs in use", p.pairs)
	}
	return 0, nil, fmt.Errorf("no free RTP port in %d-%d: %w", p.start, p.start+2*p.pairs-1, lastErr)
}

// bindPair binds RTP on port and RTCP on port+1.
func bindPair(ip net.IP, port int) (*mediaSockets, error) {
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, err
	}
	rtcp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port + 1})
	if err != nil {
		rtp.Close()
		return nil, err
	}
	return &mediaSockets{rtp: &srtpConn{PacketConn: rtp}, rtcp: &srtpConn{PacketConn: rtcp, rtcp: true}}, nil
}

// take reserves the next port not held by this pool, advancing the cursor
// with wrap-around.
func (p *portPool) take() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.pairs {
		port := p.start + 2*p.next
		p.next = (p.next + 1) % p.pairs
		if !p.busy[port] {
			p.busy[port] = true
			return port, true
		}
	}
	return 0, false
}

func (p *portPool) release(port int) {
	p.mu.Lock()
	delete(p.busy, port)
	p.mu.Unlock()
}
