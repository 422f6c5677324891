package trunk

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// recorder keeps the transitions a breaker reports, as "from>to".
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) onChange(from, to BreakerState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(from+">"+to))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

func newTestBreaker(t *testing.T, c BreakerConfig) (*Breaker, *recorder) {
	t.Helper()
	r := &recorder{}
	return NewBreaker(c, r.onChange), r
}

func wantState(t *testing.T, b *Breaker, want BreakerState) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %s; want %s", got, want)
	}
	if got := b.Tripped(); got != (want != BreakerClosed) {
		t.Fatalf("Tripped() = %v in state %s", got, want)
	}
}

// wantOpenUntil checks that Allow refuses with an open period ending at until.
func wantOpenUntil(t *testing.T, b *Breaker, until time.Time) {
	t.Helper()
	trial, err := b.Allow()
	var open *BreakerOpenError
	if !errors.As(err, &open) || trial {
		t.Fatalf("Allow() = %v, %v; want a *BreakerOpenError", trial, err)
	}
	if !open.Until.Equal(until) {
		t.Fatalf("Allow() error Until = %v; want %v", open.Until, until)
	}
}

// wantAllowed checks that Allow lets a call through, as a trial or not.
func wantAllowed(t *testing.T, b *Breaker, wantTrial bool) {
	t.Helper()
	if trial, err := b.Allow(); err != nil || trial != wantTrial {
		t.Fatalf("Allow() = %v, %v; want %v, nil", trial, err, wantTrial)
	}
}

func record(b *Breaker, o Outcome, n int) {
	for range n {
		b.Record(o)
	}
}

func TestDefaultBreakerConfig(t *testing.T) {
	want := BreakerConfig{
		ConsecutiveFaults: 5, FaultRatio: 0.5, MinAttempts: 20,
		Window: 60 * time.Second, Cooldown: 30 * time.Second, MaxCooldown: 5 * time.Minute,
	}
	if got := DefaultBreakerConfig(); got != want {
		t.Errorf("DefaultBreakerConfig() = %+v; want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("DefaultBreakerConfig().Validate() = %v; want nil", err)
	}
}

func TestBreakerConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*BreakerConfig)
		field string // "" = valid
	}{
		{"defaults", func(*BreakerConfig) {}, ""},
		{"one fault", func(c *BreakerConfig) { c.ConsecutiveFaults = 1 }, ""},
		{"zero faults", func(c *BreakerConfig) { c.ConsecutiveFaults = 0 }, "consecutive_faults"},
		{"negative faults", func(c *BreakerConfig) { c.ConsecutiveFaults = -1 }, "consecutive_faults"},
		{"ratio 1", func(c *BreakerConfig) { c.FaultRatio = 1 }, ""},
		{"ratio 0", func(c *BreakerConfig) { c.FaultRatio = 0 }, "fault_ratio"},
		{"ratio over 1", func(c *BreakerConfig) { c.FaultRatio = 1.01 }, "fault_ratio"},
		{"ratio negative", func(c *BreakerConfig) { c.FaultRatio = -0.5 }, "fault_ratio"},
		{"ratio NaN", func(c *BreakerConfig) { c.FaultRatio = math.NaN() }, "fault_ratio"},
		{"zero min attempts", func(c *BreakerConfig) { c.MinAttempts = 0 }, "min_attempts"},
		{"zero window", func(c *BreakerConfig) { c.Window = 0 }, "window"},
		{"negative window", func(c *BreakerConfig) { c.Window = -time.Second }, "window"},
		{"zero cooldown", func(c *BreakerConfig) { c.Cooldown = 0 }, "cooldown"},
		{"max equals cooldown", func(c *BreakerConfig) { c.MaxCooldown = c.Cooldown }, ""},
		{"cooldown over max", func(c *BreakerConfig) { c.Cooldown = 10 * time.Minute }, "max_cooldown"},
		{"zero config", func(c *BreakerConfig) { *c = BreakerConfig{} }, "consecutive_faults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultBreakerConfig()
			tt.edit(&c)
			wantFieldError(t, c.Validate(), tt.field)
		})
	}
}

func TestNewBreakerPanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("NewBreaker(BreakerConfig{}) did not panic")
		}
	}()
	NewBreaker(BreakerConfig{}, nil)
}

func TestFaultOf(t *testing.T) {
	tests := []struct {
		code int
		want Outcome
	}{
		{0, Fault}, {408, Fault}, {500, Fault}, {502, Fault}, {503, Fault}, {504, Fault},
		{200, Success}, {202, Success}, {299, Success},
		{180, Neutral}, {300, Neutral}, {401, Neutral}, {403, Neutral}, {404, Neutral},
		{407, Neutral}, {480, Neutral}, {486, Neutral}, {487, Neutral}, {488, Neutral},
		{501, Neutral}, {505, Neutral}, {513, Neutral}, {600, Neutral}, {603, Neutral}, {604, Neutral},
	}
	for _, tt := range tests {
		if got := FaultOf(tt.code); got != tt.want {
			t.Errorf("FaultOf(%d) = %v; want %v", tt.code, got, tt.want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	got := fmt.Sprint(Success, Neutral, Fault, Outcome(7))
	if want := "success neutral fault Outcome(7)"; got != want {
		t.Errorf("Outcome strings = %q; want %q", got, want)
	}
}

func TestBreakerTripsOnConsecutiveFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, r := newTestBreaker(t, DefaultBreakerConfig())
		wantAllowed(t, b, false)
		record(b, Fault, 4)
		b.Record(Success) // ends the run
		record(b, Fault, 4)
		b.Record(Neutral) // so does a callee's answer
		record(b, Fault, 4)
		wantState(t, b, BreakerClosed)
		b.Record(Fault)
		wantState(t, b, BreakerOpen)
		wantOpenUntil(t, b, time.Now().Add(30*time.Second))
		if got := r.take(); !slices.Equal(got, []string{"closed>open"}) {
			t.Errorf("transitions = %q; want [closed>open]", got)
		}
	})
}

func TestBreakerNeutralNeverTrips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, DefaultBreakerConfig())
		for _, code := range []int{486, 487, 480, 404, 603, 488, 403} {
			for range 100 {
				wantAllowed(t, b, false)
				b.Record(FaultOf(code))
			}
			time.Sleep(time.Second)
		}
		wantState(t, b, BreakerClosed)
	})
}

// ratioConfig trips on the fault ratio only.
func ratioConfig() BreakerConfig {
	c := DefaultBreakerConfig()
	c.ConsecutiveFaults = 1000
	return c
}

func TestBreakerTripsOnRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, ratioConfig())
		for range 9 {
			b.Record(Success)
			b.Record(Fault)
		}
		b.Record(Neutral)
		wantState(t, b, BreakerClosed) // 9 faults in 19: under MinAttempts
		b.Record(Fault)
		wantState(t, b, BreakerOpen) // 10 in 20: the ratio
	})
}

func TestBreakerUnderRatioStaysClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, ratioConfig())
		record(b, Success, 11)
		record(b, Fault, 9)
		wantState(t, b, BreakerClosed) // 9 in 20
		record(b, Success, 100)
		record(b, Fault, 99)
		wantState(t, b, BreakerClosed) // 108 in 219
	})
}

// TestBreakerRatioWindow: the 60 s window is 10 buckets of 6 s; calls
// made at the start of a bucket count for exactly 60 s.
func TestBreakerRatioWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old, _ := newTestBreaker(t, ratioConfig())
		recent, _ := newTestBreaker(t, ratioConfig())
		for _, b := range []*Breaker{old, recent} {
			record(b, Neutral, 9)
			record(b, Fault, 10)
		}
		time.Sleep(60*time.Second - time.Nanosecond)
		recent.Record(Fault)
		wantState(t, recent, BreakerOpen) // 11 in 20
		time.Sleep(time.Nanosecond)
		old.Record(Fault)
		wantState(t, old, BreakerClosed) // the first 19 calls left: 1 in 1
		record(old, Fault, 18)
		wantState(t, old, BreakerClosed) // 19 in 19: under MinAttempts
		old.Record(Fault)
		wantState(t, old, BreakerOpen)
	})
}

func TestBreakerRatioOfOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := ratioConfig()
		c.FaultRatio, c.MinAttempts = 1, 3
		b, _ := newTestBreaker(t, c)
		b.Record(Neutral)
		record(b, Fault, 10)
		wantState(t, b, BreakerClosed)
		time.Sleep(time.Minute)
		record(b, Fault, 3)
		wantState(t, b, BreakerOpen)
	})
}

func TestBreakerOpenRefusesAndIgnoresLateResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, r := newTestBreaker(t, DefaultBreakerConfig())
		record(b, Fault, 5)
		until := time.Now().Add(30 * time.Second)
		time.Sleep(10 * time.Second)
		b.Record(Success) // a call that went out before the breaker opened
		b.Record(Fault)
		b.RecordProbe(true)
		wantState(t, b, BreakerOpen)
		wantOpenUntil(t, b, until)
		_, err := b.Allow()
		if want := "circuit open until 2000-01-01T00:00:30Z"; err.Error() != want {
			t.Errorf("Allow() error = %q; want %q", err, want)
		}
		time.Sleep(20*time.Second - time.Nanosecond)
		wantOpenUntil(t, b, until)
		if b.TryProbe() {
			t.Fatal("TryProbe() = true before the cooldown ended")
		}
		if got := r.take(); !slices.Equal(got, []string{"closed>open"}) {
			t.Errorf("transitions = %q; want [closed>open]", got)
		}
	})
}

func TestBreakerSingleTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, r := newTestBreaker(t, DefaultBreakerConfig())
		record(b, Fault, 5)
		time.Sleep(30 * time.Second)
		wantState(t, b, BreakerOpen) // until a call or probe comes
		wantAllowed(t, b, true)
		wantState(t, b, BreakerHalfOpen)
		for range 3 {
			trial, err := b.Allow()
			var open *BreakerOpenError
			if !errors.As(err, &open) || trial || !open.Until.IsZero() {
				t.Fatalf("second Allow() = %v, %v; want a *BreakerOpenError with no Until", trial, err)
			}
			if !strings.Contains(err.Error(), "half-open") {
				t.Errorf("Allow() error = %q; want it to say half-open", err)
			}
		}
		if b.TryProbe() {
			t.Error("TryProbe() = true with a trial call out")
		}
		b.RecordProbe(false) // a probe sent before the breaker opened: not the trial
		wantState(t, b, BreakerHalfOpen)
		b.Record(Success)
		wantState(t, b, BreakerClosed)
		wantAllowed(t, b, false)
		want := []string{"closed>open", "open>half-open", "half-open>closed"}
		if got := r.take(); !slices.Equal(got, want) {
			t.Errorf("transitions = %q; want %q", got, want)
		}
	})
}

func TestBreakerNeutralTrialCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, DefaultBreakerConfig())
		record(b, Fault, 5)
		time.Sleep(30 * time.Second)
		wantAllowed(t, b, true)
		b.Record(FaultOf(486))
		wantState(t, b, BreakerClosed)
	})
}

func TestBreakerBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, DefaultBreakerConfig())
		record(b, Fault, 5)
		cooldown := 30 * time.Second
		for _, next := range []time.Duration{60, 120, 240, 300, 300} {
			time.Sleep(cooldown - time.Nanosecond)
			wantOpenUntil(t, b, time.Now().Add(time.Nanosecond))
			time.Sleep(time.Nanosecond)
			wantAllowed(t, b, true)
			b.Record(Fault)
			cooldown = next * time.Second
			wantState(t, b, BreakerOpen)
			wantOpenUntil(t, b, time.Now().Add(cooldown))
		}
		time.Sleep(cooldown)
		wantAllowed(t, b, true)
		b.Record(Success)
		wantState(t, b, BreakerClosed)

		record(b, Fault, 4) // the run was forgotten on closing
		wantState(t, b, BreakerClosed)
		b.Record(Fault)
		wantOpenUntil(t, b, time.Now().Add(30*time.Second)) // the cooldown too
	})
}

func TestBreakerClosingClearsTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, ratioConfig())
		record(b, Neutral, 10)
		b.OpenFor(time.Second)
		time.Sleep(time.Second)
		wantAllowed(t, b, true)
		b.Record(Success)
		record(b, Fault, 19)
		wantState(t, b, BreakerClosed) // 19 in 19: under MinAttempts
		b.Record(Fault)
		wantState(t, b, BreakerOpen)
	})
}

func TestBreakerOpenFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, r := newTestBreaker(t, DefaultBreakerConfig())
		b.OpenFor(0)
		b.OpenFor(-time.Second)
		wantState(t, b, BreakerClosed)

		start := time.Now()
		b.OpenFor(120 * time.Second)
		wantOpenUntil(t, b, start.Add(120*time.Second))
		b.OpenFor(10 * time.Second) // shorter: kept
		wantOpenUntil(t, b, start.Add(120*time.Second))
		time.Sleep(10 * time.Second)
		b.OpenFor(200 * time.Second) // longer: extended
		wantOpenUntil(t, b, start.Add(210*time.Second))
		time.Sleep(200*time.Second - time.Nanosecond)
		wantOpenUntil(t, b, start.Add(210*time.Second))
		time.Sleep(time.Nanosecond)

		wantAllowed(t, b, true)
		b.OpenFor(5 * time.Second) // the trial got a 503 with Retry-After: 5
		b.Record(Fault)            // its result, ignored
		wantOpenUntil(t, b, time.Now().Add(5*time.Second))
		time.Sleep(5 * time.Second)
		wantAllowed(t, b, true)
		b.Record(Fault) // the first failed trial: twice the 30 s cooldown
		wantOpenUntil(t, b, time.Now().Add(60*time.Second))

		want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>open"}
		if got := r.take(); !slices.Equal(got, want) {
			t.Errorf("transitions = %q; want %q", got, want)
		}
	})
}

func TestBreakerProbeTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, r := newTestBreaker(t, DefaultBreakerConfig())
		if b.TryProbe() {
			t.Fatal("TryProbe() = true while closed")
		}
		record(b, Fault, 5)
		time.Sleep(30 * time.Second)
		if !b.TryProbe() {
			t.Fatal("TryProbe() = false after the cooldown")
		}
		wantState(t, b, BreakerHalfOpen)
		if b.TryProbe() {
			t.Error("second TryProbe() = true with a probe out")
		}
		if _, err := b.Allow(); err == nil {
			t.Error("Allow() = nil with a probe out")
		}
		b.Record(Success) // a call that went out before the breaker opened: not the trial
		wantState(t, b, BreakerHalfOpen)
		b.RecordProbe(false)
		wantOpenUntil(t, b, time.Now().Add(60*time.Second))
		time.Sleep(60 * time.Second)
		if !b.TryProbe() {
			t.Fatal("TryProbe() = false after the doubled cooldown")
		}
		b.RecordProbe(true)
		wantState(t, b, BreakerClosed)
		want := []string{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"}
		if got := r.take(); !slices.Equal(got, want) {
			t.Errorf("transitions = %q; want %q", got, want)
		}
	})
}

func TestBreakerKeepaliveProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newTestBreaker(t, DefaultBreakerConfig())
		for range 4 {
			b.RecordProbe(false)
		}
		b.RecordProbe(true) // ends the run
		for range 4 {
			b.RecordProbe(false)
		}
		wantState(t, b, BreakerClosed)
		b.RecordProbe(false)
		wantOpenUntil(t, b, time.Now().Add(30*time.Second))
	})
}

func TestBreakerProbesAndCallsShareTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := DefaultBreakerConfig()
		c.MinAttempts = 3 // failed probes must not count towards the ratio
		b, _ := newTestBreaker(t, c)
		record(b, Success, 3)
		b.Record(Fault)
		b.RecordProbe(false)
		b.Record(Fault)
		b.RecordProbe(false)
		wantState(t, b, BreakerClosed) // 2 faults in 5 calls, a run of 4
		b.RecordProbe(false)
		wantState(t, b, BreakerOpen)
	})
}

func TestBreakerOnChangeMayCallBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *Breaker
		var seen []string
		b = NewBreaker(DefaultBreakerConfig(), func(from, to BreakerState) {
			seen = append(seen, string(from+">"+to+"="+b.State()))
			if to == BreakerOpen {
				b.TryProbe() // too early: does nothing
			}
		})
		record(b, Fault, 5)
		time.Sleep(30 * time.Second)
		wantAllowed(t, b, true)
		b.Record(Success)
		want := []string{"closed>open=open", "open>half-open=half-open", "half-open>closed=closed"}
		if !slices.Equal(seen, want) {
			t.Errorf("transitions = %q; want %q", seen, want)
		}
	})
}

func TestBreakerNilOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(DefaultBreakerConfig(), nil)
		record(b, Fault, 5)
		time.Sleep(30 * time.Second)
		wantAllowed(t, b, true)
		b.Record(Success)
		wantState(t, b, BreakerClosed)
	})
}

// TestBreakerConcurrent runs calls, probes and Retry-Afters at once under
// the race detector: onChange calls must never overlap and must chain,
// each one starting from the state the last one ended in.
func TestBreakerConcurrent(t *testing.T) {
	c := BreakerConfig{
		ConsecutiveFaults: 3, FaultRatio: 0.5, MinAttempts: 10,
		Window: 10 * time.Millisecond, Cooldown: 50 * time.Microsecond, MaxCooldown: time.Millisecond,
	}
	var inside atomic.Int32
	var mu sync.Mutex
	var got []BreakerState
	b := NewBreaker(c, func(from, to BreakerState) {
		if inside.Add(1) != 1 {
			t.Error("onChange calls overlap")
		}
		mu.Lock()
		got = append(got, from, to)
		mu.Unlock()
		inside.Add(-1)
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				step(b, g, i)
			}
		})
	}
	wg.Wait()
	if len(got) == 0 {
		t.Fatal("no transitions")
	}
	last := BreakerClosed
	for i := 0; i < len(got); i += 2 {
		if got[i] != last || got[i] == got[i+1] {
			t.Fatalf("transition %d is %s>%s after one to %s", i/2, got[i], got[i+1], last)
		}
		last = got[i+1]
	}
	if last != b.State() {
		t.Errorf("last transition to %s; State() = %s", last, b.State())
	}
}

// step is one goroutine's action in TestBreakerConcurrent.
func step(b *Breaker, g, i int) {
	switch {
	case g == 0 && i%100 == 0:
		b.OpenFor(100 * time.Microsecond)
	case g == 1:
		if b.TryProbe() {
			b.RecordProbe(rand.IntN(2) == 0)
		}
		b.Tripped()
	default:
		if _, err := b.Allow(); err == nil {
			b.Record(Outcome(rand.IntN(3)))
		}
	}
	if i%50 == 0 {
		time.Sleep(20 * time.Microsecond)
	}
}

// TestBreakerReleaseReturnsTrial: a half-open trial handed back unsent
// neither closes nor re-opens the breaker; the next call takes the trial.
func TestBreakerReleaseReturnsTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := DefaultBreakerConfig()
		c.ConsecutiveFaults = 1
		b := NewBreaker(c, nil)
		b.Record(Fault)
		time.Sleep(c.Cooldown)
		if trial, err := b.Allow(); !trial || err != nil {
			t.Fatalf("Allow after cooldown = %v, %v; want the trial", trial, err)
		}
		if _, err := b.Allow(); err == nil {
			t.Fatal("a second call went out while the trial was out")
		}
		b.Release()
		if b.State() != BreakerHalfOpen {
			t.Fatalf("state after Release = %s; want half-open", b.State())
		}
		if trial, err := b.Allow(); !trial || err != nil {
			t.Fatalf("Allow after Release = %v, %v; want the trial again", trial, err)
		}
		b.Record(Success)
		if b.State() != BreakerClosed {
			t.Errorf("state = %s; want closed after the trial's success", b.State())
		}
	})
}
