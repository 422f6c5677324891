package sipplane

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// TestAlive: a plane with no trunk is alive by its lock alone; with a
// trunk, its listener must answer the OPTIONS.
func TestAlive(t *testing.T) {
	p := newPlane(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.Alive(ctx); err != nil {
		t.Fatalf("Alive() with no trunks = %v; want nil", err)
	}
	apply(t, p, testTrunk("carrier-1", siptest.FreePort(t, "127.0.0.1")))
	if err := p.Alive(ctx); err != nil {
		t.Fatalf("Alive() with a listening trunk = %v; want nil", err)
	}
}

// TestAliveFailsOnSilentListener: a listener that takes datagrams and never
// answers is not alive, and a held lock is not either.
func TestAliveFailsOnSilentListener(t *testing.T) {
	p := newPlane(t, Config{})
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	p.listeners.mu.Lock()
	p.listeners.byKey = map[string]*listener{silent.LocalAddr().String(): {}}
	p.listeners.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Alive(ctx); err == nil || !strings.Contains(err.Error(), "no answer to OPTIONS") {
		t.Errorf("Alive() with a silent listener = %v; want no answer to OPTIONS", err)
	}
	p.listeners.mu.Lock()
	p.listeners.byKey = nil
	p.listeners.mu.Unlock()

	p.mu.Lock()
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = p.Alive(ctx)
	p.mu.Unlock()
	if err == nil {
		t.Error("Alive() with the plane's lock held = nil; want an error")
	}
}
