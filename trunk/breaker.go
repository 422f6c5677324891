package trunk

import (
	"fmt"
	"sync"
	"time"
)

// BreakerState is the state of a trunk's circuit breaker.
type BreakerState string

// Circuit breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // calls go through
	BreakerOpen     BreakerState = "open"      // calls are refused until the cooldown ends
	BreakerHalfOpen BreakerState = "half-open" // one trial (a call or a probe) decides
)

// Tripped reports whether s is open or half-open. The zero state ("", no
// breaker) is not tripped.
func (s BreakerState) Tripped() bool { return s == BreakerOpen || s == BreakerHalfOpen }

// breakerBuckets is how many buckets the fault-ratio window has.
const breakerBuckets = 10

// BreakerConfig sets when a trunk's circuit breaker opens and how long it
// stays open.
type BreakerConfig struct {
	ConsecutiveFaults int           // carrier faults in a row that open it
	FaultRatio        float64       // share of faults in Window that opens it, in (0, 1]
	MinAttempts       int           // calls Window must hold before FaultRatio applies
	Window            time.Duration // length of the fault-ratio window
	Cooldown          time.Duration // first open period; doubled after each failed trial
	MaxCooldown       time.Duration // the longest open period the doubling reaches
}

// DefaultBreakerConfig returns the defaults: open after 5 consecutive
// faults, or when half of at least 20 calls in 60 s were faults; stay open
// 30 s, doubled after each failed trial up to 5 min.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		ConsecutiveFaults: 5,
		FaultRatio:        0.5,
		MinAttempts:       20,
		Window:            time.Minute,
		Cooldown:          30 * time.Second,
		MaxCooldown:       5 * time.Minute,
	}
}

// Validate returns an EINVALID *Error naming the first setting that makes
// no sense, or nil.
func (c BreakerConfig) Validate() error {
	switch {
	case c.ConsecutiveFaults < 1:
		return FieldErrorf("consecutive_faults", "is %d; at least 1 is needed", c.ConsecutiveFaults)
	case !(c.FaultRatio > 0 && c.FaultRatio <= 1):
		return FieldErrorf("fault_ratio", "is %v; it must be in (0, 1]", c.FaultRatio)
	case c.MinAttempts < 1:
		return FieldErrorf("min_attempts", "is %d; at least 1 is needed", c.MinAttempts)
	case c.Window <= 0:
		return FieldErrorf("window", "is %v; it must be positive", c.Window)
	case c.Cooldown <= 0:
		return FieldErrorf("cooldown", "is %v; it must be positive", c.Cooldown)
	case c.MaxCooldown < c.Cooldown:
		return FieldErrorf("max_cooldown", "is %v, shorter than the cooldown %v", c.MaxCooldown, c.Cooldown)
	}
	return nil
}

// Outcome is what a call's result says about the carrier's health.
type Outcome int

