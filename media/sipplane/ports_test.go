package sipplane

import (
	"net"
	"testing"

	"github.com/emiago/diago/media"
)

func TestPortPoolWrapsAndSkipsBusy(t *testing.T) {
	start := 41000 + 200*int(rtpBase.Add(1)%100)
	pool := newPortPool(start, start+7) // pairs at start, +2, +4, +6
	ip := net.ParseIP("127.0.0.1")
	// Another process holds the third pair's RTP port.
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: start + 4})
	if err != nil {
		t.Skipf("port taken by something else: %v", err)
	}
	defer busy.Close()
	var open []*media.MediaSession
	var ports []int
	for range 3 {
		ms := &media.MediaSession{Codecs: []media.Codec{media.CodecAudioUlaw}, Mode: "sendrecv"}
		port, _, err := pool.open(ms, ip)
		if err != nil {
			t.Fatalf("open: %v (ports so far %v)", err, ports)
		}
		open, ports = append(open, ms), append(ports, port)
	}
	if want := []int{start, start + 2, start + 6}; !equalInts(ports, want) {
		t.Fatalf("ports = %v; want %v (busy one skipped)", ports, want)
	}
	ms := &media.MediaSession{Codecs: []media.Codec{media.CodecAudioUlaw}, Mode: "sendrecv"}
	if _, _, err := pool.open(ms, ip); err == nil {
		t.Fatal("open with every pair busy succeeded")
	}
	// Free the first pair: the cursor is past the end, and wraps to it.
	open[0].Close()
	pool.release(ports[0])
	port, _, err := pool.open(ms, ip)
	if err != nil || port != start {
		t.Fatalf("open after freeing the first pair = %d, %v; want %d (wrap-around)", port, err, start)
	}
	ms.Close()
	for _, m := range open[1:] {
		m.Close()
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
