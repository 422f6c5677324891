// Command trunkd is the SIP trunk daemon: it keeps trunks in an embedded
// database and serves the admin RPC over QUIC.
//
// With no flags it runs on embedded defaults in ./trunkd-data: a generated
// self-signed certificate, JWT signing secret and at-rest encryption key.
// `trunkd restore --from FILE --data DIR` installs a backup taken with
// trunkctl backup into a stopped trunkd's data dir. See docs/operations.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/trunkd/trunkd/cmd/internal/version"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("trunkd", version.String())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default action so that a
		// second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(restore(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run starts trunkd and serves until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(ctx, args[1:], getenv, os.Stdout, stderr)
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "trunkd:", err)
		return 2
	}
	log := cfg.logger(stderr)
	gcDefaults(getenv, log)
	// Before READY=1, and before starting: a SIGHUP from then on reloads
	// instead of killing the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d, err := Start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	d.howToConnect()
	sd := newNotifier(getenv)
	if err := sd.notify("READY=1\nSTATUS=serving"); err != nil {
		log.Warn("systemd", "err", err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	go sd.watch(wctx, log, d.alive)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			sd.notify("RELOADING=1")
			d.reloadOnSignal()
			sd.notify("READY=1")
		}
	}
	stopWatch()
	sd.notify("STOPPING=1\nSTATUS=draining calls")
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
