package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// snapStore is an in-memory store that can be snapshotted: its snapshot
// is data, or a short write of it when short is set.
type snapStore struct {
	*controltest.MemStore
	data  []byte
	short atomic.Bool // the network gives the race detector no order between the test and the server
}

func (s *snapStore) Snapshot(ctx context.Context, fn func(int64, func(io.Writer) error) error) error {
	return fn(int64(len(s.data)), func(w io.Writer) error {
		b := s.data
		if s.short.Load() {
			b = b[:len(b)/2]
		}
		_, err := w.Write(b)
		return err
	})
}

// sampleSnapshot stands for a store file in the golden answer.
var sampleSnapshot = []byte("trunkd store bytes (a bbolt file in production)")

// serveBackup runs a Backup request through the codec and returns all
// the bytes the server writes on the stream.
func serveBackup(t *testing.T, svc *control.Service, token string) ([]byte, []byte) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	h := &handler{api: api.NewHandler(svc, scopeAuth{}, log), log: log}
	req, err := encodeRequest("Backup", BackupRequest{AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	resp, out := h.serve(context.Background(), req)
	if out.stream == nil {
		return req, resp
	}
	var buf bytes.Buffer
	if err := h.sendStream(context.Background(), &out, &buf); err != nil {
		t.Fatalf("sendStream: %v", err)
	}
	return req, buf.Bytes()
}

// TestGoldenBackup pins Backup's request and its streamed answer (head,
// bytes, SHA-256), and the answer of a store that cannot be snapshotted.
func TestGoldenBackup(t *testing.T) {
	for _, c := range []struct {
		name  string
		store control.Store
	}{
		{"backup", &snapStore{MemStore: controltest.NewMemStore(), data: sampleSnapshot}},
		{"backup_unsupported", controltest.NewMemStore()},
	} {
		req, resp := serveBackup(t, control.New(c.store, nil), "trunks:admin")
		checkGolden(t, c.name+".request.msgpack", req)
		checkGolden(t, c.name+".response.bin", resp)
		checkGolden(t, c.name+".hex.txt", []byte(hexDump(goldenCase{name: c.name, method: "Backup"}, req, resp)))
	}
}

func TestReadBackup(t *testing.T) {
	_, good := serveBackup(t, control.New(&snapStore{MemStore: controltest.NewMemStore(), data: sampleSnapshot}, nil), "trunks:admin")
	flipped := bytes.Clone(good)
	flipped[len(flipped)-40] ^= 1 // a byte of the store
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 1
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"intact", good, ""},
		{"store byte flipped", flipped, ErrBackupChecksum.Error()},
		{"digest flipped", badSum, ErrBackupChecksum.Error()},
		{"cut in the store", good[:len(good)-40], "backup cut off"},
		{"cut in the digest", good[:len(good)-5], "before its checksum"},
		{"trailing bytes", append(bytes.Clone(good), 0), "after the checksum"},
	} {
		var out bytes.Buffer
		head, digest, err := readBackup(bufio.NewReader(bytes.NewReader(c.in)), &out)
		got := fmt.Sprint(err)
		if c.want == "" {
			if err != nil || !bytes.Equal(out.Bytes(), sampleSnapshot) || digest != sha256.Sum256(sampleSnapshot) || head.Format != "bbolt" {
				t.Errorf("%s: readBackup = %+v, %q, %v; want the sample and its digest", c.name, head, out.Bytes(), err)
			}
			continue
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: readBackup() error = %v; want %q", c.name, err, c.want)
		}
	}
}

