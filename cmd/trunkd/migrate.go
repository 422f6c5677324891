package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/trunkd/trunkd/store"
	"github.com/trunkd/trunkd/store/etcd"
	"github.com/trunkd/trunkd/store/record"
)

// migrate copies every trunk of a bbolt store into etcd: trunkd migrate
// --from bolt://PATH --to etcd://host:port[,...]. Records keep their
// sealed bytes (the same secret key is needed on both sides). A record
// already in etcd is left alone when it holds the same trunk, and
// reported when it differs; every record is then read back from etcd and
// compared with the source, field by field. Running it again is safe.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trunkd migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from, to, keyFile string
	fs.StringVar(&from, "from", "", "source: bolt://`PATH` of a trunkd database (not in use by a running trunkd)")
	fs.StringVar(&to, "to", "", "destination: etcd://host:port[,host:port...]")
	fs.StringVar(&keyFile, "secret-key-file", "", "the secret key `file` the source was written with (every node must use it too)")
	cfg := &Config{}
	clusterFlags(fs, cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := applyEnv(fs, getenv); err != nil {
		fmt.Fprintln(stderr, "trunkd migrate:", err)
		return 2
	}
	if !strings.HasPrefix(from, "bolt://") || !strings.HasPrefix(to, "etcd://") || keyFile == "" {
		fmt.Fprintln(stderr, "trunkd migrate: want --from bolt://PATH --to etcd://host:port[,...] --secret-key-file FILE")
		return 2
	}
	cfg.Store = to
	if err := cfg.parseStore(); err != nil {
		fmt.Fprintln(stderr, "trunkd migrate:", err)
		return 2
	}
	n, err := runMigrate(ctx, strings.TrimPrefix(from, "bolt://"), keyFile, &cfg.Cluster, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "trunkd migrate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "migrated and verified %d trunks\n", n)
	return 0
}

func runMigrate(ctx context.Context, path, keyFile string, cl *ClusterConfig, stdout io.Writer) (int, error) {
	key, err := store.ReadKey(keyFile)
	if err != nil {
		return 0, fmt.Errorf("secret key: %w", err)
	}
	src, err := store.Open(path, key)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	ec, err := cl.etcdConfig()
	if err != nil {
		return 0, err
	}
	dst, err := etcd.Open(ctx, ec, key)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	codec, err := record.NewCodec(key)
	if err != nil {
		return 0, err
	}
	var written, kept, n int
	var differ []string
	err = src.ForEachRecord(ctx, func(id string, v []byte) error {
		n++
		want, err := codec.Decode(id, v)
		if err != nil {
			return err
		}
		wrote, err := dst.PutRecord(ctx, id, v)
		if err != nil {
			return err
		}
		got, err := dst.GetTrunk(ctx, id)
		if err != nil {
			return fmt.Errorf("verify %q: %w", id, err)
		}
		want.Meta.Revision = got.Meta.Revision // revisions are the store's own
		switch {
		case reflect.DeepEqual(got, want) && wrote:
			written++
		case reflect.DeepEqual(got, want):
			kept++
		default:
			differ = append(differ, id)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "%d trunks in the source: %d copied, %d already in etcd and equal\n", n, written, kept)
	if len(differ) > 0 {
		return 0, fmt.Errorf("%d trunks already in etcd differ from the source and were left as they are: %s", len(differ), strings.Join(differ, ", "))
	}
	return n, nil
}
