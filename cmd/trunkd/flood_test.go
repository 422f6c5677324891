package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSIPFloodLeavesAdminPlaneServing floods a trunk's listener with
// INVITEs from a source no trunk matches, oversized datagrams and INVITEs
// with a huge Content-Length, while an admin client keeps reading: every
// admin request succeeds, the carrier's next call is still answered with
// the trunk's code, and goroutines return to their baseline afterwards.
func TestSIPFloodLeavesAdminPlaneServing(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	defer stopDaemon(t, d)
	c := connect(t, d, dir, token(t, dir, "trunks:manage"))
	port := freeSIPPort(t)
	if err := c.AddTrunk(context.Background(), sipTrunk("flooded", port)); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { flood(t, port, i, stop, &sent) })
	}
	var reads, worst int64
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, found, err := c.GetTrunk(context.Background(), "flooded"); err != nil || !found {
			t.Fatalf("GetTrunk during the flood: found %v, %v", found, err)
		}
		reads++
		worst = max(worst, int64(time.Since(start)))
	}
	close(stop)
	wg.Wait()
	t.Logf("%d hostile datagrams in 2 s; %d GetTrunk meanwhile, slowest %v", sent.Load(), reads, time.Duration(worst))
	if got := inviteCode(t, port); got != 603 {
		t.Fatalf("the carrier's INVITE after the flood got %d; want 603", got)
	}
	waitGoroutines(t, base+20, 10*time.Second)
}

// flood sends, until stop, INVITEs from 127.0.0.2 (matching no trunk),
// 60 kB datagrams and INVITEs claiming a 10 MB body.
func flood(t *testing.T, port uint16, id int, stop chan struct{}, sent *atomic.Int64) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	go func() { // drain the 403s
		buf := make([]byte, 65535)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	big := []byte(strings.Repeat("X", 60000))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		msg := floodInvite(conn.LocalAddr().String(), port, fmt.Sprintf("%d-%d", id, i), 0)
		switch i % 10 {
		case 8:
			msg = big
		case 9:
			msg = floodInvite(conn.LocalAddr().String(), port, fmt.Sprintf("%d-%d", id, i), 10<<20)
		}
		if _, err := conn.WriteTo(msg, dst); err == nil {
			sent.Add(1)
		}
		if i%64 == 0 {
			time.Sleep(time.Millisecond) // let the kernel buffer drain a little
		}
	}
}

func floodInvite(local string, port uint16, id string, contentLength int) []byte {
	return fmt.Appendf(nil, "INVITE sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-f%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:x@127.0.0.2>;tag=f%s\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: flood-%s\r\n"+
		"CSeq: 1 INVITE\r\nContent-Length: %d\r\n\r\n", port, local, id, id, id, contentLength)
}

// waitGoroutines waits until the process has at most n goroutines.
func waitGoroutines(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines %v after the flood; want at most %d", runtime.NumGoroutine(), within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
