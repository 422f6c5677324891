package siptest

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Register is one REGISTER a Registrar received.
type Register struct {
	Req        *sip.Request // a copy of the request
	Source     string       // the IP address it came from
	Unregister bool         // Expires: 0
	At         time.Time
}

// Registrar is a SIP registrar on a loopback UDP port that answers every
// REGISTER 200 OK (echoing its Contact) and records it. t's cleanup stops
// it.
type Registrar struct {
	Addr string // "127.0.0.1:port"

	mu   sync.Mutex
	regs []Register
}

// NewRegistrar starts a Registrar.
func NewRegistrar(t testing.TB) *Registrar {
	t.Helper()
	r := &Registrar{}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("registrar"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(r.register)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = conn.LocalAddr().String()
	go srv.ServeUDP(conn)
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return r
}

func (r *Registrar) register(req *sip.Request, tx sip.ServerTransaction) {
	host, _, _ := net.SplitHostPort(req.Source())
	e := req.GetHeader("Expires")
	r.mu.Lock()
	r.regs = append(r.regs, Register{Req: req.Clone(), Source: host, Unregister: e != nil && e.Value() == "0", At: time.Now()})
	r.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if c := req.Contact(); c != nil {
		res.AppendHeader(c.Clone())
	}
	tx.Respond(res)
}

// Registers returns what the registrar has received so far, oldest first.
func (r *Registrar) Registers() []Register {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.regs)
}
