package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// notifier speaks systemd's notify protocol (sd_notify(3)): one datagram
// per state change to the unix socket named by $NOTIFY_SOCKET, which is
// set when the unit has Type=notify. A nil notifier (no socket) does
// nothing, so trunkd runs the same outside systemd.
type notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // WATCHDOG_USEC; 0 when the unit has no WatchdogSec
}

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from
// getenv; nil when there is no socket.
func newNotifier(getenv func(string) string) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	n := &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	pid := getenv("WATCHDOG_PID")
	if usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 &&
		(pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	return n
}

// notify sends state, such as "READY=1" or "STOPPING=1".
func (n *notifier) notify(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// watch sends WATCHDOG=1 every half watchdog period while alive reports
// that trunkd still turns; it stops when ctx ends. When alive fails it
// sends nothing, so that systemd restarts a trunkd that is wedged rather
// than one that merely has a ticker still running.
func (n *notifier) watch(ctx context.Context, log *slog.Logger, alive func(context.Context) error) {
	if n == nil || n.watchdog == 0 {
		return
	}
	tick := time.NewTicker(n.watchdog / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, n.watchdog/4)
		err := alive(cctx)
		cancel()
		if err != nil {
			log.Error("watchdog: not alive; WATCHDOG=1 withheld", "err", err)
			continue
		}
		if err := n.notify("WATCHDOG=1"); err != nil {
			log.Warn("watchdog", "err", err)
		}
	}
}

// alive proves that the admin plane and the SIP plane still turn: a Ping
// over the daemon's own QUIC listener, a read of the store, and the SIP
// plane's own check (an OPTIONS answered by one of its listeners).
func (d *Daemon) alive(ctx context.Context) error {
	if err := d.pingSelf(ctx); err != nil {
		return fmt.Errorf("admin plane: %w", err)
	}
	if _, err := d.svc.ListTrunks(ctx, "", 1, trunk.Filter{}, control.Access{}); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return d.sip.Alive(ctx)
}

// pingSelf pings the admin RPC through its own listener, as a client
// would, pinning the daemon's own certificate.
func (d *Daemon) pingSelf(ctx context.Context) error {
	addr := d.srv.Addr().String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	tc, err := rpc.PinnedTLSConfig(d.cfg.TLSCert, host)
	if err != nil {
		return err
	}
	c, err := rpc.Dial(ctx, net.JoinHostPort(host, port), tc, "")
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx)
}
