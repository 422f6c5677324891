package etcd

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PublishApplied writes the newest store revision this node's SIP plane
// runs (applied) to applied/<node> on the node's lease, at most once per
// every, when it changed: what WaitApplied on other nodes waits for.
func (m *Members) PublishApplied(every time.Duration, applied func() uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-m.done
		cancel()
	}()
	go func() {
		var last uint64
		for ctx.Err() == nil {
			if rev := applied(); rev > last {
				m.mu.Lock()
				lease, healthy := m.lease, m.healthy
				m.mu.Unlock()
				if healthy {
					wctx, cancel := m.s.ctx(ctx)
					_, err := m.s.cli.Put(wctx, m.s.prefix+"applied/"+m.cfg.Node, strconv.FormatUint(rev, 10), clientv3.WithLease(lease))
					cancel()
					if err == nil {
						last = rev
					}
				}
			}
			sleep(ctx, every)
		}
	}()
}

// applyApplied records one applied/ key (v nil: deleted); callers hold mu.
func (m *Members) applyApplied(key string, v []byte) {
	node := strings.TrimPrefix(key, m.s.prefix+"applied/")
	if m.applied == nil {
		m.applied = map[string]uint64{}
	}
	if v == nil {
		delete(m.applied, node)
		return
	}
	if rev, err := strconv.ParseUint(string(v), 10, 64); err == nil {
		m.applied[node] = rev
	}
}

// WaitApplied waits until every other live node has applied revision
// rev, or ctx ends; it returns the nodes that had not (none: all live).
func (m *Members) WaitApplied(ctx context.Context, rev uint64) []string {
	for {
		lag := m.laggards(rev)
		if len(lag) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return lag
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (m *Members) laggards(rev uint64) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lag []string
	for n := range m.nodes {
		if n != m.cfg.Node && m.applied[n] < rev {
			lag = append(lag, n)
		}
	}
	slices.Sort(lag)
	return lag
}
