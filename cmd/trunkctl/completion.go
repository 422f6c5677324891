package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/trunkd/trunkd/cmd/internal/version"
)

// Shell completion works the way kubectl's and cobra's does: the script a
// shell loads is small and asks trunkctl itself, `trunkctl __complete
// WORD...`, for the candidates of the last word. So new commands and flags
// complete with no new script, and trunk ids come from the server when a
// token is at hand.

// completeTimeout bounds the server lookups of one completion: a shell
// must not hang on a trunkd that is away.
const completeTimeout = 2 * time.Second

// positional says what the arguments of a command are, for completion.
var positional = map[string]string{"get": "trunk", "rm": "trunk", "edit": "trunk", "hangup": "call"}

// valueCompletions are the values of flags that take one of a few.
var valueCompletions = map[string][]string{"o": {"table", "json", "yaml"}}

func cmdCompletion(_ context.Context, c *cli, args []string) error {
	fs := c.flags("completion", "bash|zsh|fish")
	rest, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	script, ok := completionScripts[rest[0]]
	if !ok {
		return usageError{fmt.Errorf("unknown shell %q: want bash, zsh or fish", rest[0])}
	}
	_, err = io.WriteString(c.stdout, script)
	return err
}

// complete prints the candidates for the last of words (the command line
// after "trunkctl", the last word being the one under the cursor), one
// per line.
func (c *cli) complete(ctx context.Context, words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	cmd, flagsOf := c.commandIn(before)
	var out []string
	switch {
	case len(before) > 0 && c.takesValue(flagsOf, before[len(before)-1]):
		out = c.flagValues(ctx, strings.TrimLeft(before[len(before)-1], "-"), before)
	case strings.HasPrefix(cur, "-"):
		out = flagNames(flagsOf)
	case cmd == "":
		for _, k := range commands {
			out = append(out, k.name)
		}
	case cmd == "completion":
		out = []string{"bash", "zsh", "fish"}
	default:
		out = c.positionalValues(ctx, cmd, before)
	}
	for _, o := range out {
		if strings.HasPrefix(o, cur) {
			fmt.Fprintln(c.stdout, o)
		}
	}
}

// commandIn finds the command named in words and the flags it takes: the
// global flags before a command, the command's own (globals included)
// after it.
func (c *cli) commandIn(words []string) (string, *flag.FlagSet) {
	global := flag.NewFlagSet("trunkctl", flag.ContinueOnError)
	c.g.register(global, c.g)
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") {
			if c.takesValue(global, w) && !strings.Contains(w, "=") {
				i++
			}
			continue
		}
		for _, k := range commands {
			if k.name == w {
				return w, c.commandFlags(k)
			}
		}
		return "", global
	}
	return "", global
}

// commandFlags runs cmd only as far as its flag parsing, to learn them.
func (c *cli) commandFlags(cmd command) *flag.FlagSet {
	var fs *flag.FlagSet
	d := &cli{env: env{getenv: c.getenv, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, g: c.g, discover: &fs}
	if err := cmd.run(context.Background(), d, nil); !errors.Is(err, errDiscover) || fs == nil {
		return flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	}
	return fs
}

func (c *cli) takesValue(fs *flag.FlagSet, word string) bool {
	name, _, hasValue := strings.Cut(strings.TrimLeft(word, "-"), "=")
	if !strings.HasPrefix(word, "-") || hasValue {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func flagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
	slices.Sort(out)
	return out
}

// flagValues completes the value of flag name: trunk ids for the flags
// naming a trunk, the choices of an enumerated flag; nothing otherwise
// (the shell then offers file names).
func (c *cli) flagValues(ctx context.Context, name string, words []string) []string {
	switch name {
	case "trunk", "trunk-id", "trunk_id":
		return c.serverValues(ctx, "trunk", words)
	}
	return valueCompletions[name]
}

func (c *cli) positionalValues(ctx context.Context, cmd string, words []string) []string {
	if kind := positional[cmd]; kind != "" {
		return c.serverValues(ctx, kind, words)
	}
	return nil
}

// serverValues asks trunkd for trunk or call ids, with the connection the
// command line (or the environment) gives; nothing without a token or
// when trunkd does not answer in time.
func (c *cli) serverValues(ctx context.Context, kind string, words []string) []string {
	d := &cli{env: env{getenv: c.getenv, stdout: io.Discard, stderr: io.Discard}, g: globalsIn(words, globalsFromEnv(c.env))}
	if d.g.token == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	cl, err := d.dial(ctx)
	if err != nil {
		return nil
	}
	defer cl.Close()
	var out []string
	switch kind {
	case "trunk":
		for cursor := ""; len(out) < 10000; {
			page, next, err := cl.ListTrunks(ctx, cursor, 1000)
			if err != nil {
				break
			}
			for _, t := range page {
				out = append(out, t.TrunkID)
			}
			if cursor = next; cursor == "" {
				break
			}
		}
	case "call":
		calls, _ := cl.ListCalls(ctx, "")
		for _, k := range calls {
			out = append(out, k.CallID)
		}
	}
	return out
}

// globalsIn reads the global flags given as "--flag value" or
// "--flag=value" anywhere in words over def.
func globalsIn(words []string, def globals) globals {
	var g globals
	fs := flag.NewFlagSet("trunkctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs, def)
	for i := 0; i < len(words); i++ {
		w := words[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f := fs.Lookup(name)
		if !strings.HasPrefix(w, "-") || f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); hasValue || (ok && b.IsBoolFlag()) || i+1 >= len(words) {
			fs.Parse([]string{w})
			continue
		}
		fs.Parse([]string{w, words[i+1]})
		i++
	}
	return g
}

// completionScripts are what `trunkctl completion SHELL` prints.
var completionScripts = map[string]string{
	"bash": `# trunkctl completion for bash: source <(trunkctl completion bash)
_trunkctl() {
    local IFS=$'\n'
    local cands
    cands=$(trunkctl __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    if [ -z "$cands" ]; then
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    else
        COMPREPLY=($cands)
    fi
}
complete -o filenames -F _trunkctl trunkctl
`,
	"zsh": `#compdef trunkctl
# trunkctl completion for zsh: trunkctl completion zsh > "${fpath[1]}/_trunkctl"
_trunkctl() {
    local -a cands
    cands=("${(@f)$(trunkctl __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ -z "${cands[*]}" ]]; then
        _files
    else
        compadd -a cands
    fi
}
compdef _trunkctl trunkctl
`,
	"fish": `# trunkctl completion for fish: trunkctl completion fish > ~/.config/fish/completions/trunkctl.fish
function __trunkctl_complete
    set -l words (commandline -opc)
    set -e words[1]
    trunkctl __complete $words (commandline -ct) 2>/dev/null
end
complete -c trunkctl -f -a '(__trunkctl_complete)'
`,
}

func cmdVersion(_ context.Context, c *cli, args []string) error {
	fs := c.flags("version", "")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "trunkctl", version.String())
	return nil
}