func TestBackupOverQUIC(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: many stream frames
	store := &snapStore{MemStore: controltest.NewMemStore(), data: data}
	_, c := testServer(t, Config{Service: control.New(store, nil)}, "trunks:admin")
	var out bytes.Buffer
	head, digest, err := c.Backup(ctxT(t), &out)
	if err != nil {
		t.Fatalf("Backup() = %v", err)
	}
	if head.Size != uint64(len(data)) || !bytes.Equal(out.Bytes(), data) || digest != sha256.Sum256(data) {
		t.Errorf("Backup() = size %d, %d bytes; want %d bytes and their digest", head.Size, out.Len(), len(data))
	}
	if err := c.Ping(ctxT(t)); err != nil {
		t.Errorf("Ping after Backup = %v; want the connection usable", err)
	}

	store.short.Store(true)
	_, _, err = c.Backup(ctxT(t), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("Backup() of a snapshot cut short = %v; want the stream reset (cut off)", err)
	}
}

func TestBackupRefusals(t *testing.T) {
	for _, c := range []struct {
		name, token string
		store       control.Store
		want        string
	}{
		{"no snapshot in this store", "trunks:admin", controltest.NewMemStore(), CodeUnavailable},
		{"trunks:read is not enough", "trunks:read", &snapStore{MemStore: controltest.NewMemStore()}, CodePermissionDenied},
	} {
		_, cl := testServer(t, Config{Service: control.New(c.store, nil)}, c.token)
		_, _, err := cl.Backup(ctxT(t), io.Discard)
		if e := (*Error)(nil); !errors.As(err, &e) || e.Code != c.want {
			t.Errorf("%s: Backup() = %v; want %s", c.name, err, c.want)
		}
	}
}

func TestReloadWithoutReloader(t *testing.T) {
	_, c := testServer(t, Config{}, "trunks:admin")
	_, err := c.Reload(ctxT(t), "debug")
	if e := (*Error)(nil); !errors.As(err, &e) || e.Code != CodeUnavailable {
		t.Errorf("Reload() = %v; want %s", err, CodeUnavailable)
	}
}

// FuzzReadBackup feeds the client's reader of a streamed Backup answer
// (bytes from the server, untrusted) anything: it never panics, and
// what it accepts is whole: the announced size copied, the digest right.
func FuzzReadBackup(f *testing.F) {
	for _, name := range []string{"backup.response.bin", "backup_unsupported.response.bin"} {
		b, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa2, 'O', 'k', 0x81, 0xa4, 's', 'i', 'z', 'e', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		head, digest, err := readBackup(bufio.NewReader(bytes.NewReader(in)), &out)
		if err != nil {
			return
		}
		if uint64(out.Len()) != head.Size || digest != sha256.Sum256(out.Bytes()) {
			t.Fatalf("readBackup accepted %d bytes for size %d, digest % x", out.Len(), head.Size, digest)
		}
	})
}

// TestGoldenReload pins Reload's request and answer.
func TestGoldenReload(t *testing.T) {
	svc := control.New(controltest.NewMemStore(), nil)
	svc.SetReloader(fakeReloader{})
	log := slog.New(slog.DiscardHandler)
	h := &handler{api: api.NewHandler(svc, scopeAuth{}, log), log: log}
	req, err := encodeRequest("Reload", ReloadRequest{AdminToken: "trunks:admin", LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := h.serve(context.Background(), req)
	checkGolden(t, "reload.request.msgpack", req)
	checkGolden(t, "reload.response.msgpack", resp)
	checkGolden(t, "reload.hex.txt", []byte(hexDump(goldenCase{name: "reload", method: "Reload"}, req, resp)))
}

type fakeReloader struct{}

func (fakeReloader) Reload(ctx context.Context, r control.ReloadRequest) (control.ReloadReport, error) {
	return control.ReloadReport{JWTKeys: 2, LogLevel: strings.ToUpper(r.LogLevel), Certs: []string{"/etc/trunkd/tls.crt", "/etc/trunkd/sip-tls.crt"}}, nil
}

// BenchmarkBackupOverQUIC streams a 16 MiB store over loopback QUIC with
// its SHA-256 checked at both ends: the rate an operator's backup runs at.
func BenchmarkBackupOverQUIC(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	store := &snapStore{MemStore: controltest.NewMemStore(), data: data}
	_, c := testServer(b, Config{Service: control.New(store, nil)}, "trunks:admin")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := c.Backup(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
