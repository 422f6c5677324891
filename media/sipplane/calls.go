package sipplane

import (
	"context"
	"sync"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// leg is a call in flight as the registry sees it, in either direction:
// *inboundCall or *outboundCall. Each is ended by its own goroutine (serve,
// Dial and outboundCall.run), which also takes it out of the registry.
type leg interface {
	snapshot() trunk.Call
	hangup(ctx context.Context) // ends the call once; safe from any goroutine
}

// callKey keys the registry by direction too: an inbound INVITE may carry
// any Call-ID, and must not displace an outbound call that has it.
type callKey struct {
	dir string
	id  string
}

// calls is the registry of calls in flight, both directions.
type calls struct{ m sync.Map } // callKey -> leg

func (r *calls) add(dir string, id string, c leg) { r.m.Store(callKey{dir, id}, c) }

// remove takes c out, unless another call with its Call-ID replaced it.
func (r *calls) remove(dir string, id string, c leg) {
	r.m.CompareAndDelete(callKey{dir, id}, c)
}

// get finds a call by Call-ID, outbound first.
func (r *calls) get(id string) (leg, bool) {
	for _, dir := range []string{trunk.Outbound, trunk.Inbound} {
		if v, ok := r.m.Load(callKey{dir, id}); ok {
			return v.(leg), true
		}
	}
	return nil, false
}

// inbound finds an inbound call by Call-ID.
func (r *calls) inbound(id string) (*inboundCall, bool) {
	v, ok := r.m.Load(callKey{trunk.Inbound, id})
	if !ok {
		return nil, false
	}
	return v.(*inboundCall), true
}

// outboundSRTP finds an answered outbound call running SRTP, whose
// re-INVITEs the plane answers itself (diago would drop SRTP).
func (r *calls) outboundSRTP(id string) (*outboundCall, bool) {
	v, ok := r.m.Load(callKey{trunk.Outbound, id})
	if !ok {
		return nil, false
	}
	c := v.(*outboundCall)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c, !c.answeredAt.IsZero() && c.socks.encrypted()
}

// list describes the calls of one trunk, or of all when trunkID is "".
func (r *calls) list(trunkID string) []trunk.Call {
	var l []trunk.Call
	r.m.Range(func(_, v any) bool {
		if c := v.(leg).snapshot(); trunkID == "" || c.TrunkID == trunkID {
			l = append(l, c)
		}
		return true
	})
	return l
}

// hangupAll hangs up every call at once, waiting at most two seconds.
func (r *calls) hangupAll() {
	hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	r.m.Range(func(_, v any) bool {
		wg.Go(func() { v.(leg).hangup(hctx) })
		return true
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-hctx.Done():
	}
}
