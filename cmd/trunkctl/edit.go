package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/trunk"
)

// cmdEdit is kubectl edit for a trunk: the record goes to a file, $EDITOR
// (then $VISUAL, then vi) opens it, and what is saved is written back with
// the revision that was read and the secrets kept. On any failure the
// edited file is kept and its path said, so nothing typed is lost.
func cmdEdit(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("edit", "TRUNK_ID")
	rest, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	format := "yaml"
	if c.g.output == "json" {
		format = "json"
	}
	cl, err := c.dial(ctx)
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
	orig, err := encodeDoc(newRecordDoc(r), format)
	if err != nil {
		return err
	}
	path, err := writeTemp(rest[0], format, orig)
	if err != nil {
		return err
	}
	edited, err := c.runEditor(ctx, path)
	if err != nil {
		os.Remove(path)
		return err
	}
	if bytes.Equal(edited, orig) {
		os.Remove(path)
		fmt.Fprintln(c.stdout, "edit cancelled: no changes made")
		return nil
	}
	if err := writeEdited(ctx, cl, rest[0], path, edited); err != nil {
		return fmt.Errorf("%w\nyour edit is kept in %s (trunkctl update -f %s retries it)", err, path, path)
	}
	os.Remove(path)
	fmt.Fprintf(c.stdout, "trunk %s edited\n", rest[0])
	return nil
}

// writeEdited sends the edited record back: UpdateTrunk with the revision
// it names (ERR_CONFLICT when someone else wrote in between) and the
// secrets kept unless the file gives new ones.
func writeEdited(ctx context.Context, cl *rpc.Client, id, path string, edited []byte) error {
	f, err := parseTrunkFile(path, edited, trunk.Defaults())
	if err != nil {
		return err
	}
	if f.doc.TrunkID != id {
		return fmt.Errorf("trunk_id was changed to %q: a trunk cannot be renamed (add a new one and remove %s)", f.doc.TrunkID, id)
	}
	err = cl.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{IfRevision: f.revision(), KeepSecrets: true, Trunk: f.doc.Trunk})
	if rpc.ErrorCode(err) == rpc.CodeConflict {
		return fmt.Errorf("trunk %s was changed by someone else while you edited it; nothing was written: %w", id, err)
	}
	return err
}

func writeTemp(id, format string, data []byte) (string, error) {
	f, err := os.CreateTemp("", "trunkctl-edit-"+filepath.Base(id)+"-*."+format)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), f.Close()
}

// runEditor runs the user's editor on path through the shell (so EDITOR
// may carry arguments, as git and kubectl allow) and returns what was
// saved.
func (c *cli) runEditor(ctx context.Context, path string) ([]byte, error) {
	editor := c.getenv("EDITOR")
	if editor == "" {
		editor = c.getenv("VISUAL")
	}
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "sh", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.stdout, c.stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("editor %q: %w", editor, err)
	}
	return os.ReadFile(path)
}