// Outcomes of a call, as FaultOf classifies them.
const (
	Success Outcome = iota // answered
	Neutral                // the callee's answer (busy, not found, declined…): the carrier works
	Fault                  // the carrier failed: no response, 408, 5xx server errors
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Neutral:
		return "neutral"
	case Fault:
		return "fault"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// FaultOf classifies the final response code of an outbound INVITE: 0 (no
// response: timeout or transport error), 408, 500, 502, 503 and 504 are
// carrier faults, 2xx is a success, and anything else (486, 487, 480, 404,
// 603…) is the callee's answer, neutral to the carrier's health.
func FaultOf(code int) Outcome {
	switch {
	case code == 0, code == 408, code == 500, code == 502, code == 503, code == 504:
		return Fault
	case code >= 200 && code < 300:
		return Success
	}
	return Neutral
}

// BreakerOpenError is the error of Allow while the breaker refuses calls.
type BreakerOpenError struct {
	// Until is when the open period ends. It is zero while half-open: a
	// trial is out and its result decides.
	Until time.Time
}

func (e *BreakerOpenError) Error() string {
	if e.Until.IsZero() {
		return "circuit half-open: a trial is in progress"
	}
	return "circuit open until " + e.Until.UTC().Format(time.RFC3339)
}

// Who holds the trial of a half-open breaker.
const (
	trialCall  = 1 // Allow: Record decides
	trialProbe = 2 // TryProbe: RecordProbe decides
)

// tally is one bucket of the fault-ratio window.
type tally struct{ attempts, faults int }

type transition struct{ from, to BreakerState }

// Breaker is one trunk's circuit breaker. It is safe for concurrent use.
//
// Closed, it counts call results: it opens after ConsecutiveFaults faults
// in a row, or when at least MinAttempts calls in the last Window hold a
// share of faults of FaultRatio or more. Open, it refuses calls until its
// cooldown ends; then the first Allow (a call) or TryProbe (an OPTIONS
// probe) takes it half-open as the single trial. The trial's success
// closes it; its failure opens it again with the cooldown doubled, up to
// MaxCooldown. Closing resets the cooldown and forgets past results.
type Breaker struct {
	cfg      BreakerConfig
	onChange func(from, to BreakerState)

	mu       sync.Mutex
	state    BreakerState
	trial    int           // in half-open: trialCall or trialProbe
	faults   int           // consecutive faults while closed
	cooldown time.Duration // the next failed trial doubles it
	until    time.Time     // end of the open period
	window   *window[tally]

	pending   []transition // transitions onChange has not been given yet
	notifying bool         // a goroutine is giving them
}

// NewBreaker returns a closed breaker. onChange, if not nil, is called
// with every state transition, outside the breaker's lock: the calls are
// never concurrent and come in the order of the transitions, and onChange
// may call the breaker's methods. NewBreaker panics if c is not valid:
// check it with Validate first.
func NewBreaker(c BreakerConfig, onChange func(from, to BreakerState)) *Breaker {
	if err := c.Validate(); err != nil {
		panic("trunk: NewBreaker: " + err.Error())
	}
	return &Breaker{
		cfg:      c,
		onChange: onChange,
		state:    BreakerClosed,
		cooldown: c.Cooldown,
		window:   newWindow[tally](c.Window, breakerBuckets),
	}
}

// Allow asks whether a call may go out. Closed, it may. Open, it may not
// (a *BreakerOpenError) until the cooldown ends; the first call after that
// takes the breaker half-open and goes out as its trial (trial is true).
// Half-open, no other call may go out until the trial is recorded.
//
// Every call Allow lets through must have its result given to Record.
func (b *Breaker) Allow() (trial bool, err error) {
	defer b.notify()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if time.Now().Before(b.until) {
			return false, &BreakerOpenError{Until: b.until}
		}
		b.startTrial(trialCall)
		return true, nil
	}
	if b.trial == 0 { // a trial was released unsent
		b.trial = trialCall
		return true, nil
	}
	return false, &BreakerOpenError{}
}

// Release hands back a call Allow let through that was never sent (no
// port, no dialog): if it was the half-open trial, the next call or probe
// takes the trial instead. It records nothing.
func (b *Breaker) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen && b.trial == trialCall {
		b.trial = 0
	}
}

// Record takes the result of a call that Allow let through. Closed, it
// counts towards the consecutive faults and the fault ratio (Success and
// Neutral end a run of faults). Half-open with a call as the trial, it is
// the trial's result: Success or Neutral closes the breaker, Fault opens
// it again for twice the last cooldown, at most MaxCooldown. Otherwise it
// is ignored: results of calls that went out before the breaker opened say
// nothing new.
func (b *Breaker) Record(o Outcome) {
	defer b.notify()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case b.state == BreakerClosed:
		b.count(o, now)
	case b.state == BreakerHalfOpen && b.trial == trialCall:
		b.settle(o != Fault, now)
	}
}

// OpenFor opens the breaker at once for d, whatever the counts, as a 503
// with Retry-After asks. An open period that already ends later is kept.
// A half-open trial is abandoned: its result will be ignored. A d of zero
// or less does nothing.
func (b *Breaker) OpenFor(d time.Duration) {
	if d <= 0 {
		return
	}
	defer b.notify()
	b.mu.Lock()
	defer b.mu.Unlock()
	until := time.Now().Add(d)
	if b.state == BreakerOpen && b.until.After(until) {
		return
	}
	b.until = until
	b.setState(BreakerOpen)
}

