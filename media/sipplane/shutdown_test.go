package sipplane

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/trunkd/trunkd/media/sipplane/siptest"
)

// TestShutdownDrains: a call in flight at shutdown plays to its end when
// the drain bound allows; one that outlasts the bound is hung up.
func TestShutdownDrains(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drain   time.Duration
		minByte int // bytes of the 1.5 s prompt the caller must get
		maxByte int
	}{
		{"drained", 5 * time.Second, 60 * 160, 1 << 30},
		{"cut", 300 * time.Millisecond, 0, 40 * 160},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Config{Audio: &fakeAudio{length: 1500 * time.Millisecond}})
			port := siptest.FreePort(t, "127.0.0.1")
			tr := testTrunk("s", port)
			tr.RejectAudioFile = "file:///bye.wav"
			apply(t, p, tr)
			d, code := newUAC(t, "127.0.0.1").call(t, port, diago.InviteOptions{})
			if code != 200 {
				t.Fatalf("INVITE got %d", code)
			}
			defer d.Close()
			got := make(chan int)
			go func() { got <- readUntilHangup(t, d) }()
			ctx, cancel := context.WithTimeout(context.Background(), tc.drain)
			defer cancel()
			err := p.Shutdown(ctx)
			if n := <-got; n < tc.minByte || n > tc.maxByte {
				t.Errorf("caller got %d bytes; want %d-%d", n, tc.minByte, tc.maxByte)
			}
			if (err != nil) != (tc.name == "cut") {
				t.Errorf("Shutdown = %v", err)
			}
		})
	}
}

func TestNoCallsWhileShuttingDown(t *testing.T) {
	p := New(Config{Audio: &fakeAudio{length: 2 * time.Second}})
	port := siptest.FreePort(t, "127.0.0.1")
	tr := testTrunk("s", port)
	tr.RejectAudioFile = "file:///hold.wav"
	apply(t, p, tr)
	u := newUAC(t, "127.0.0.1")
	d, code := u.call(t, port, diago.InviteOptions{})
	if code != 200 {
		t.Fatalf("INVITE got %d", code)
	}
	defer d.Close()
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // Shutdown is draining the first call
	if got := u.code(t, port); got != 503 {
		t.Errorf("INVITE during shutdown got %d; want 503", got)
	}
	if _, err := p.Prepare(context.Background(), testTrunk("late", siptest.FreePort(t, "127.0.0.1"))); err == nil {
		t.Error("Prepare during shutdown succeeded")
	}
	<-done
}
