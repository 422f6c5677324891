package sipplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Alive proves that the plane still turns rather than that it exists: its
// lock can be taken, and one of its listeners answers a SIP OPTIONS sent
// to it over UDP with some response. With no listener (no trunks) the lock
// is the whole proof. It is what trunkd's systemd watchdog asks before each
// WATCHDOG=1, so it must stay cheap: one datagram each way.
func (p *Plane) Alive(ctx context.Context) error {
	locked := make(chan struct{})
	go func() {
		p.mu.Lock()
		//lint:ignore SA2001 taking the lock is the check
		p.mu.Unlock()
		close(locked)
	}()
	select {
	case <-locked:
	case <-ctx.Done():
		return errors.New("SIP plane: its lock is held past the watchdog's bound")
	}
	addr := p.listeners.anyAddr()
	if addr == "" {
		return nil
	}
	return pingSIP(ctx, addr)
}

// anyAddr is the bind of one listener, "" when there is none.
func (ls *listeners) anyAddr() string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for k := range ls.byKey {
		return k
	}
	return ""
}

// pingSIP sends an OPTIONS to the SIP listener at addr (host:port, an
// unspecified host meaning loopback) and waits for any response to it.
func pingSIP(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("SIP plane: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(2 * time.Second))
	}
	id := randomToken()
	if _, err := c.Write(optionsRequest(c.LocalAddr().String(), c.RemoteAddr().String(), id)); err != nil {
		return fmt.Errorf("SIP plane: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("SIP plane: no answer to OPTIONS from %s: %w", addr, err)
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, "SIP/2.0 ") && strings.Contains(msg, id) {
			return nil
		}
	}
}

func optionsRequest(local, remote, id string) []byte {
	return []byte("OPTIONS sip:" + remote + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + "\r\n" +
		"From: <sip:watchdog@" + local + ">;tag=" + id + "\r\n" +
		"To: <sip:" + remote + ">\r\n" +
		"Call-ID: " + id + "@trunkd-watchdog\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 1\r\n" +
		"Content-Length: 0\r\n\r\n")
}

func randomToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
