package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/trunk"
)

// cli holds one run's globals and environment.
type cli struct {
	env
	g globals

	// discover, when set, makes parse hand over the command's FlagSet and
	// stop the command (errDiscover): shell completion learns each
	// command's flags from the command itself.
	discover **flag.FlagSet
}

// errDiscover stops a command run only to learn its flags.
var errDiscover = errors.New("flags discovered")

// flags returns a FlagSet for a command that also takes the global flags,
// but those named in except.
func (c *cli) flags(name, args string, except ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("trunkctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	c.g.register(fs, c.g, except...)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: trunkctl %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags and checks it got nargs arguments (-1:
// any number).
func (c *cli) parse(fs *flag.FlagSet, args []string, nargs int) ([]string, error) {
	if c.discover != nil {
		*c.discover = fs
		return nil, errDiscover
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		// Flags may follow arguments: trunkctl get ID -o json.
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if nargs >= 0 && len(pos) != nargs {
		return nil, usageError{fmt.Errorf("want %d argument(s), got %d", nargs, len(pos))}
	}
	return pos, nil
}

func (c *cli) dial(ctx context.Context) (*rpc.Client, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	cl, err := rpc.Dial(ctx, c.g.addr, tc, c.g.token)
	if err != nil {
		return nil, err
	}
	return cl.ForOrg(c.g.org), nil
}

// connect parses args with fs (nargs positional arguments) and connects;
// the caller closes the client.
func (c *cli) connect(ctx context.Context, fs *flag.FlagSet, args []string, nargs int) (*rpc.Client, []string, error) {
	rest, err := c.parse(fs, args, nargs)
	if err != nil {
		return nil, nil, err
	}
	cl, err := c.dial(ctx)
	return cl, rest, err
}

func (c *cli) tlsConfig() (*tls.Config, error) {
	host, _, err := net.SplitHostPort(c.g.addr)
	if err != nil {
		return nil, usageError{fmt.Errorf("--addr %q: %w", c.g.addr, err)}
	}
	switch {
	case c.g.ca != "":
		return rpc.PinnedTLSConfig(c.g.ca, host)
	case c.g.insecure:
		return &tls.Config{InsecureSkipVerify: true}, nil
	}
	return nil, usageError{errors.New("give --ca FILE (the server's certificate, e.g. trunkd-data/tls.crt) or --insecure")}
}

func cmdAdd(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("add", "[-f FILE] [--FIELD VALUE ...]")
	tf := newTrunkFlags(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if err := tf.load(c.stdin); err != nil {
		return usageError{err}
	}
	t, _, _, err := tf.build(trunk.Defaults())
	if err != nil {
		return usageError{err}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.AddTrunk(ctx, t); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "trunk %s added\n", t.TrunkID)
	return nil
}

// patchAttempts bounds update --patch's read-modify-write retries.
const patchAttempts = 5

func cmdUpdate(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("update", "[--patch | --replace] [-f FILE] [--FIELD VALUE ...]")
	tf := newTrunkFlags(fs)
	patch := fs.Bool("patch", false, "change only the fields given; the others keep their stored values (read-modify-write, retried on conflict)")
	replace := fs.Bool("replace", false, "replace the whole record: fields not given take their defaults, secrets not given are cleared")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *patch && *replace {
		return usageError{errors.New("give --patch or --replace, not both")}
	}
	if err := tf.load(c.stdin); err != nil {
		return usageError{err}
	}
	t, f, given, err := tf.build(trunk.Defaults())
	if err != nil {
		return usageError{err}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	switch {
	case *patch:
		err = c.patch(ctx, cl, tf, t.TrunkID, f)
	case *replace:
		err = cl.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{IfRevision: f.revision(), KeepSecrets: f.keepSecrets(), Trunk: *t})
	default:
		err = c.checkedUpdate(ctx, cl, t, f, given)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "trunk %s updated\n", t.TrunkID)
	return nil
}

// checkedUpdate sends t whole, but only when that resets no field the
// command line left out; otherwise it says which and asks for --patch or
// --replace. It writes with the revision it checked against.
func (c *cli) checkedUpdate(ctx context.Context, cl *rpc.Client, t *trunk.Trunk, f *trunkFile, given map[string]bool) error {
	cur, err := cl.GetTrunkRecord(ctx, t.TrunkID)
	if err != nil {
		return err
	}
	req := rpc.TrunkRequest{IfRevision: f.revision(), KeepSecrets: f.keepSecrets(), Trunk: *t}
	if !cur.Found {
		return cl.WriteTrunk(ctx, "UpdateTrunk", req) // the server says it does not exist
	}
	if req.KeepSecrets {
		given["sip_password"], given["api_bearer_token"] = true, true
	}
	if r := resets(cur.Record, t, given); len(r) > 0 {
		return usageError{fmt.Errorf("this update replaces the whole record and would reset %s; "+
			"give --patch to change only the fields given, or --replace to reset them", strings.Join(r, ", "))}
	}
	if req.IfRevision == 0 {
		req.IfRevision = cur.Revision
	}
	return cl.WriteTrunk(ctx, "UpdateTrunk", req)
}

// patch overlays the file and flags on the stored record and writes it
// back with its revision and keep_secrets, again from a fresh read when
// someone else wrote in between. A file naming a revision is not retried:
// the write must apply to that revision or not at all.
func (c *cli) patch(ctx context.Context, cl *rpc.Client, tf *trunkFlags, id string, f *trunkFile) error {
	var err error
	for range patchAttempts {
		var cur rpc.GetTrunkResponse
		if cur, err = cl.GetTrunkRecord(ctx, id); err != nil {
			return err
		}
		if !cur.Found {
			return fmt.Errorf("trunk %q not found", id)
		}
		t, _, _, berr := tf.build(cur.Record.Trunk)
		if berr != nil {
			return usageError{berr}
		}
		rev := f.revision()
		if rev == 0 {
			rev = cur.Revision
		}
		err = cl.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{IfRevision: rev, KeepSecrets: true, Trunk: *t})
		if rpc.ErrorCode(err) != rpc.CodeConflict || f.revision() != 0 {
			return err
		}
	}
	return fmt.Errorf("the trunk kept changing while it was patched (%d attempts): %w", patchAttempts, err)
}

func cmdGet(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("get", "TRUNK_ID")
	cl, rest, err := c.connect(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.GetTrunkRecord(ctx, rest[0])
	if err != nil {
		return err
	}
	if !r.Found {
		return fmt.Errorf("trunk %q not found", rest[0])
	}
	switch c.g.output {
	case "json", "yaml":
		b, err := encodeDoc(newRecordDoc(r), c.g.output)
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(b)
		return err
	}
	return c.printTrunk(r.Config)
}

func cmdList(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("list", "[--limit N] [--cursor C] [--name N] [--name-prefix P] [--created-after T] ...")
	limit := fs.Int("limit", 0, "show one page of at most `N` trunks (default: every page)")
	var req rpc.ListTrunksRequest
	fs.StringVar(&req.Cursor, "cursor", "", "start after this page `cursor`")
	fs.StringVar(&req.Name, "name", "", "only trunks with this `name`")
	fs.StringVar(&req.NamePrefix, "name-prefix", "", "only trunks whose name starts with `prefix`")
	fs.StringVar(&req.CreatedAfter, "created-after", "", "only trunks created after `time` (RFC 3339)")
	fs.StringVar(&req.CreatedBefore, "created-before", "", "only trunks created before `time` (RFC 3339)")
	fs.StringVar(&req.UpdatedAfter, "updated-after", "", "only trunks written after `time` (RFC 3339)")
	fs.StringVar(&req.UpdatedBefore, "updated-before", "", "only trunks written before `time` (RFC 3339)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *limit < 0 || *limit > rpc.MaxListLimit {
		return usageError{fmt.Errorf("--limit must be 1-%d", rpc.MaxListLimit)}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	var all []rpc.TrunkConfig
	req.Limit = uint32(max(*limit, rpc.MaxListLimit*boolInt(*limit == 0)))
	for {
		resp, err := cl.ListTrunksWhere(ctx, req)
		if err != nil {
			return err
		}
		all, req.Cursor = append(all, resp.Trunks...), resp.NextCursor
		if req.Cursor == "" || *limit > 0 {
			break
		}
	}
	if err := c.printList(all); err != nil {
		return err
	}
	if req.Cursor != "" {
		fmt.Fprintf(c.stderr, "more: trunkctl list --limit %d --cursor %s\n", *limit, req.Cursor)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cmdRemove(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("rm", "TRUNK_ID")
	cl, rest, err := c.connect(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.RemoveTrunk(ctx, rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "trunk %s removed\n", rest[0])
	return nil
}

func cmdToken(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("token", "--secret-file F [--scope S] [--ttl D]")
	secretFile := fs.String("secret-file", "", "HMAC secret `file` (trunkd's DATA/jwt.secret)")
	scope := fs.String("scope", "trunks:manage", "space-separated `scopes`: trunks:read, trunks:manage, calls:manage, agents:read, agents:manage, trunks:admin (operator: every organization, managed trunks)")
	tokOrg := fs.String("token-org", "", "org claim: an organization key acting for this `organization` only")
	tokOrgs := fs.String("token-orgs", "", "orgs claim: a personal token for these comma-separated `organizations` (each request names one with --org)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	issuer := fs.String("issuer", "", "iss claim (when trunkd runs with --jwt-issuer)")
	audience := fs.String("audience", "", "aud claim (when trunkd runs with --jwt-audience)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *secretFile == "" {
		return usageError{errors.New("--secret-file is required")}
	}
	if *ttl <= 0 {
		return usageError{errors.New("--ttl must be positive")}
	}
	secret, err := auth.LoadSecretFile(*secretFile)
	if err != nil {
		return err
	}
	var orgs []string
	if *tokOrgs != "" {
		orgs = strings.Split(*tokOrgs, ",")
	}
	tok, err := auth.MintOrgToken(secret, *scope, *ttl, *issuer, *audience, *tokOrg, orgs)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, tok)
	return nil
}

func cmdExplain(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("explain", "--source IP --listener ADDR [--ruri URI]")
	source := fs.String("source", "", "the INVITE's packet source `IP`")
	listener := fs.String("listener", "", "the SIP bind it arrives on, `ip:port` (\":5060\" for all addresses)")
	ruri := fs.String("ruri", "", "its Request-URI, for the domain tie-break")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *source == "" || *listener == "" {
		return usageError{errors.New("--source and --listener are required")}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := cl.ExplainMatch(ctx, *source, *listener, *ruri)
	if err != nil {
		return err
	}
	if done, err := c.printValue(m); done {
		return err
	}
	if m.Matched {
		fmt.Fprintf(c.stdout, "matched %s: %s\n", m.TrunkID, m.Reason)
		return nil
	}
	fmt.Fprintf(c.stdout, "no match (the call would get 403): %s\n", m.Reason)
	return nil
}

func cmdDial(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("dial", "--trunk ID --to NUMBER [--from N] [--audio-url URL | --ai-url URL [--agent-id ID]] [--timeout S] [--max-duration S]", "timeout")
	var req rpc.DialRequest
	fs.StringVar(&req.TrunkID, "trunk", "", "the trunk to call through (`ID`)")
	fs.StringVar(&req.To, "to", "", "the callee: a `number`, SIP user or sip: URI")
	fs.StringVar(&req.From, "from", "", "the caller user part (`N`; default: the trunk's sip_username)")
	fs.StringVar(&req.AudioURL, "audio-url", "", "play this WAV once answered, then hang up (`URL`: absolute path, file://, http(s)://)")
	fs.StringVar(&req.AIURL, "ai-url", "", "bridge the answered call to this AI agent (`URL`: ws:// or wss://; default: the trunk's ai_websocket_url)")
	fs.StringVar(&req.AgentID, "agent-id", "", "the agent_id told to the agent (`ID`; default: the trunk's)")
	ring := fs.Uint("timeout", rpc.DefaultDialTimeoutSec, fmt.Sprintf("ring for at most this many `seconds` (1-%d)", rpc.MaxDialTimeoutSec))
	maxDur := fs.Uint("max-duration", 0, "hang up after this many `seconds` answered (0: no limit)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	switch {
	case req.TrunkID == "" || req.To == "":
		return usageError{errors.New("--trunk and --to are required")}
	case *ring < 1 || *ring > rpc.MaxDialTimeoutSec:
		return usageError{fmt.Errorf("--timeout must be 1-%d seconds", rpc.MaxDialTimeoutSec)}
	case *maxDur > math.MaxUint32:
		return usageError{fmt.Errorf("--max-duration must be at most %d seconds", uint64(math.MaxUint32))}
	}
	req.TimeoutSec, req.MaxDurationSec = uint32(*ring), uint32(*maxDur)
	// trunkd answers within the ring time plus rpc.DialDeadlineMargin;
	// --timeout covers the connection and the round trip on top.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(*ring)*time.Second+rpc.DialDeadlineMargin+c.g.timeout)
	defer cancel()
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Dial(ctx, req)
	if err != nil {
		return err
	}
	done, err := c.printValue(res)
	if err != nil {
		return err
	}
	if !res.Answered {
		return fmt.Errorf("call %s not answered: %s", dash(res.CallID), sipOutcome(res))
	}
	if !done {
		fmt.Fprintf(c.stdout, "call %s answered after %d ms\n", res.CallID, res.SetupMs)
	}
	return nil
}

// sipOutcome says how a call that was not answered ended.
func sipOutcome(r rpc.DialResponse) string {
	if r.SIPCode == 0 {
		return "no SIP response (" + r.Reason + ")"
	}
	return fmt.Sprintf("%d %s", r.SIPCode, r.Reason)
}

func cmdHangup(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("hangup", "CALL_ID")
	cl, rest, err := c.connect(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Hangup(ctx, rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "call %s hung up\n", rest[0])
	return nil
}

func cmdCalls(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("calls", "[--trunk ID]")
	trunkID := fs.String("trunk", "", "only the calls of this trunk (`ID`)")
	cl, _, err := c.connect(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	calls, err := cl.ListCalls(ctx, *trunkID)
	if err != nil {
		return err
	}
	return c.printCalls(calls)
}
