package sipplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/media/audio"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/sipplane/register"
	"github.com/trunkd/trunkd/trunk"
)

// Config configures a Plane. Zero values take the defaults shown.
type Config struct {
	Logger         *slog.Logger
	UserAgent      string        // SIP User-Agent and Contact user; "trunkd"
	Audio          AudioSource   // audio fetch and conversion; an audio.Cache
	Resolver       Resolver      // DNS for gateway_ip/sbc_ip names; net.DefaultResolver
	DNSRefresh     time.Duration // re-resolution period; 60s
	WebhookTimeout time.Duration // the longest a SIP reply waits on a webhook; 1s
	HTTPClient     *http.Client  // for webhooks
	RetryAfter     time.Duration // Retry-After on 503 replies; 5s

	Breaker       trunk.BreakerConfig // per-trunk circuit breaker; trunk.DefaultBreakerConfig()
	QualityWindow time.Duration       // ASR/ACD/MOS/PDD window; trunk.DefaultQualityWindow
	ProbeInterval time.Duration       // OPTIONS keepalive to every trunk's carrier; 0 = off
	TLS           TLSConfig           // SIP over TLS: certificate, carrier roots, limits

	// Registers, when set, says whether this node registers a trunk
	// that requires registration (in a cluster exactly one node does);
	// nil: this node registers every such trunk. SetRegistering tells
	// the plane when the answer changes.
	Registers func(trunkID string) bool
	// ChannelShare, when set, is this node's part of a trunk's
	// channel_limit (in a cluster each node holds a share); nil: all of
	// it. It is asked at every call setup, so a new share applies at once.
	ChannelShare func(trunkID string, limit uint32) uint32

	// Bridger connects calls to AI agents (HANDLE_AI, Dial to an agent);
	// nil refuses them. AIConnectTimeout bounds connecting while the call
	// rings; 3s. AIStats, if set, gathers every bridge's counters.
	Bridger          bridge.Connector
	AIConnectTimeout time.Duration
	AIStats          *bridge.Stats
	AgentHost        string // host of deployed agents' SIP URIs; the first interface address
}

// AudioSource fetches audio converted to a call's format.
type AudioSource interface {
	WAV(ctx context.Context, url string, f audio.Format) ([]byte, error)
}

// Resolver resolves DNS names.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Plane is the SIP plane: listeners, inbound calls and registrations for
// every live trunk.
type Plane struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex             // guards trunks and table swaps
	trunks map[string]*trunkState // by trunk id
	// draining names the removed trunks whose calls still run; guarded by mu
	draining map[string]struct{}

	listeners listeners
	table     atomic.Pointer[table]
	calls     calls
	agents    sync.Map // agent_id -> *trunk.Agent, the deployed ones
	active    atomic.Int64
	closing   atomic.Bool
	bulk      atomic.Bool // LoadAll in progress: the table is built once at its end
	withCalls healthSet   // trunks with calls in their quality window
	tripped   healthSet   // trunks whose breaker is open or half-open
	stop      context.CancelFunc
	done      chan struct{}
}

// New returns a Plane with no trunks and starts its DNS refresher.
func New(cfg Config) *Plane {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "trunkd"
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.DNSRefresh <= 0 {
		cfg.DNSRefresh = time.Minute
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.WebhookTimeout}
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.Audio == nil {
		cfg.Audio = audio.New(audio.Options{})
	}
	if cfg.Breaker == (trunk.BreakerConfig{}) {
		cfg.Breaker = trunk.DefaultBreakerConfig()
	}
	cfg.TLS.defaults()
	if cfg.AIConnectTimeout <= 0 {
		cfg.AIConnectTimeout = 3 * time.Second
	}
	if cfg.AIStats == nil {
		cfg.AIStats = &bridge.Stats{}
	}
	if cfg.QualityWindow <= 0 {
		cfg.QualityWindow = trunk.DefaultQualityWindow
	}
	// Answers list codecs in the trunk's order of preference, not the
	// offerer's: codec_preferences is what operators set.
	setPreferLocalOrder.Do(func() { media.SDPCodecPreferLocalOrder = 1 })
	// sipgo logs some connection events (a TLS connection's reference
	// count going negative on close, a known sipgo quirk) through its
	// process-wide default logger, which would write unformatted to
	// stderr: route it to the first plane's logger, at debug like the rest
	// of what sipgo logs.
	setSIPLogger.Do(func() { sip.SetDefaultLogger(slog.New(debugOnly{cfg.Logger.Handler()})) })
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{
		cfg: cfg, log: cfg.Logger,
		trunks: map[string]*trunkState{},
		stop:   cancel, done: make(chan struct{}),
	}
	p.listeners.p = p
	p.table.Store(buildTable(nil))
	go p.refreshDNS(ctx)
	go p.probeLoop(ctx)
	return p
}

