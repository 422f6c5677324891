package register

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// State is a registration's state as shown to operators.
type State string

// The states of a Registration.
const (
	Off         State = "off"
	Registering State = "registering"
	Registered  State = "registered"
	Failed      State = "failed"
)

// Default values used when the matching Config field is zero.
const (
	DefaultExpires    = time.Hour
	DefaultMinBackoff = 2 * time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultTimeout    = 32 * time.Second // 64*T1, RFC 3261 timer F
)

// Config describes one registration.
type Config struct {
	// Registrar is the host:port the REGISTER is sent to (the trunk's
	// proxy, else gateway_ip:destination_sbc_port). Port defaults to 5060.
	Registrar string
	// Transport is "udp" (default), "tcp" or "tls".
	Transport string
	// Domain is the AOR host; the AOR is sip:Username@Domain. Empty means
	// the registrar's host.
	Domain string
	// Username and Password are the AOR user and the digest credentials.
	Username, Password string
	// Expires is the requested expiry (register_expires_sec).
	Expires time.Duration
	// Contact is our contact URI (user, external host, port), built by the
	// caller.
	Contact sip.Uri
	// DisplayName is optional, used in From and To.
	DisplayName string
	// MinBackoff and MaxBackoff bound the failure backoff (defaults 2s and
	// 5min).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds the wait for each REGISTER's final answer (default
	// 32s, the SIP transaction timeout).
	Timeout time.Duration
	// Logger is optional.
	Logger *slog.Logger
}

// Status is a snapshot of a Registration.
type Status struct {
	State State
	// Error is the last failure's text while State is Failed.
	Error string
	// Expires is when the last granted binding lapses (zero if none).
	Expires time.Time
	// LastChange is when State last changed.
	LastChange time.Time
}

// Registration keeps one AOR's binding alive until Stop.
type Registration struct {
	client *sipgo.Client
	cfg    Config
	log    *slog.Logger
	aor    sip.Uri
	dest   string

	// Owned by the loop goroutine, then by Stop once the loop has ended.
	callID     sip.CallIDHeader
	fromTag    string
	cseq       uint32
	challenges map[string]*challenge
	boundUntil time.Time

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	mu     sync.Mutex
	status Status
}

// Start begins registering in a new goroutine and returns at once.
func Start(client *sipgo.Client, c Config) *Registration {
	c = withDefaults(c)
	host, port := splitRegistrar(c.Registrar)
	domain := c.Domain
	if domain == "" {
		domain = host
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registration{
		client:     client,
		cfg:        c,
		log:        c.Logger.With("registrar", c.Registrar, "user", c.Username),
		aor:        sip.Uri{Scheme: "sip", User: c.Username, Host: domain},
		dest:       net.JoinHostPort(host, strconv.Itoa(port)),
		callID:     sip.CallIDHeader(sip.GenerateTagN(32)),
		fromTag:    sip.GenerateTagN(16),
		cseq:       1,
		challenges: map[string]*challenge{},
		cancel:     cancel,
		done:       make(chan struct{}),
		status:     Status{State: Registering, LastChange: time.Now()},
	}
	go r.run(ctx)
	return r
}

func withDefaults(c Config) Config {
	if c.Transport == "" {
		c.Transport = "udp"
	}
	if c.Expires <= 0 {
		c.Expires = DefaultExpires
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// splitRegistrar splits host[:port], defaulting the port to 5060.
func splitRegistrar(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 5060
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 {
		port = 5060
	}
	return host, port
}

// Status returns the current state. It is safe for concurrent use.
func (r *Registration) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Registration) setStatus(state State, errText string, expires time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.State != state {
		r.status.LastChange = time.Now()
	}
	r.status.State = state
	r.status.Error = errText
	r.status.Expires = expires
}

// Stop ends the loop and, if a binding may still be live, removes only our
// own Contact (Expires: 0 and ;expires=0, never "Contact: *"). It waits at
// most ctx for the un-REGISTER. Calls after the first return nil.
func (r *Registration) Stop(ctx context.Context) error {
	first := false
	r.stopOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	r.cancel()
	<-r.done // the loop's SIP calls and sleeps all watch its context
	defer r.setStatus(Off, "", time.Time{})
	if !time.Now().Before(r.boundUntil) {
		return nil
	}
	return r.unregister(ctx)
}
