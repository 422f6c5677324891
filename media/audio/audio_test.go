package audio

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tone is a sine of hz at format f lasting d.
func tone(hz float64, f Format, d time.Duration) []int16 {
	n := int(d.Seconds() * float64(f.Rate))
	s := make([]int16, n*f.Channels)
	for i := range n {
		v := int16(10000 * math.Sin(2*math.Pi*hz*float64(i)/float64(f.Rate)))
		for c := range f.Channels {
			s[i*f.Channels+c] = v
		}
	}
	return s
}

// crossings counts sign changes, about 2×frequency×seconds for a sine.
func crossings(s []int16, channels int) int {
	n := 0
	for i := channels; i < len(s); i += channels {
		if (s[i-channels] < 0) != (s[i] < 0) {
			n++
		}
	}
	return n
}

func chunk(id string, body []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func riff(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...), append([]byte("WAVE"), body...)...)
}

func fmtChunk(tag uint16, ch, rate, bits int, extra ...byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, uint16(ch))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*ch*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(ch*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	return chunk("fmt ", append(b, extra...))
}

func pcm(s []int16) []byte {
	var b []byte
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestDecode(t *testing.T) {
	s := tone(440, Format{16000, 2}, 100*time.Millisecond)
	ext := append(binary.LittleEndian.AppendUint16(nil, 22), make([]byte, 6)...)
	ext = append(ext, 1, 0) // KSDATAFORMAT_SUBTYPE_PCM begins 01 00
	ext = append(ext, make([]byte, 14)...)
	streamed := riff(fmtChunk(1, 2, 16000, 16), chunk("data", pcm(s)))
	binary.LittleEndian.PutUint32(streamed[40:], 0xFFFFFFFF)
	for name, tc := range map[string]struct {
		file []byte
		n    int
	}{
		"plain":        {riff(fmtChunk(1, 2, 16000, 16), chunk("data", pcm(s))), len(s)},
		"LIST first":   {riff(chunk("LIST", []byte("odd")), fmtChunk(1, 2, 16000, 16), chunk("data", pcm(s))), len(s)},
		"extensible":   {riff(fmtChunk(0xFFFE, 2, 16000, 16, ext...), chunk("data", pcm(s))), len(s)},
		"streamed":     {streamed, len(s)},
		"truncated":    {riff(fmtChunk(1, 2, 16000, 16), chunk("data", pcm(s)))[:44+401], 200},
		"Encode round": {Encode(s, Format{16000, 2}), len(s)},
	} {
		got, f, err := Decode(tc.file)
		if err != nil || f != (Format{16000, 2}) || len(got) != tc.n {
			t.Errorf("%s: Decode = %d samples, %v, %v; want %d, 16000/2", name, len(got), f, err, tc.n)
		}
	}
	for name, file := range map[string][]byte{
		"empty":      nil,
		"not RIFF":   []byte("RIFX....WAVEfmt "),
		"8-bit":      riff(fmtChunk(1, 1, 8000, 8), chunk("data", []byte{1, 2})),
		"float":      riff(fmtChunk(3, 1, 8000, 32), chunk("data", make([]byte, 8))),
		"A-law":      riff(fmtChunk(6, 1, 8000, 8), chunk("data", []byte{1})),
		"3 channels": riff(fmtChunk(1, 3, 8000, 16), chunk("data", make([]byte, 6))),
		"rate 1":     riff(fmtChunk(1, 1, 1, 16), chunk("data", make([]byte, 6))),
		"no data":    riff(fmtChunk(1, 1, 8000, 16)),
		"no fmt":     riff(chunk("data", make([]byte, 6))),
		"short fmt":  riff(chunk("fmt ", []byte{1, 0})),
	} {
		if _, _, err := Decode(file); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(tone(440, Format{8000, 1}, 10*time.Millisecond), Format{8000, 1}))
	f.Add(riff(chunk("LIST", []byte("x")), fmtChunk(1, 2, 48000, 16), chunk("data", []byte{1, 2, 3, 4})))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _, err := Decode(b)
		if err == nil && 2*len(s) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(s), len(b))
		}
	})
}

func TestConvertKeepsPitch(t *testing.T) {
	for _, tc := range []struct{ from, to Format }{
		{Format{16000, 1}, Format{8000, 1}},
		{Format{44100, 2}, Format{8000, 1}},
		{Format{8000, 1}, Format{48000, 2}},
	} {
		in := tone(1000, tc.from, time.Second)
		out := Convert(in, tc.from, tc.to)
		if want := tc.to.Rate * tc.to.Channels; abs(len(out)-want) > tc.to.Channels*2 {
			t.Errorf("%v -> %v: %d samples; want about %d", tc.from, tc.to, len(out), want)
		}
		// 1 kHz for 1 s crosses zero about 2000 times.
		if c := crossings(out, tc.to.Channels); abs(c-2000) > 20 {
			t.Errorf("%v -> %v: %d zero crossings; want about 2000 (1 kHz kept)", tc.from, tc.to, c)
		}
	}
	st := Convert([]int16{100, 300, -50, 50}, Format{8000, 2}, Format{8000, 1})
	if len(st) != 2 || st[0] != 200 || st[1] != 0 {
		t.Errorf("stereo to mono = %v; want the average of each frame [200 0]", st)
	}
}

