package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trunkd/trunkd/trunk"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// statsChunk is how many trunks one stats key holds (about 200 bytes
// each, well under etcd's request limit).
const statsChunk = 2000

// PublishStats writes this node's quality counts (fn) to
// stats/<node>/<chunk> on the node's lease every period, until Leave, so
// that every node can sum the cluster's figures. A node's counts vanish
// with its lease. It costs one write per chunk per period, none per call.
func (m *Members) PublishStats(every time.Duration, fn func() map[string]trunk.QualitySums) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-m.done
		cancel()
	}()
	go func() {
		chunks := 0
		for ctx.Err() == nil {
			chunks = m.publish(ctx, fn(), chunks)
			sleep(ctx, every)
		}
	}()
}

func (m *Members) statsKey(node string, chunk int) string {
	return fmt.Sprintf("%sstats/%s/%d", m.s.prefix, node, chunk)
}

// publish writes the counts in chunks and deletes the chunks of the
// previous round no longer used; it returns how many it wrote.
func (m *Members) publish(ctx context.Context, all map[string]trunk.QualitySums, before int) int {
	ids := slices.Sorted(maps.Keys(all))
	m.mu.Lock()
	lease, healthy := m.lease, m.healthy
	m.mu.Unlock()
	if !healthy {
		return before
	}
	n := 0
	for start := 0; start < len(ids) || (n == 0 && before > 0); start += statsChunk {
		part := map[string]trunk.QualitySums{}
		for _, id := range ids[start:min(start+statsChunk, len(ids))] {
			part[id] = all[id]
		}
		v, _ := json.Marshal(part)
		wctx, cancel := m.s.ctx(ctx)
		_, err := m.s.cli.Put(wctx, m.statsKey(m.cfg.Node, n), string(v), clientv3.WithLease(lease))
		cancel()
		if err != nil {
			m.log.Debug("publish stats", "err", err)
			return before
		}
		n++
	}
	for c := n; c < before; c++ {
		wctx, cancel := m.s.ctx(ctx)
		m.s.cli.Delete(wctx, m.statsKey(m.cfg.Node, c))
		cancel()
	}
	return n
}

// applyStats records one stats key (v nil: deleted); callers hold mu.
func (m *Members) applyStats(key string, v []byte) {
	rest := strings.TrimPrefix(key, m.s.prefix+"stats/")
	node, chunk, ok := strings.Cut(rest, "/")
	if !ok {
		return
	}
	if m.stats == nil {
		m.stats = map[string]map[string]map[string]trunk.QualitySums{}
	}
	if v == nil {
		delete(m.stats[node], chunk)
		return
	}
	var part map[string]trunk.QualitySums
	if json.Unmarshal(v, &part) != nil {
		return
	}
	if m.stats[node] == nil {
		m.stats[node] = map[string]map[string]trunk.QualitySums{}
	}
	m.stats[node][chunk] = part
}

// ClusterQuality is local (this node's live counts of trunk id) plus the
// counts the other live nodes published last.
func (m *Members) ClusterQuality(id string, local trunk.QualitySums) trunk.QualitySums {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := local
	for node, chunks := range m.stats {
		if node == m.cfg.Node {
			continue
		}
		for _, part := range chunks {
			if s, ok := part[id]; ok {
				sum = sum.Add(s)
			}
		}
	}
	return sum
}