// setPreferLocalOrder sets diago's process-wide codec order once, and
// setSIPLogger sipgo's default logger.
var setPreferLocalOrder, setSIPLogger sync.Once

// trunkState is all the plane keeps for one trunk id. live is the running
// configuration, nil while the trunk is only degraded; degraded says why
// the stored trunk could not be applied. slots and health are created by
// the first Commit and kept across updates (calls in flight keep theirs);
// the whole state goes when the trunk is removed.
type trunkState struct {
	live     *live
	degraded string
	slots    *slots
	health   *health
	// removed marks the state of a trunk removed while calls were in
	// flight: its slots stay, so a trunk added again under the same id
	// counts those calls against its channel_limit until they end.
	removed bool
}

// state returns the trunk's state, creating it. Callers hold p.mu.
func (p *Plane) state(id string) *trunkState {
	ts := p.trunks[id]
	if ts == nil {
		ts = &trunkState{}
		p.trunks[id] = ts
	}
	return ts
}

// liveLocked returns the trunk's running configuration, or nil. Callers
// hold p.mu.
func (p *Plane) liveLocked(id string) *live {
	if ts := p.trunks[id]; ts != nil {
		return ts.live
	}
	return nil
}

// liveSortedLocked lists the running configurations, of which there are
// n, sorted by id: from ts, which the store gives in id order (sorting
// a sorted list is cheap, a map's order is not), unless other trunks are
// live too. Callers hold p.mu.
func (p *Plane) liveSortedLocked(ts []*trunk.Trunk, n int) []*live {
	l := make([]*live, 0, n)
	for _, t := range ts {
		if lv := p.liveLocked(t.TrunkID); lv != nil {
			l = append(l, lv)
		}
	}
	slices.SortFunc(l, byID)
	if l = slices.Compact(l); len(l) != n {
		l = p.liveTrunksLocked()
	}
	return l
}

// liveTrunksLocked lists the running configurations. Callers hold p.mu.
func (p *Plane) liveTrunksLocked() []*live {
	l := make([]*live, 0, len(p.trunks))
	for _, ts := range p.trunks {
		if ts.live != nil {
			l = append(l, ts.live)
		}
	}
	return l
}

// live is one trunk configuration as the SIP plane runs it. It is never
// modified after Commit; an Update builds a new one.
type live struct {
	t       *trunk.Trunk
	bind    string
	l       *listener
	codecs  []media.Codec
	ports   *portPool
	slots   *slots
	h       *health
	cidrs   []netip.Prefix
	allowed []netip.Prefix // allowed_addresses, masked
	rtpIP   net.IP         // bind address for RTP sockets
	extRTP  net.IP         // advertised in SDP; nil means rtpIP
	addrs   atomic.Pointer[addrSet]
	named   bool                   // gateway_ip or sbc_ip is a DNS name: the refresher re-resolves it
	bargein bridge.Params          // for bridged calls
	regKey  string                 // "" without require_registration
	reg     *register.Registration // set by Commit; nil when not registering
	slot    *slot                  // where the table holds it; set by Commit
}

type addrSet struct {
	gateway, sbc []netip.Addr
}

