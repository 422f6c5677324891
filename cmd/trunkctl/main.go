// Command trunkctl is the admin CLI of trunkd.
//
//	trunkctl [--addr A] [--token T] [--ca FILE | --insecure] COMMAND [flags]
//
// Commands: add, update, get, list, rm, explain, dial, hangup, calls, token,
// backup, reload, completion, version.
// Run trunkctl help for more.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// env is what a run of trunkctl sees of the outside world; tests fill it in.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed (an error from trunkd, or a local one)
	exitUsage = 2 // the command line is wrong
)

// globals are the flags every command takes.
type globals struct {
	addr     string
	token    string
	ca       string
	insecure bool
	timeout  time.Duration
	output   string
	org      string
}

// globalsFromEnv returns the defaults of the global flags.
func globalsFromEnv(e env) globals {
	g := globals{addr: "127.0.0.1:7443", token: e.getenv("TRUNKD_TOKEN"), ca: e.getenv("TRUNKD_CA"), timeout: 15 * time.Second, output: "table", org: e.getenv("TRUNKD_ORG")}
	if v := e.getenv("TRUNKD_ADDR"); v != "" {
		g.addr = v
	}
	return g
}

// register binds the global flags to g's fields, defaulting to def. A
// command that has a flag of its own named like a global one (dial's
// --timeout) passes its name in except.
func (g *globals) register(fs *flag.FlagSet, def globals, except ...string) {
	fs.StringVar(&g.addr, "addr", def.addr, "trunkd admin `address` (env TRUNKD_ADDR)")
	fs.StringVar(&g.token, "token", def.token, "admin JWT (env TRUNKD_TOKEN)")
	fs.StringVar(&g.ca, "ca", def.ca, "PEM `file` of the server certificate to pin, e.g. trunkd-data/tls.crt (env TRUNKD_CA)")
	fs.BoolVar(&g.insecure, "insecure", def.insecure, "do not verify the server certificate (development only)")
	if !slices.Contains(except, "timeout") {
		fs.DurationVar(&g.timeout, "timeout", def.timeout, "give up on the command after this long (dial waits its ring time on top; give it before dial, whose own --timeout is the ring time)")
	}
	if !slices.Contains(except, "o") {
		fs.StringVar(&g.output, "o", def.output, "output `format`: table, json or yaml")
	}
	fs.StringVar(&g.org, "org", def.org, "act for this `organization` (personal tokens; trunks:admin) (env TRUNKD_ORG)")
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, c *cli, args []string) error
}

var commands = []command{
	{"add", "[-f FILE] [--FIELD VALUE ...]", "create a trunk from a JSON/YAML file and/or field flags", cmdAdd},
	{"update", "[--patch | --replace] [-f FILE] [--FIELD VALUE ...]", "change a trunk: --patch the fields given, or --replace the whole record", cmdUpdate},
	{"get", "TRUNK_ID", "show a trunk (never its credentials); -o yaml|json prints what update -f takes", cmdGet},
	{"edit", "TRUNK_ID", "edit a trunk's record in $EDITOR and write it back safely", cmdEdit},
	{"list", "[--limit N] [--cursor C] [filters]", "list trunks in trunk_id order (--name, --name-prefix, --created-after ...)", cmdList},
	{"rm", "TRUNK_ID", "remove a trunk", cmdRemove},
	{"explain", "--source IP --listener ADDR [--ruri URI]", "say which trunk an inbound call would match, and why", cmdExplain},
	{"dial", "--trunk ID --to NUMBER [flags]", "place a call; exit 0 only when it is answered", cmdDial},
	{"hangup", "CALL_ID", "end a call in flight", cmdHangup},
	{"calls", "[--trunk ID]", "list the calls in flight", cmdCalls},
	{"agent", agentUsage, "manage AI agents and deploy them as SIP endpoints", cmdAgent},
	{"token", "--secret-file F [--scope S] [--ttl D]", "mint an HS256 admin token", cmdToken},
	{"backup", "-o FILE", "save a consistent copy of trunkd's store while it runs (trunks:admin); checks its SHA-256", cmdBackup},
	{"reload", "[--log-level LEVEL]", "re-read JWT keys and certificates, optionally set the log level (trunks:admin)", cmdReload},
	{"completion", "bash|zsh|fish", "print a shell completion script (trunk ids complete from the server)", cmdCompletion},
	{"version", "", "print the version trunkctl was built from", cmdVersion},
}

// usageError marks errors in how trunkctl was called.
type usageError struct{ error }

func run(ctx context.Context, args []string, e env) int {
	c := &cli{env: e}
	fs := flag.NewFlagSet("trunkctl", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	c.g.register(fs, globalsFromEnv(e))
	fs.Usage = func() { c.usage(fs) }
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if fs.NArg() == 0 || fs.Arg(0) == "help" {
		c.usage(fs)
		return map[bool]int{true: exitOK, false: exitUsage}[fs.NArg() > 0]
	}
	if fs.Arg(0) == "__complete" { // asked by the completion scripts
		c.complete(ctx, fs.Args()[1:])
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == fs.Arg(0) {
			return c.exec(ctx, cmd, fs.Args()[1:])
		}
	}
	fmt.Fprintf(e.stderr, "trunkctl: unknown command %q (see trunkctl help)\n", fs.Arg(0))
	return exitUsage
}

// ownDeadline names the commands that set their own deadline: dial waits
// for the ring time on top of --timeout.
// A backup is bounded by the server's progress, not by --timeout.
var ownDeadline = map[string]bool{"dial": true, "backup": true}

func (c *cli) exec(ctx context.Context, cmd command, args []string) int {
	if !ownDeadline[cmd.name] {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.g.timeout)
		defer cancel()
	}
	err := cmd.run(ctx, c, args)
	if err == nil {
		return exitOK
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(c.stderr, "trunkctl %s: %v\n", cmd.name, err)
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitError
}

func (c *cli) usage(fs *flag.FlagSet) {
	w := c.stderr
	fmt.Fprintln(w, "usage: trunkctl [global flags] COMMAND [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-7s %-42s %s\n", cmd.name, cmd.args, cmd.help)
	}
	fmt.Fprintln(w, "\nglobal flags (also accepted after the command):")
	fs.PrintDefaults()
}
