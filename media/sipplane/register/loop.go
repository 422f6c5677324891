package register

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/emiago/sipgo/sip"
)

// maxRetryAfter caps a registrar's Retry-After.
const maxRetryAfter = time.Hour

// progress is what the loop carries from one REGISTER to the next.
type progress struct {
	expires  time.Duration // what we ask for; raised by 423
	failures int           // consecutive failures
}

func (r *Registration) run(ctx context.Context) {
	defer close(r.done)
	p := progress{expires: r.cfg.Expires}
	for {
		res, err := r.register(ctx, p.expires)
		if ctx.Err() != nil {
			return
		}
		wait := r.next(res, err, &p)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// next records one REGISTER's outcome and returns the wait before the next.
func (r *Registration) next(res *sip.Response, err error, p *progress) time.Duration {
	switch {
	case err != nil:
		return r.fail(p, err.Error(), 0)
	case res.IsSuccess():
		return r.succeed(res, p)
	case res.StatusCode == sip.StatusIntervalToBrief:
		if min := minExpires(res); min > p.expires {
			r.log.Info("registrar wants a longer expiry", "min_expires", min)
			p.expires = min
			return 0
		}
		return r.fail(p, statusText(res)+": bad Min-Expires", 0)
	default:
		return r.fail(p, statusText(res), retryAfter(res))
	}
}

func (r *Registration) succeed(res *sip.Response, p *progress) time.Duration {
	granted := grantedExpiry(res, r.cfg.Contact, p.expires)
	if granted <= 0 {
		return r.fail(p, statusText(res)+" but binding expires at once", 0)
	}
	p.failures = 0
	r.boundUntil = time.Now().Add(granted)
	r.setStatus(Registered, "", r.boundUntil)
	wait := refreshDelay(granted)
	r.log.Debug("registered", "granted", granted, "refresh_in", wait)
	return wait
}

func (r *Registration) fail(p *progress, text string, retryAfter time.Duration) time.Duration {
	p.failures++
	wait := backoff(p.failures, r.cfg.MinBackoff, r.cfg.MaxBackoff)
	if retryAfter > 0 {
		wait = min(retryAfter, maxRetryAfter)
	}
	r.setStatus(Failed, text, r.boundUntil)
	r.log.Warn("registration failed", "error", text, "retry_in", wait)
	return wait
}

// refreshDelay is when to refresh a binding granted for d: at a random
// 50-80% of d, no later than 5s before it lapses, and not sooner than 1s.
func refreshDelay(d time.Duration) time.Duration {
	wait := time.Duration(float64(d) * (0.5 + 0.3*rand.Float64()))
	wait = min(wait, d-5*time.Second)
	return max(wait, time.Second)
}

// backoff is the wait after the n-th consecutive failure: lo doubling per
// failure up to hi, less up to 25% jitter, but never below lo.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d -= time.Duration(rand.Int64N(int64(d)/4 + 1))
	return max(d, lo)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
