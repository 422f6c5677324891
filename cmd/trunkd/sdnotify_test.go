package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifySocket listens where a test's NOTIFY_SOCKET points and hands over
// each datagram received.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return path, got
}

func waitState(t *testing.T, got <-chan string, prefix string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-got:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket", prefix)
		}
	}
}

// TestSystemdNotify runs trunkd as systemd would with Type=notify and
// WatchdogSec: READY=1 once serving, WATCHDOG=1 while alive, STOPPING=1
// on the stop signal.
func TestSystemdNotify(t *testing.T) {
	sock, got := notifySocket(t)
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "300000"}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"},
			func(k string) string { return env[k] }, &stderr)
	}()
	waitState(t, got, "READY=1")
	waitState(t, got, "WATCHDOG=1")
	waitState(t, got, "WATCHDOG=1")
	cancel()
	waitState(t, got, "STOPPING=1")
	if code := <-done; code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
}

// TestWatchdogWithheldWhenNotAlive: a failing liveness check sends no
// WATCHDOG=1 (systemd then restarts trunkd), and the pings resume once it
// passes again.
func TestWatchdogWithheldWhenNotAlive(t *testing.T) {
	sock, got := notifySocket(t)
	n := newNotifier(func(k string) string {
		return map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "40000"}[k]
	})
	var failing atomic.Bool
	failing.Store(true)
	var checks atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.watch(ctx, slog.New(slog.DiscardHandler), func(context.Context) error {
		checks.Add(1)
		if failing.Load() {
			return errors.New("wedged")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	select {
	case s := <-got:
		t.Fatalf("got %q while the check failed; want nothing", s)
	default:
	}
	if checks.Load() < 2 {
		t.Fatalf("the check ran %d times in 200 ms at a 20 ms period", checks.Load())
	}
	failing.Store(false)
	waitState(t, got, "WATCHDOG=1")
}

func TestNotifierWatchdogEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if n := newNotifier(env(nil)); n != nil {
		t.Errorf("newNotifier without NOTIFY_SOCKET = %+v; want nil", n)
	}
	n := newNotifier(env(map[string]string{"NOTIFY_SOCKET": "@trunkd", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}))
	if n.addr.Name != "\x00trunkd" || n.watchdog != 0 {
		t.Errorf("newNotifier(@trunkd, another pid's watchdog) = %q, %v; want the abstract socket and no watchdog", n.addr.Name, n.watchdog)
	}
	n = newNotifier(env(map[string]string{"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "5000000"}))
	if n.watchdog != 5*time.Second {
		t.Errorf("watchdog = %v; want 5s", n.watchdog)
	}
}
