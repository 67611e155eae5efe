package upload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Check reports everything New would stop on for cfg, without creating anything ("pxewim
// check"): the store folder, the incoming folder (New makes it inside the store), the host key
// (read and parsed; when it is missing, the folder New would write a new one into) and the
// authorized keys (read and parsed). creates lists what New would make on disk; every problem
// comes back in err, joined. The listen address is not checked here.
func Check(cfg Config) (creates []string, err error) {
	var errs []error
	if cfg.StoreDir == "" || cfg.HostKeyPath == "" || cfg.AuthorizedKeysPath == "" {
		return nil, errors.New("upload: StoreDir, HostKeyPath and AuthorizedKeysPath are required")
	}
	if st, serr := os.Stat(cfg.StoreDir); serr != nil {
		errs = append(errs, fmt.Errorf("upload: store: %w", serr))
	} else if !st.IsDir() {
		errs = append(errs, fmt.Errorf("upload: store %s is not a folder", cfg.StoreDir))
	} else if inc, ierr := incomingRel(cfg.StoreDir, cfg.IncomingDir); ierr != nil {
		errs = append(errs, ierr)
	} else {
		c, err := wouldMakeDir(filepath.Join(cfg.StoreDir, inc))
		creates = append(creates, c...)
		if err != nil {
			errs = append(errs, fmt.Errorf("upload: incoming folder: %w", err))
		}
	}
	b, kerr := os.ReadFile(cfg.HostKeyPath)
	switch {
	case errors.Is(kerr, fs.ErrNotExist):
		c, err := wouldMakeDir(filepath.Dir(cfg.HostKeyPath))
		creates = append(creates, c...)
		if err != nil {
			errs = append(errs, fmt.Errorf("upload: host key folder: %w", err))
		} else {
			creates = append(creates, cfg.HostKeyPath)
		}
	case kerr != nil:
		errs = append(errs, fmt.Errorf("upload: host key: %w", kerr))
	default:
		if _, err := ssh.ParsePrivateKey(b); err != nil {
			errs = append(errs, fmt.Errorf("upload: host key %s: %w", cfg.HostKeyPath, err))
		}
	}
	if _, err := (&authorizedKeys{path: cfg.AuthorizedKeysPath}).current(); err != nil {
		errs = append(errs, err)
	}
	return creates, errors.Join(errs...)
}

// wouldMakeDir reports the folders os.MkdirAll(dir) would make (outermost first) and an error
// when it would fail: a part of the path is not a folder, or the deepest existing folder is
// not writable by this process.
func wouldMakeDir(dir string) ([]string, error) {
	var missing []string
	p := filepath.Clean(dir)
	for {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return nil, fmt.Errorf("%s: %s is not a folder", dir, p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		missing = append([]string{p}, missing...)
		parent := filepath.Dir(p)
		if parent == p {
			return nil, fmt.Errorf("%s: no existing parent folder", dir)
		}
		p = parent
	}
	if len(missing) > 0 {
		if err := syscall.Access(p, 2 /* W_OK */); err != nil {
			return nil, fmt.Errorf("%s: cannot make %s inside %s: %w", dir, missing[0], p, &fs.PathError{Op: "access", Path: p, Err: err})
		}
	}
	return missing, nil
}
