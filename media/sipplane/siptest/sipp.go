package siptest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sipp is one run of sipp on 127.0.0.1: a client (UAC) calling a SIP
// listener there, or with no Port a server (UAS) waiting for calls. Zero
// values leave sipp's defaults, except where shown.
type Sipp struct {
	Scenario  string        // scenario file (-sf); a relative path is taken from the caller's directory
	Port      int           // the target's port on 127.0.0.1; 0 for none (a UAS)
	LocalPort int           // sipp's SIP port (-p); 0 picks a free one
	MediaPort int           // sipp's media port (-mp); 0 picks a free one
	Rate      int           // new calls per second (-r)
	Calls     int           // calls to place before exiting (-m)
	Limit     int           // most calls at once (-l)
	Timeout   time.Duration // the run fails after this long (-timeout, -timeout_error)
	Dir       string        // working directory, where stat.csv is written; "" is a temporary one, removed after Run
	Args      []string      // more sipp flags, before the target
	Prefix    []string      // a command to run sipp under, such as taskset -c 1
}

// Stats is what a sipp run reports: the cumulative figures from the last
// line of its statistics file (-trace_stat), its exit status and the end
// of its output.
type Stats struct {
	Successful      int           // SuccessfulCall(C)
	Failed          int           // FailedCall(C)
	Retransmissions int           // Retransmissions(C)
	Elapsed         time.Duration // CurrentTime - StartTime
	Exit            int           // 0 when every call went as the scenario expects
	Output          string        // sipp's screen output (stdout and stderr)
}

// CPS is the successful calls per second over the run.
func (s Stats) CPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Successful) / s.Elapsed.Seconds()
}

// Tail is the last n lines of out, where sipp says what went wrong.
func Tail(out string, n int) string {
	l := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// Run runs sipp to its end and reads its statistics. A run in which some
// calls failed is not an error: Stats counts them and Exit is non-zero.
// The error is for a sipp that could not run or wrote no statistics.
func (s Sipp) Run(ctx context.Context) (Stats, error) {
	dir := s.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "siptest-sipp")
		if err != nil {
			return Stats{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cmd, err := s.Command(ctx, dir)
	if err != nil {
		return Stats{}, err
	}
	out, runErr := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		return Stats{Output: string(out)}, fmt.Errorf("sipp: %w", runErr)
	}
	st, err := ReadStats(filepath.Join(dir, "stat.csv"))
	st.Exit, st.Output = cmd.ProcessState.ExitCode(), string(out)
	if err != nil {
		return st, fmt.Errorf("sipp exit %d: %w\n%s", st.Exit, err, Tail(st.Output, 15))
	}
	return st, nil
}

// Start starts sipp in dir, which must exist, and returns the running
// command; its statistics go to dir/stat.csv.
func (s Sipp) Start(ctx context.Context, dir string) (*exec.Cmd, error) {
	cmd, err := s.Command(ctx, dir)
	if err != nil {
		return nil, err
	}
	return cmd, cmd.Start()
}

// Command is the sipp command line of s, to run in dir (which must exist)
// with its statistics in dir/stat.csv, for a caller that runs it itself.
func (s Sipp) Command(ctx context.Context, dir string) (*exec.Cmd, error) {
	if _, err := exec.LookPath("sipp"); err != nil {
		return nil, errors.New("sipp is not installed: run `make deps` (Debian package sip-tester)")
	}
	sf, err := filepath.Abs(s.Scenario)
	if err != nil {
		return nil, err
	}
	local, media := s.LocalPort, s.MediaPort
	for _, p := range []*int{&local, &media} {
		if *p == 0 {
			free, err := Port("127.0.0.1")
			if err != nil {
				return nil, err
			}
			*p = int(free)
		}
	}
	args := slices.Concat(s.Prefix, []string{"sipp", "-sf", sf, "-i", "127.0.0.1",
		"-p", strconv.Itoa(local), "-mp", strconv.Itoa(media), "-nostdin",
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1"})
	for _, f := range []struct {
		flag string
		n    int
	}{{"-m", s.Calls}, {"-r", s.Rate}, {"-l", s.Limit}} {
		if f.n > 0 {
			args = append(args, f.flag, strconv.Itoa(f.n))
		}
	}
	if s.Timeout > 0 {
		args = append(args, "-timeout", fmt.Sprintf("%ds", int(s.Timeout.Seconds())), "-timeout_error")
	}
	args = append(args, s.Args...)
	if s.Port != 0 {
		args = append(args, fmt.Sprintf("127.0.0.1:%d", s.Port))
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	return cmd, nil
}

// ReadStats reads the cumulative figures from the last line of a sipp
// statistics file (-trace_stat).
func ReadStats(path string) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.FieldsPerRecord, r.LazyQuotes = ';', -1, true
	rows, err := r.ReadAll()
	if err != nil {
		return Stats{}, fmt.Errorf("sipp statistics: %w", err)
	}
	if len(rows) < 2 {
		return Stats{}, errors.New("sipp statistics are empty")
	}
	head, last := rows[0], rows[len(rows)-1]
	col := func(name string) (string, error) {
		i := slices.Index(head, name)
		if i < 0 || i >= len(last) {
			return "", fmt.Errorf("sipp statistics have no %s column", name)
		}
		return last[i], nil
	}
	var st Stats
	for _, c := range []struct {
		name string
		n    *int
	}{{"SuccessfulCall(C)", &st.Successful}, {"FailedCall(C)", &st.Failed}, {"Retransmissions(C)", &st.Retransmissions}} {
		v, err := col(c.name)
		if err != nil {
			return Stats{}, err
		}
		*c.n, _ = strconv.Atoi(v)
	}
	// Times read "2026-11-23\t08:25:03.208666\t1795422303.208666": the
	// last field is Unix seconds.
	epoch := func(name string) float64 {
		v, _ := col(name)
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		s, _ := strconv.ParseFloat(f[len(f)-1], 64)
		return s
	}
	if secs := epoch("CurrentTime") - epoch("StartTime"); secs > 0 {
		st.Elapsed = time.Duration(secs * float64(time.Second))
	}
	return st, nil
}