// TryProbe reports whether an OPTIONS probe should test the carrier: true
// when the breaker is open and its cooldown has ended. It then goes
// half-open with the probe as its trial, refusing calls until the probe's
// result is given to RecordProbe.
func (b *Breaker) TryProbe() bool {
	defer b.notify()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen && b.trial == 0 {
		b.trial = trialProbe
		return true
	}
	if b.state != BreakerOpen || time.Now().Before(b.until) {
		return false
	}
	b.startTrial(trialProbe)
	return true
}

// RecordProbe takes the result of an OPTIONS probe: ok when the carrier
// sent any final response. Half-open with a probe as the trial, ok closes
// the breaker and !ok opens it again for twice the last cooldown (at most
// MaxCooldown). Closed, a failed probe counts towards ConsecutiveFaults
// (not the fault ratio) and an ok one ends a run of faults. Otherwise it
// is ignored.
func (b *Breaker) RecordProbe(ok bool) {
	defer b.notify()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case b.state == BreakerClosed && ok:
		b.faults = 0
	case b.state == BreakerClosed:
		b.faults++
		if b.faults >= b.cfg.ConsecutiveFaults {
			b.open(now)
		}
	case b.state == BreakerHalfOpen && b.trial == trialProbe:
		b.settle(ok, now)
	}
}

// State returns BreakerClosed, BreakerOpen or BreakerHalfOpen. An open
// breaker whose cooldown has ended stays open until a call or probe comes.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Tripped reports whether the breaker is not closed (open or half-open).
func (b *Breaker) Tripped() bool {
	return b.State().Tripped()
}

// count adds a closed breaker's call result and opens it when a threshold
// is reached.
func (b *Breaker) count(o Outcome, now time.Time) {
	t := b.window.at(now)
	t.attempts++
	if o != Fault {
		b.faults = 0
		return
	}
	t.faults++
	b.faults++
	if b.faults >= b.cfg.ConsecutiveFaults || b.ratioReached(now) {
		b.open(now)
	}
}

func (b *Breaker) ratioReached(now time.Time) bool {
	var sum tally
	b.window.each(now, func(t *tally) {
		sum.attempts += t.attempts
		sum.faults += t.faults
	})
	return sum.attempts >= b.cfg.MinAttempts &&
		float64(sum.faults) >= b.cfg.FaultRatio*float64(sum.attempts)
}

// settle ends the trial: ok closes the breaker, !ok re-opens it with the
// cooldown doubled.
func (b *Breaker) settle(ok bool, now time.Time) {
	if ok {
		b.close()
		return
	}
	b.cooldown = min(2*b.cooldown, b.cfg.MaxCooldown)
	b.open(now)
}

func (b *Breaker) open(now time.Time) {
	b.until = now.Add(b.cooldown)
	b.setState(BreakerOpen)
}

func (b *Breaker) close() {
	b.faults = 0
	b.cooldown = b.cfg.Cooldown
	b.window.reset()
	b.setState(BreakerClosed)
}

func (b *Breaker) startTrial(kind int) {
	b.trial = kind
	b.setState(BreakerHalfOpen)
}

// setState moves to state and queues the transition for onChange. The
// caller holds b.mu.
func (b *Breaker) setState(state BreakerState) {
	if state == b.state {
		return
	}
	if b.onChange != nil {
		b.pending = append(b.pending, transition{b.state, state})
	}
	b.state = state
}

// notify gives the queued transitions to onChange, in order, outside the
// lock. If another goroutine is already giving them, it gives these too.
func (b *Breaker) notify() {
	b.mu.Lock()
	if b.notifying || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.notifying = true
	b.mu.Unlock()
	done := false
	defer func() {
		if !done { // onChange panicked: let the next transition notify
			b.mu.Lock()
			b.notifying = false
			b.mu.Unlock()
		}
	}()
	for {
		t, ok := b.next()
		if !ok {
			done = true
			return
		}
		b.onChange(t.from, t.to)
	}
}

// next takes the oldest queued transition; when there is none, it ends the
// notifying turn.
func (b *Breaker) next() (transition, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		b.pending = nil
		b.notifying = false
		return transition{}, false
	}
	t := b.pending[0]
	b.pending = b.pending[1:]
	return t, true
}
