package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// clusterFlags binds the flags of --store etcd://.
func clusterFlags(fs *flag.FlagSet, cfg *Config) {
	c := &cfg.Cluster
	fs.StringVar(&cfg.Store, "store", "", "where trunks are kept: bolt://`URL-PATH` (default DATA/trunkd.db) or etcd://host:port[,host:port...] to share them with other nodes")
	fs.StringVar(&c.Prefix, "etcd-prefix", etcd.DefaultPrefix, "key `prefix` of this cluster's data in etcd")
	fs.StringVar(&c.CA, "etcd-ca", "", "CA `file` that signs the etcd members' certificates (TLS to etcd when set)")
	fs.StringVar(&c.Cert, "etcd-cert", "", "client certificate `file` for etcd")
	fs.StringVar(&c.Key, "etcd-key", "", "client key `file` for etcd")
	fs.StringVar(&c.User, "etcd-user", "", "etcd `user` (with --etcd-password-file)")
	fs.StringVar(&c.PasswordFile, "etcd-password-file", "", "`file` holding the etcd user's password")
	fs.StringVar(&c.Node, "node-name", "", "this node's name in the cluster, unique among live nodes (default: the host name)")
	fs.DurationVar(&c.NodeTTL, "node-ttl", 10*time.Second, "lease of the node and of the registrations it owns: how soon others take over when it dies")
	fs.DurationVar(&c.Settle, "node-settle", 30*time.Second, "how long a joining node waits before registrations move to it")
	fs.StringVar(&c.Ack, "ack", "node", "when a write is acknowledged: node (stored on a majority of etcd, live on this node) or cluster (also live on every other live node, waiting at most -ack-timeout)")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", 2*time.Second, "the longest -ack cluster waits for other nodes")
	fs.DurationVar(&c.StatsInterval, "stats-interval", 15*time.Second, "how often a node publishes its ASR/ACD/MOS/PDD counts for the cluster-wide figures")
	fs.DurationVar(&c.Resync, "resync", 10*time.Minute, "how often a node compares everything it runs with etcd (heals lost watch events)")
	fs.DurationVar(&c.StartupTimeout, "etcd-startup-timeout", 30*time.Second, "how long start-up waits for etcd and the first load of every trunk")
	fs.DurationVar(&c.RequestTimeout, "etcd-timeout", 5*time.Second, "timeout of one etcd request")
	fs.Var(&c.ipMapFlag, "ip-map", "`STORED=LOCAL`: run trunks whose internal/external SIP or RTP address is STORED on LOCAL on this node (0.0.0.0 also matches an empty address); repeatable")
}

// parseStore checks --store and the cluster flags.
func (c *Config) parseStore() error {
	switch {
	case c.Store == "":
		c.Store = "bolt://" + filepath.Join(c.DataDir, "trunkd.db")
	case strings.HasPrefix(c.Store, "bolt://"):
		if strings.TrimPrefix(c.Store, "bolt://") == "" {
			return errors.New("-store bolt://: no path")
		}
	case strings.HasPrefix(c.Store, "etcd://"):
		eps, err := parseEndpoints(c.Store)
		if err != nil {
			return err
		}
		c.Cluster.Endpoints = eps
	default:
		return fmt.Errorf("-store %q: want bolt://PATH or etcd://host:port[,host:port...]", c.Store)
	}
	cl := &c.Cluster
	if cl.Node == "" {
		cl.Node, _ = os.Hostname()
	}
	if cl.Ack != "node" && cl.Ack != "cluster" {
		return fmt.Errorf("-ack %q: want node or cluster", cl.Ack)
	}
	if cl.StatsInterval <= 0 {
		return errors.New("-stats-interval: must be positive")
	}
	if cl.NodeTTL < 2*time.Second {
		return errors.New("-node-ttl: must be at least 2s")
	}
	cl.IPMap = map[string]string{}
	for _, kv := range cl.ipMapFlag {
		from, to, ok := strings.Cut(kv, "=")
		_, e1 := netip.ParseAddr(from)
		_, e2 := netip.ParseAddr(to)
		if !ok || e1 != nil || e2 != nil {
			return fmt.Errorf("-ip-map %q: want STORED=LOCAL, two IP addresses", kv)
		}
		cl.IPMap[from] = to
	}
	if (cl.Cert == "") != (cl.Key == "") {
		return errors.New("-etcd-cert and -etcd-key go together")
	}
	return nil
}

