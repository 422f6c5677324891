package secretfile

import (
	"os"
	"path/filepath"
)

// Create writes data to a new file at path with permission perm (0o600 for
// a secret), then syncs the file and its directory. It fails with an error
// satisfying errors.Is(err, fs.ErrExist) when path exists. On any other
// failure after the file was created, the file is removed, so a later start
// does not find a partial secret.
func Create(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