// addrField names the field whose address a is, or "".
func (lv *live) addrField(a netip.Addr) string {
	s := lv.addrs.Load()
	if s == nil || !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	if containsAddr(s.gateway, a) {
		return "gateway_ip"
	}
	if containsAddr(s.sbc, a) {
		return "sbc_ip"
	}
	return ""
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// slots counts a trunk's calls in both directions against channel_limit.
type slots struct{ n atomic.Int64 }

func (s *slots) acquire(limit uint32) bool {
	if s.n.Add(1) > int64(limit) {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() { s.n.Add(-1) }

// limit is the channel limit of lv on this node (Config.ChannelShare).
func (p *Plane) limit(lv *live) uint32 {
	if p.cfg.ChannelShare == nil {
		return lv.t.ChannelLimit
	}
	return p.cfg.ChannelShare(lv.t.TrunkID, lv.t.ChannelLimit)
}

// Change is a trunk configuration prepared on the SIP plane: Commit makes
// it live, Abort undoes it. Exactly one of them must be called.
type Change struct {
	p      *Plane
	next   *live
	health *health // built ahead for a trunk new to the plane (LoadAll); nil: built in Commit
	done   bool
}

// Prepare checks that t can run on the SIP plane and acquires what it
// needs, binding a new listener when no trunk uses its address yet. A
// failure is a *trunk.Error naming the field at fault; nothing is changed.
func (p *Plane) Prepare(ctx context.Context, t *trunk.Trunk) (*Change, error) {
	lv, err := p.buildChecked(ctx, t)
	if err != nil {
		return nil, err
	}
	return p.prepareBuilt(lv)
}

// prepareBuilt is Prepare after build: it acquires lv's listener.
func (p *Plane) prepareBuilt(lv *live) (*Change, error) {
	l, err := p.listeners.acquire(lv)
	if err != nil {
		return nil, err
	}
	lv.l = l
	return &Change{p: p, next: lv}, nil
}

// Commit makes the prepared configuration live. Calls in flight keep the
// configuration they started with.
func (c *Change) Commit() {
	if c.done {
		return
	}
	c.done = true
	p, lv := c.p, c.next
	p.mu.Lock()
	ts := p.state(lv.t.TrunkID)
	prev := ts.live
	if ts.slots == nil {
		ts.slots, ts.health = &slots{}, c.newHealth()
	}
	if ts.removed {
		ts.health, ts.removed = c.newHealth(), false // the quality window went with the removal
	}
	lv.slots, lv.h = ts.slots, ts.health
	ts.live, ts.degraded = lv, ""
	bulk := p.bulk.Load()
	switch {
	case prev != nil && prev.slot != nil && sameKeys(prev, lv):
		lv.slot = prev.slot // the table stays; its slot now holds lv
		lv.slot.lv.Store(lv)
	case !bulk:
		p.table.Store(p.table.Load().replace(prev, lv))
	}
	old := p.handOver(prev, lv)
	p.mu.Unlock()
	if prev != nil {
		p.retire(old, prev.l)
	}
	level := slog.LevelInfo
	if bulk {
		level = slog.LevelDebug
	}
	p.log.Log(context.Background(), level, "trunk live on SIP", "trunk_id", lv.t.TrunkID, "listener", lv.bind)
}

// newHealth is the health of a trunk new to the plane: the one built
// ahead, else a new one.
func (c *Change) newHealth() *health {
	if h := c.health; h != nil {
		c.health = nil
		return h
	}
	return c.p.newHealth(c.next.t.TrunkID)
}

// LoadAll applies the stored trunks at start-up, as Load does one by one,
// building the match table once at the end: per-trunk updates would copy
// a listener's list once per trunk on it. The per-trunk work that depends
// on no other trunk (build: parsing, DNS) runs on several goroutines;
// listeners are then acquired and the trunks committed one by one in the
// order of ts, so which of two conflicting trunks is degraded does not
// depend on timing. LoadAll keeps the trunks of ts themselves: the caller
// must not modify them afterwards.
func (p *Plane) LoadAll(ctx context.Context, ts []*trunk.Trunk) {
	p.bulk.Store(true)
	p.mu.Lock()
	if len(p.trunks) == 0 { // start-up: one allocation instead of a map grown 100 000 times
		p.trunks = make(map[string]*trunkState, len(ts))
	}
	p.mu.Unlock()
	built, hs, errs := p.buildAll(ctx, ts)
	for i, t := range ts {
		p.loadBuilt(t, built[i], hs[i], errs[i])
	}
	p.mu.Lock()
	live, degraded := 0, 0
	for _, st := range p.trunks {
		if st.live != nil {
			live++
		}
		if st.degraded != "" {
			degraded++
		}
	}
	p.table.Store(buildTable(p.liveSortedLocked(ts, live)))
	p.bulk.Store(false)
	p.mu.Unlock()
	p.log.Info("stored trunks applied to SIP", "live", live, "degraded", degraded)
}

// Abort undoes Prepare.
func (c *Change) Abort() {
	if c.done {
		return
	}
	c.done = true
	c.p.listeners.release(c.next.l)
}

// Remove takes a trunk off the SIP plane: new calls from its carrier are
// unmatched; calls in flight run until they end.
func (p *Plane) Remove(id string) {
	p.mu.Lock()
	ts := p.trunks[id]
	delete(p.trunks, id)
	var lv *live
	if ts != nil && ts.live != nil {
		lv = ts.live
		p.table.Store(p.table.Load().replace(lv, nil))
	}
	if ts != nil && ts.slots != nil && ts.slots.n.Load() > 0 {
		p.trunks[id] = &trunkState{slots: ts.slots, removed: true}
		if p.draining == nil {
			p.draining = map[string]struct{}{}
		}
		p.draining[id] = struct{}{}
	}
	p.sweepRemovedLocked()
	p.mu.Unlock()
	if lv == nil {
		return
	}
	p.retire(lv.reg, lv.l)
	p.log.Info("trunk off SIP", "trunk_id", id)
}

// sweepRemovedLocked forgets removed trunks whose last call has ended.
// Callers hold p.mu.
func (p *Plane) sweepRemovedLocked() {
	for id := range p.draining {
		ts := p.trunks[id]
		if ts == nil || !ts.removed {
			delete(p.draining, id)
		} else if ts.slots.n.Load() <= 0 {
			delete(p.trunks, id)
			delete(p.draining, id)
		}
	}
}

// buildChecked is Prepare's build, refused while shutting down.
func (p *Plane) buildChecked(ctx context.Context, t *trunk.Trunk) (*live, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	return p.build(ctx, t)
}

// open refuses new trunks once the plane is shutting down.
func (p *Plane) open() error {
	if p.closing.Load() {
		return trunk.Errorf(trunk.EUNAVAILABLE, "SIP plane is shutting down")
	}
	return nil
}

// buildAll builds every trunk of ts, and a health for it should it be new
// to the plane, on up to loadWorkers goroutines.
func (p *Plane) buildAll(ctx context.Context, ts []*trunk.Trunk) ([]*live, []*health, []error) {
	built, hs, errs := make([]*live, len(ts)), make([]*health, len(ts)), make([]error, len(ts))
	workers := min(loadWorkers, max(len(ts)/64, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ts); i += workers {
				if errs[i] = p.open(); errs[i] == nil {
					built[i], errs[i] = p.buildOwned(ctx, ts[i])
				}
				if errs[i] == nil {
					hs[i] = p.newHealth(ts[i].TrunkID)
				}
			}
		})
	}
	wg.Wait()
	return built, hs, errs
}

// loadWorkers bounds the goroutines LoadAll builds trunks on: more than
// the CPUs, since a build may wait on DNS.
var loadWorkers = 4 * runtime.GOMAXPROCS(0)

// loadBuilt applies a stored trunk t at start-up: it commits lv, built
// from t (with h as its health if it is new to the plane), or, when t cannot be applied (err from the build or from
// acquiring its listener), logs it and keeps it as degraded; the others
// run.
func (p *Plane) loadBuilt(t *trunk.Trunk, lv *live, h *health, err error) {
	var c *Change
	if err == nil {
		c, err = p.prepareBuilt(lv)
	}
	if c != nil {
		c.health = h
	}
	if err != nil {
		p.mu.Lock()
		p.state(t.TrunkID).degraded = err.Error()
		p.mu.Unlock()
		attrs := []any{"trunk_id", t.TrunkID, "err", err}
		if cause := errors.Unwrap(err); cause != nil {
			attrs = append(attrs, "cause", cause) // not in err's text, which clients see
		}
		p.log.Error("trunk not live on SIP", attrs...)
		return
	}
	c.Commit()
}

// status reports a trunk's SIP state.
func (p *Plane) status(id string) trunk.SIPStatus {
	st, _ := p.statusHealth(id)
	return st
}

// statusHealth reports a trunk's SIP state and returns its health (nil
// for a trunk never committed), under one lookup.
func (p *Plane) statusHealth(id string) (trunk.SIPStatus, *health) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return statusOf(p.trunks[id])
}