// parseEndpoints reads etcd://h1:p1,h2:p2.
func parseEndpoints(u string) ([]string, error) {
	var eps []string
	for ep := range strings.SplitSeq(strings.TrimSuffix(strings.TrimPrefix(u, "etcd://"), "/"), ",") {
		ap, err := netip.ParseAddrPort(ep)
		if err != nil && !strings.Contains(ep, ":") {
			return nil, fmt.Errorf("-store %q: endpoint %q: want host:port", u, ep)
		}
		if err == nil {
			ep = ap.String()
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 || eps[0] == "" {
		return nil, fmt.Errorf("-store %q: no endpoints", u)
	}
	return eps, nil
}

// etcdConfig is the etcd store's configuration from the flags.
func (c *ClusterConfig) etcdConfig() (etcd.Config, error) {
	ec := etcd.Config{Endpoints: c.Endpoints, Prefix: c.Prefix, Username: c.User, Timeout: c.RequestTimeout}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return ec, fmt.Errorf("-etcd-password-file: %w", err)
		}
		ec.Password = strings.TrimSpace(string(b))
	}
	if c.CA == "" && c.Cert == "" {
		return ec, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return ec, fmt.Errorf("-etcd-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return ec, fmt.Errorf("-etcd-ca %s: no PEM certificate", c.CA)
		}
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return ec, fmt.Errorf("-etcd-cert/-etcd-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	ec.TLS = tc
	return ec, nil
}

// nodePlane is the SIP plane of a cluster node as control.Plane: it runs
// each trunk with this node's addresses (--ip-map) and tells the node's
// membership which trunks need a registration owner.
type nodePlane struct {
	sipPlane
	ipMap   map[string]string
	members *etcd.Members
}

// local is t as it runs on this node. The stored t is not changed.
func (p nodePlane) local(t *trunk.Trunk) *trunk.Trunk {
	if len(p.ipMap) == 0 {
		return t
	}
	c := t.Clone()
	for _, f := range []*string{&c.InternalSIPIP, &c.ExternalSIPIP, &c.InternalRTPIP, &c.ExternalRTPIP} {
		from := *f
		if from == "" && f != &c.ExternalSIPIP && f != &c.ExternalRTPIP {
			from = "0.0.0.0"
		}
		if to, ok := p.ipMap[from]; ok {
			*f = to
		}
	}
	return c
}

func (p nodePlane) Prepare(ctx context.Context, t *trunk.Trunk) (control.Change, error) {
	c, err := p.sipPlane.Prepare(ctx, p.local(t))
	if err != nil {
		return nil, err
	}
	return ownedChange{c, p.members, t.TrunkID, t.RequireRegistration}, nil
}

func (p nodePlane) LoadAll(ctx context.Context, ts []*trunk.Trunk) {
	local := make([]*trunk.Trunk, len(ts))
	for i, t := range ts {
		local[i] = p.local(t)
	}
	p.sipPlane.LoadAll(ctx, local)
	for _, t := range ts {
		p.members.Want(t.TrunkID, t.RequireRegistration)
	}
}

// TrunkStatus is this node's status of trunk id with the quality figures
// of the whole cluster: this node's live counts plus what the other nodes
// published last (at most -stats-interval old).
func (p nodePlane) TrunkStatus(id string) trunk.Status {
	st := p.sipPlane.TrunkStatus(id)
	st.Quality = p.clusterQuality(id)
	return st
}

// TrunkStatuses is TrunkStatus of each id, the node's statuses read
// together.
func (p nodePlane) TrunkStatuses(ids []string, out []trunk.Status) {
	p.sipPlane.TrunkStatuses(ids, out)
	for i, id := range ids {
		out[i].Quality = p.clusterQuality(id)
	}
}

// clusterQuality is trunk id's quality figures over the whole cluster.
func (p nodePlane) clusterQuality(id string) trunk.Quality {
	return p.members.ClusterQuality(id, p.Plane.QualitySums(id)).Quality()
}

func (p nodePlane) Remove(id string) {
	p.sipPlane.Remove(id)
	p.members.Want(id, false)
}

// ownedChange tells the membership, on Commit, whether the trunk needs
// a registration owner.
type ownedChange struct {
	control.Change
	members  *etcd.Members
	id       string
	register bool
}

func (c ownedChange) Commit() {
	c.Change.Commit()
	c.members.Want(c.id, c.register)
}

// ackStore is the etcd store of a node started with -ack cluster: an add
// or update returns once every other live node runs its revision, or
// after the timeout (the write stands; the laggards are logged).
type ackStore struct {
	*etcd.Store
	members *etcd.Members
	timeout time.Duration
	log     *slog.Logger
}

func (s ackStore) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	if err := s.Store.AddTrunk(ctx, t); err != nil {
		return err
	}
	s.wait(ctx, t)
	return nil
}

func (s ackStore) UpdateTrunk(ctx context.Context, t *trunk.Trunk, ifRevision uint64) error {
	if err := s.Store.UpdateTrunk(ctx, t, ifRevision); err != nil {
		return err
	}
	s.wait(ctx, t)
	return nil
}

func (s ackStore) wait(ctx context.Context, t *trunk.Trunk) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if lag := s.members.WaitApplied(ctx, t.Meta.Revision); len(lag) > 0 {
		s.log.Warn("-ack cluster: nodes not live with the write when acknowledged", "trunk_id", t.TrunkID, "revision", t.Meta.Revision, "laggards", lag)
	}
}

