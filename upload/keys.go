package upload

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// authorizedKeys is an authorized_keys file, re-read when its size or modification time
// changes so admins can add and revoke keys without a restart.
type authorizedKeys struct {
	path string

	mu    sync.Mutex
	size  int64
	mtime time.Time
	keys  [][]byte // wire-format public keys
}

// maxAuthorizedKeys bounds the file read (hostile or mistaken huge files).
const maxAuthorizedKeys = 4 << 20

func (a *authorizedKeys) current() ([][]byte, error) {
	st, err := os.Stat(a.path)
	if err != nil {
		return nil, fmt.Errorf("upload: authorized keys: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys != nil && st.Size() == a.size && st.ModTime().Equal(a.mtime) {
		return a.keys, nil
	}
	if st.Size() > maxAuthorizedKeys {
		return nil, fmt.Errorf("upload: authorized keys %s: %d bytes is too large", a.path, st.Size())
	}
	b, err := os.ReadFile(a.path)
	if err != nil {
		return nil, fmt.Errorf("upload: authorized keys: %w", err)
	}
	keys, err := parseAuthorizedKeys(b)
	if err != nil {
		return nil, fmt.Errorf("upload: authorized keys %s: %w", a.path, err)
	}
	a.keys, a.size, a.mtime = keys, st.Size(), st.ModTime()
	return keys, nil
}

// parseAuthorizedKeys returns the keys of an authorized_keys file. Options are ignored except
// that a line with options this server cannot honour is refused rather than widened.
func parseAuthorizedKeys(b []byte) ([][]byte, error) {
	keys := [][]byte{}
	line := 0
	for len(bytes.TrimSpace(b)) > 0 {
		line++
		var rest []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b, rest = b[:i], b[i+1:]
		} else {
			rest = nil
		}
		cur := bytes.TrimSpace(b)
		b = rest
		if len(cur) == 0 || cur[0] == '#' {
			continue
		}
		key, _, opts, _, err := ssh.ParseAuthorizedKey(cur)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for _, o := range opts {
			if o != "restrict" && o != "no-pty" && o != "no-port-forwarding" && o != "no-agent-forwarding" &&
				o != "no-X11-forwarding" && o != "no-user-rc" {
				return nil, fmt.Errorf("line %d: option %q is not supported (remove it or the line)", line, o)
			}
		}
		keys = append(keys, key.Marshal())
	}
	return keys, nil
}

// allowed reports whether key is listed.
func (a *authorizedKeys) allowed(key ssh.PublicKey) (bool, error) {
	keys, err := a.current()
	if err != nil {
		return false, err
	}
	wire := key.Marshal()
	for _, k := range keys {
		if bytes.Equal(k, wire) {
			return true, nil
		}
	}
	return false, nil
}