// statusOf is statusHealth of ts (nil: a trunk the plane does not run).
// Callers hold p.mu.
func statusOf(ts *trunkState) (trunk.SIPStatus, *health) {
	st := trunk.SIPStatus{State: trunk.SIPOff, RegistrationState: trunk.RegOff}
	if ts == nil {
		return st, nil
	}
	if ts.degraded != "" {
		st.State, st.Error = trunk.SIPDegraded, ts.degraded
	}
	if lv := ts.live; lv != nil {
		st.State = trunk.SIPActive
		st.RegistrationState, st.RegistrationError = regStatus(lv.reg)
		st.ChannelLimit = lv.t.ChannelLimit
	}
	if s := ts.slots; s != nil {
		st.ActiveCalls = uint32(max(0, s.n.Load()))
	}
	return st, ts.health
}

// Explain says which trunk a call from source to listener with Request-URI
// ruri would belong to, and why.
func (p *Plane) Explain(source, listener, ruri string) (trunk.Match, error) {
	src, err := netip.ParseAddr(source)
	if err != nil {
		return trunk.Match{}, trunk.FieldErrorf("source_ip", "%q is not an IP address", source)
	}
	key, err := normalizeListener(listener)
	if err != nil {
		return trunk.Match{}, trunk.FieldErrorf("listener", "%v", err)
	}
	key = p.listeners.bindOf(key)
	host, err := ruriHost(ruri)
	if err != nil {
		return trunk.Match{}, trunk.FieldErrorf("request_uri", "%v", err)
	}
	lv, m := p.table.Load().match(key, src.Unmap(), host)
	return p.explainAgent(m, lv, ruriUser(ruri)), nil
}

// Shutdown stops taking calls (new INVITEs get 503), waits for calls in
// flight to end or ctx to expire, then hangs up the rest and closes every
// listener.
func (p *Plane) Shutdown(ctx context.Context) error {
	p.closing.Store(true)
	p.stop()
	var err error
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for p.active.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("media: %d calls still up at shutdown were hung up", p.active.Load())
		case <-tick.C:
		}
	}
	p.calls.hangupAll()
	p.stopRegistrations(context.WithoutCancel(ctx))
	p.listeners.closeAll()
	return err
}