// sipConfigForCluster hooks the SIP plane to the node's membership: only
// the owner registers a trunk, and each node admits its share of a
// trunk's channel_limit. members is read when the hooks run.
func sipConfigForCluster(cfg *sipplane.Config, members func() *etcd.Members) {
	cfg.Registers = func(id string) bool {
		m := members()
		return m != nil && m.Owns(id)
	}
	cfg.ChannelShare = func(id string, limit uint32) uint32 {
		m := members()
		if m == nil {
			return limit
		}
		return m.Share(id, limit)
	}
}

// startCluster opens the etcd store, joins the cluster and loads every
// trunk before the node serves: it returns once the first snapshot runs
// on the SIP plane.
func (d *Daemon) startCluster(key []byte) error {
	cl := &d.cfg.Cluster
	ec, err := cl.etcdConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cl.StartupTimeout)
	defer cancel()
	st, err := etcd.Open(ctx, ec, key)
	if err != nil {
		return err
	}
	d.etcd = st
	d.members, err = st.Join(ctx, etcd.MembersConfig{Node: cl.Node, Addr: d.cfg.Listen, TTL: cl.NodeTTL, Settle: cl.Settle,
		Logger: d.log.With("cluster", cl.Node), OnOwn: func(id string, own bool) { d.sip.SetRegistering(id, own) }})
	if err != nil {
		return err
	}
	d.membersP.Store(d.members)
	d.members.PublishStats(cl.StatsInterval, d.sip.AllQualitySums)
	var store control.Store = st
	if cl.Ack == "cluster" {
		store = ackStore{st, d.members, cl.AckTimeout, d.log}
	}
	d.svc = control.New(store, nodePlane{sipPlane{d.sip}, cl.IPMap, d.members})
	loaded := make(chan int, 1)
	rctx, stop := context.WithCancel(context.Background())
	d.stopReconcile = stop
	d.reconciled = make(chan struct{})
	// Every node publishes what it applied (for -ack cluster on any node).
	d.members.PublishApplied(50*time.Millisecond, func() uint64 { r, _ := d.svc.AppliedRevision(); return r })
	go func() {
		defer close(d.reconciled)
		d.svc.Reconcile(rctx, st, control.ReconcileOptions{Logger: d.log.With("reconcile", cl.Node), Resync: cl.Resync,
			Loaded: func(n int) { loaded <- n }, Applied: d.met.clu.applied})
	}()
	select {
	case n := <-loaded:
		d.log.Info("cluster node live", "node", cl.Node, "trunks", n, "nodes", d.members.Nodes())
		return nil
	case <-ctx.Done():
		return fmt.Errorf("etcd: the trunks were not loaded within %v (-etcd-startup-timeout)", cl.StartupTimeout)
	}
}

// stopCluster un-registers what this node owns, leaves the cluster (its
// registrations move at once) and closes the store.
func (d *Daemon) stopCluster() error {
	var errs []error
	if d.stopReconcile != nil {
		d.stopReconcile()
		<-d.reconciled
	}
	if d.members != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, d.members.Leave(ctx))
		cancel()
		d.members = nil
	}
	if d.etcd != nil {
		errs = append(errs, d.etcd.Close())
		d.etcd = nil
	}
	return errors.Join(errs...)
}
