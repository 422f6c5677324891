package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/trunkd/trunkd/trunk/control"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// testServer runs a Server with in-memory trunks on a random loopback port
// and returns a connected client holding token.
func testServer(t testing.TB, cfg Config, token string) (*Server, *Client) {
	t.Helper()
	dir := t.TempDir()
	cert, _, err := LoadOrCreateCert(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Service == nil {
		cfg.Service = control.New(controltest.NewMemStore(), nil)
	}
	if cfg.Auth == nil {
		cfg.Auth = scopeAuth{}
	}
	s := NewServer(cfg)
	if err := s.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve() = %v; want ErrServerClosed", err)
		}
	})
	c := dialTest(t, s, filepath.Join(dir, "tls.crt"), token)
	return s, c
}

func dialTest(t testing.TB, s *Server, caFile, token string) *Client {
	t.Helper()
	tc, err := PinnedTLSConfig(caFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.Addr().String(), tc, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientMethodsOverQUIC(t *testing.T) {
	_, c := testServer(t, Config{}, ScopeManage)
	ctx := ctxT(t)
	tr := sampleTrunk()
	if err := c.AddTrunk(ctx, &tr); err != nil {
		t.Fatalf("AddTrunk: %v", err)
	}
	if err := c.AddTrunk(ctx, &tr); ErrorCode(err) != CodeTrunkExists {
		t.Errorf("AddTrunk again = %v; want %s", err, CodeTrunkExists)
	}
	tr.DisplayName = "Renamed"
	if err := c.UpdateTrunk(ctx, &tr); err != nil {
		t.Fatalf("UpdateTrunk: %v", err)
	}
	got, found, err := c.GetTrunk(ctx, tr.TrunkID)
	if err != nil || !found || got.DisplayName != "Renamed" {
		t.Errorf("GetTrunk = %+v, %v, %v; want found with display name Renamed", got, found, err)
	}
	list, next, err := c.ListTrunks(ctx, "", 0)
	if err != nil || len(list) != 1 || next != "" {
		t.Errorf("ListTrunks = %+v, %q, %v; want one trunk and the end", list, next, err)
	}
	if err := c.RemoveTrunk(ctx, tr.TrunkID); err != nil {
		t.Fatalf("RemoveTrunk: %v", err)
	}
	if err := c.RemoveTrunk(ctx, tr.TrunkID); ErrorCode(err) != CodeInvalidTrunk {
		t.Errorf("RemoveTrunk again = %v; want %s", err, CodeInvalidTrunk)
	}
	bad := sampleTrunk()
	bad.RTPStartPort = 1001
	err = c.AddTrunk(ctx, &bad)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidArgument || e.Field != "rtp_start_port" {
		t.Errorf("AddTrunk with odd rtp_start_port = %v; want %s naming rtp_start_port", err, CodeInvalidArgument)
	}
}

// TestConcurrentStreams runs many requests at once on one connection,
// more than the per-connection stream limit.
func TestConcurrentStreams(t *testing.T) {
	_, c := testServer(t, Config{MaxStreams: 16}, ScopeManage)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			tr := sampleTrunk()
			tr.TrunkID = fmt.Sprintf("t%03d", i)
			if err := c.AddTrunk(ctx, &tr); err != nil {
				errs <- err
				return
			}
			if _, found, err := c.GetTrunk(ctx, tr.TrunkID); err != nil || !found {
				errs <- fmt.Errorf("GetTrunk %s = %v, %v", tr.TrunkID, found, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, _, err := c.ListTrunks(ctx, "", 1000)
	if err != nil || len(list) != 200 {
		t.Errorf("ListTrunks = %d trunks, %v; want 200", len(list), err)
	}
}

// TestManySequentialRequests checks that streams are released on both
// sides: far more requests than the stream limit, one after the other, on
// one connection, must not stall.
func TestManySequentialRequests(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	_, c := testServer(t, Config{MaxStreams: 8}, ScopeManage)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range n {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// rawStream opens a stream on c's connection for hostile-client tests.
func rawStream(t *testing.T, c *Client) *quic.Stream {
	t.Helper()
	str, err := c.conn.OpenStreamSync(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return str
}

func TestHostileStreamsLeaveConnectionUsable(t *testing.T) {
	_, c := testServer(t, Config{RequestTimeout: 300 * time.Millisecond, MaxStreams: 4}, ScopeManage)
	ctx := ctxT(t)

	// Garbage gets ERR_MALFORMED.
	resp, err := c.CallRaw(ctx, []byte("\xc1\xc1garbage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeResponse(resp, nil); ErrorCode(err) != CodeMalformed {
		t.Errorf("garbage: %v; want %s", err, CodeMalformed)
	}

	// An oversize request gets ERR_TOO_LARGE.
	big := env("Ping", mpMap(mpStr("pad"), mpStr(string(make([]byte, 70<<10)))))
	resp, err = c.CallRaw(ctx, big)
	if err != nil {
		t.Fatalf("oversize: %v", err)
	}
	if err := decodeResponse(resp, nil); ErrorCode(err) != CodeTooLarge {
		t.Errorf("oversize: %v; want %s", err, CodeTooLarge)
	}

	// Streams that never finish are reset after the timeout; more of them
	// than the stream limit must not block later requests for good.
	var hostile sync.WaitGroup
	for range 6 {
		str := rawStream(t, c)
		str.Write([]byte{0x81})
		hostile.Go(func() {
			buf := make([]byte, 16)
			_, err := str.Read(buf)
			var se *quic.StreamError
			if !errors.As(err, &se) {
				t.Errorf("unfinished stream: read = %v; want a stream reset", err)
			}
		})
	}
	for i := range 20 {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("ping %d after hostile streams: %v", i, err)
		}
	}
	hostile.Wait()
}

func TestShutdownFinishesInFlight(t *testing.T) {
	s, c := testServer(t, Config{}, ScopeManage)
	ctx := ctxT(t)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping after Shutdown succeeded; want an error")
	}
}

// TestWorkersServeAndExit: requests in flight at once each get a worker;
// a later request is served by one that is idle, not a new one; every
// worker exits once the server stops accepting.
func TestWorkersServeAndExit(t *testing.T) {
	s, c := testServer(t, Config{}, ScopeManage)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := c.Ping(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := workers()
	if n == 0 {
		t.Fatal("no worker is left waiting after the requests")
	}
	for range 20 {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if m := workers(); m > n {
		t.Errorf("%d workers after 20 requests one at a time; want at most the %d there were", m, n)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); workers() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still running after Shutdown", workers())
		}
	}
}

// workers counts the goroutines running Server.worker.
func workers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("rpc.(*Server).worker("))
}

func TestPinnedTLSRefusesOtherCert(t *testing.T) {
	s, _ := testServer(t, Config{}, ScopeManage)
	dir := t.TempDir()
	other, _, err := SelfSignedCert([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "other.crt")
	if err := os.WriteFile(ca, other, 0o644); err != nil {
		t.Fatal(err)
	}
	tc, err := PinnedTLSConfig(ca, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c, err := Dial(ctx, s.Addr().String(), tc, ""); err == nil {
		c.Close()
		t.Fatal("Dial with another pinned certificate succeeded; want a TLS error")
	}
}

// withPlane is a trunk service over an in-memory store and calls.
func withPlane(calls *controltest.FakeCalls) *control.Service {
	return control.New(controltest.NewMemStore(), newFakePlane(calls))
}

func TestCallsOverQUIC(t *testing.T) {
	// A Dial rings for longer than the time a request may take to arrive:
	// that limit must not cut it short.
	fake := newFakeCalls()
	fake.SlowAnswer = 700 * time.Millisecond
	_, c := testServer(t, Config{Service: withPlane(fake), RequestTimeout: 300 * time.Millisecond}, ScopeCalls)
	ctx := ctxT(t)

	res, err := c.Dial(ctx, DialRequest{TrunkID: "carrier-1", To: "slow", TimeoutSec: 5})
	if err != nil || !res.Answered || res.CallID != "call-1" || res.SIPCode != 200 || res.SetupMs != 2345 {
		t.Fatalf("Dial = %+v, %v; want call-1 answered", res, err)
	}
	res, err = c.Dial(ctx, DialRequest{TrunkID: "carrier-1", To: "486"})
	if err != nil || res.Answered || res.SIPCode != 486 || res.Reason != "Busy Here" {
		t.Errorf("Dial busy = %+v, %v; want a response with answered false and 486 Busy Here", res, err)
	}
	for trunkID, want := range map[string]string{"carrier-2": CodeCircuitOpen, "full": CodeChannelLimit, "gone": CodeInvalidTrunk} {
		if _, err := c.Dial(ctx, DialRequest{TrunkID: trunkID, To: "100"}); ErrorCode(err) != want {
			t.Errorf("Dial through %s = %v; want %s", trunkID, err, want)
		}
	}
	var e *Error
	if _, err := c.Dial(ctx, DialRequest{TrunkID: "carrier-1", TimeoutSec: 301, To: "1"}); !errors.As(err, &e) || e.Field != "timeout_sec" {
		t.Errorf("Dial with timeout_sec 301 = %v; want %s naming timeout_sec", err, CodeInvalidArgument)
	}

	calls, err := c.ListCalls(ctx, "carrier-1")
	if err == nil {
		t.Errorf("ListCalls with a calls:manage token = %+v; want %s (it needs trunks:read)", calls, CodePermissionDenied)
	}
	reader := &Client{conn: c.conn, tr: c.tr, token: ScopeRead} // the same connection, another token
	calls, err = reader.ListCalls(ctx, "carrier-1")
	if err != nil || len(calls) != 2 || calls[0].CallID != "in-1" || calls[1].CallID != "call-1" || calls[1].Start != fakeNow.UnixMilli() {
		t.Errorf("ListCalls = %+v, %v; want in-1 then call-1", calls, err)
	}
	if _, err := reader.Dial(ctx, DialRequest{TrunkID: "carrier-1", To: "100"}); ErrorCode(err) != CodePermissionDenied {
		t.Errorf("Dial with a read token = %v; want %s", err, CodePermissionDenied)
	}
	if err := reader.Hangup(ctx, "call-1"); ErrorCode(err) != CodePermissionDenied {
		t.Errorf("Hangup with a read token = %v; want %s", err, CodePermissionDenied)
	}

	if err := c.Hangup(ctx, "call-1"); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	if err := c.Hangup(ctx, "call-1"); ErrorCode(err) != CodeUnknownCall {
		t.Errorf("Hangup again = %v; want %s", err, CodeUnknownCall)
	}
	if calls, err := reader.ListCalls(ctx, ""); err != nil || len(calls) != 1 {
		t.Errorf("ListCalls after the hangup = %+v, %v; want in-1 only", calls, err)
	}
}

func TestCallsOverQUICWithoutSIPPlane(t *testing.T) {
	_, c := testServer(t, Config{}, ScopeManage)
	ctx := ctxT(t)
	if _, err := c.Dial(ctx, DialRequest{TrunkID: "carrier-1", To: "100"}); ErrorCode(err) != CodeUnavailable {
		t.Errorf("Dial = %v; want %s", err, CodeUnavailable)
	}
	if err := c.Hangup(ctx, "x"); ErrorCode(err) != CodeUnavailable {
		t.Errorf("Hangup = %v; want %s", err, CodeUnavailable)
	}
	if _, err := c.ListCalls(ctx, ""); ErrorCode(err) != CodeUnavailable {
		t.Errorf("ListCalls = %v; want %s", err, CodeUnavailable)
	}
}

func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	observe := func(method, code string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, method+" "+code)
	}
	_, c := testServer(t, Config{Service: withPlane(newFakeCalls()), Observe: observe}, ScopeCalls)
	ctx := ctxT(t)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dial(ctx, DialRequest{TrunkID: "carrier-2", To: "100"}); ErrorCode(err) != CodeCircuitOpen {
		t.Fatalf("Dial = %v; want %s", err, CodeCircuitOpen)
	}
	if _, err := c.CallRaw(ctx, env("Drop\xffTables", mpMap())); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"Ping ", "Dial " + CodeCircuitOpen, "unknown " + CodeUnknownMethod}
	if !slices.Equal(seen, want) {
		t.Errorf("observed %q; want %q", seen, want)
	}
}
