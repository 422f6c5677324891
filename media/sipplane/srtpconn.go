package sipplane

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/srtp/v3"
)

// srtpConn is a call's RTP or RTCP socket doing SRTP/SRTCP when keys are
// set, passing packets through unchanged when not. diago reads and writes
// plain RTP through it. Packets that fail authentication are dropped and
// counted, as a hostile or stale sender's would be.
type srtpConn struct {
	net.PacketConn
	rtcp bool
	keys atomic.Pointer[srtpKeys]

	wmu  sync.Mutex // writes may come from several goroutines (audio, DTMF)
	wbuf []byte

	dropped atomic.Int64
	lastErr atomic.Pointer[error] // why the last packet was dropped
}

// srtpKeys are one socket's contexts: local encrypts what we send, remote
// decrypts what the peer sends.
type srtpKeys struct {
	local, remote *srtp.Context
}

func (c *srtpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		k := c.keys.Load()
		if err != nil || k == nil {
			return n, addr, err
		}
		var out []byte
		if c.rtcp {
			out, err = k.remote.DecryptRTCP(b[:0], b[:n], nil)
		} else {
			out, err = k.remote.DecryptRTP(b[:0], b[:n], nil)
		}
		if err != nil || len(out) > len(b) {
			c.dropped.Add(1)
			if err != nil {
				c.lastErr.Store(&err) // a pointer: errors of different types follow each other
			}
			continue
		}
		return len(out), addr, nil
	}
}

func (c *srtpConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	k := c.keys.Load()
	if k == nil {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var out []byte
	var err error
	if c.rtcp {
		out, err = k.local.EncryptRTCP(c.wbuf[:0], p, nil)
	} else {
		out, err = k.local.EncryptRTP(c.wbuf[:0], p, nil)
	}
	if err != nil {
		return 0, err
	}
	c.wbuf = out[:0]
	if _, err := c.PacketConn.WriteTo(out, addr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// mediaSockets are a call's RTP and RTCP sockets, ready for SRTP.
type mediaSockets struct {
	rtp, rtcp *srtpConn
	local     *sdesCrypto // our key once SRTP is on; nil for plain RTP
	remote    *sdesCrypto
}

// secure turns SRTP on with our key local and the peer's key remote, or
// changes the peer's key (a re-INVITE with a new one). Each socket gets
// contexts of its own: a context is not safe for concurrent use and the
// RTP and RTCP readers run in parallel.
func (m *mediaSockets) secure(local, remote *sdesCrypto) error {
	for _, c := range []*srtpConn{m.rtp, m.rtcp} {
		l, err := local.context()
		if err != nil {
			return err
		}
		r, err := remote.context()
		if err != nil {
			return err
		}
		// A key that did not change keeps its context, and so its rollover
		// counter and replay window.
		if old := c.keys.Load(); old != nil {
			if sameKey(m.local, local) {
				l = old.local
			}
			if sameKey(m.remote, remote) {
				r = old.remote
			}
		}
		c.keys.Store(&srtpKeys{local: l, remote: r})
	}
	m.local, m.remote = local, remote
	return nil
}

// encrypted reports whether SRTP is on.
func (m *mediaSockets) encrypted() bool { return m != nil && m.local != nil }

// dropped counts packets that failed SRTP authentication.
func (m *mediaSockets) dropped() int64 { return m.rtp.dropped.Load() + m.rtcp.dropped.Load() }

func sameKey(a, b *sdesCrypto) bool {
	return a != nil && b != nil && a.suite == b.suite && string(a.key) == string(b.key) && string(a.mki) == string(b.mki)
}

// lastError is why the last packet was dropped, nil when none was.
func (m *mediaSockets) lastError() error {
	for _, c := range []*srtpConn{m.rtcp, m.rtp} {
		if err := c.lastErr.Load(); err != nil {
			return *err
		}
	}
	return nil
}