func abs(x int) int { return max(x, -x) }

func TestCacheHTTP(t *testing.T) {
	wav := Encode(tone(440, Format{16000, 1}, 200*time.Millisecond), Format{16000, 1})
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/slow.wav":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/prompt.wav":
			w.Write(wav)
		case "/big.wav":
			w.Write(make([]byte, 2048))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer close(release)
	c := New(Options{FetchTimeout: 300 * time.Millisecond, MaxFileBytes: 1 << 20})
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			b, err := c.WAV(ctx, srv.URL+"/prompt.wav", Format{8000, 1})
			if err != nil || len(b) != 44+2*1600 {
				t.Errorf("WAV = %d bytes, %v; want 200 ms at 8 kHz", len(b), err)
			}
		})
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("10 concurrent requests made %d fetches; want 1", n)
	}
	if _, err := c.WAV(ctx, srv.URL+"/missing.wav", Format{8000, 1}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing file: %v; want a 404 error", err)
	}
	if _, err := c.WAV(ctx, srv.URL+"/slow.wav", Format{8000, 1}); err == nil {
		t.Error("a download over FetchTimeout succeeded")
	}
	small := New(Options{MaxFileBytes: 1024})
	if _, err := small.WAV(ctx, srv.URL+"/big.wav", Format{8000, 1}); err == nil || !strings.Contains(err.Error(), "cap") {
		t.Errorf("oversize file: %v; want a cap error", err)
	}
	secret := strings.Replace(srv.URL, "http://", "http://user:pw-secret@", 1) + "/missing.wav?token=tok-secret"
	if _, err := c.WAV(ctx, secret, Format{8000, 1}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v leaks a credential of the URL", err)
	}
}

func TestCacheEvictionAndTTL(t *testing.T) {
	wav := Encode(tone(440, Format{8000, 1}, 100*time.Millisecond), Format{8000, 1})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(wav)
	}))
	defer srv.Close()
	c := New(Options{MaxBytes: int64(2*len(wav) + 10), TTL: time.Minute})
	now := time.Now()
	c.now = func() time.Time { return now }
	get := func(p string) {
		if _, err := c.WAV(context.Background(), srv.URL+p, Format{8000, 1}); err != nil {
			t.Fatal(err)
		}
	}
	get("/a")
	get("/b")
	get("/a") // a is now the most recent
	get("/c") // evicts b
	if n := hits.Load(); n != 3 {
		t.Fatalf("%d fetches; want 3", n)
	}
	get("/a")
	get("/b")
	if n := hits.Load(); n != 4 {
		t.Errorf("%d fetches; want 4 (only b was evicted)", n)
	}
	now = now.Add(2 * time.Minute)
	get("/b")
	if n := hits.Load(); n != 5 {
		t.Errorf("%d fetches after the TTL; want 5 (b refetched)", n)
	}
}

func TestCacheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wav")
	write := func(d time.Duration) {
		if err := os.WriteFile(path, Encode(tone(440, Format{8000, 1}, d), Format{8000, 1}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(100 * time.Millisecond)
	c := New(Options{})
	b, err := c.WAV(context.Background(), "file://"+path, Format{8000, 1})
	if err != nil || len(b) != 44+1600 {
		t.Fatalf("WAV(file) = %d bytes, %v", len(b), err)
	}
	write(200 * time.Millisecond) // a changed file is read again
	if b, _ = c.WAV(context.Background(), "file://"+path, Format{8000, 1}); len(b) != 44+3200 {
		t.Errorf("after rewriting the file, WAV = %d bytes; want the new 200 ms", len(b))
	}
	for _, bad := range []string{"file://relative/p.wav", "ftp://host/p.wav", "file:///nonexistent.wav"} {
		if _, err := c.WAV(context.Background(), bad, Format{8000, 1}); err == nil {
			t.Errorf("WAV(%q) succeeded", bad)
		}
	}
}

func BenchmarkConvert(b *testing.B) {
	in := tone(440, Format{44100, 2}, 10*time.Second)
	b.SetBytes(int64(2 * len(in)))
	for b.Loop() {
		Convert(in, Format{44100, 2}, Format{8000, 1})
	}
}
