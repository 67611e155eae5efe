package sftpstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// session is one SSH connection with its SFTP client and the remote files opened on it.
type session struct {
	ssh  *ssh.Client
	sftp *sftp.Client

	mu      sync.Mutex
	handles map[fileID]*sftp.File // pkg/sftp File.ReadAt is safe for concurrent use
}

// fileID is one version of a remote file: a handle opened on an older version (still readable
// after the server replaced the file) must not serve a newer one.
type fileID struct {
	path  string
	size  int64
	mtime int64
}

func (se *session) close() {
	se.sftp.Close()
	se.ssh.Close()
}

// ErrHostKey reports a server whose host key is unknown or does not match known_hosts.
var ErrHostKey = errors.New("host key not trusted")

// ErrChanged reports a remote file that changed (size or modification time) while it was open.
var ErrChanged = errors.New("file changed on the server")

// errFatal marks errors that retrying cannot fix (host key, authentication, configuration).
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// clientConfig builds the SSH client configuration: keys only, known_hosts checked.
func clientConfig(cfg *Config, loc Location) (*ssh.ClientConfig, error) {
	if len(cfg.KeyFiles) == 0 {
		return nil, errors.New("sftpstore: no private key file configured")
	}
	var signers []ssh.Signer
	for _, kf := range cfg.KeyFiles {
		pem, err := os.ReadFile(kf)
		if err != nil {
			return nil, fmt.Errorf("sftpstore: reading private key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("sftpstore: private key %s: %w (encrypted keys are not supported)", kf, err)
		}
		signers = append(signers, signer)
	}
	if len(cfg.KnownHostsFiles) == 0 {
		return nil, errors.New("sftpstore: no known_hosts file configured (host keys are always checked)")
	}
	check, err := knownhosts.New(cfg.KnownHostsFiles...)
	if err != nil {
		return nil, fmt.Errorf("sftpstore: known_hosts: %w", err)
	}
	files := strings.Join(cfg.KnownHostsFiles, ", ")
	return &ssh.ClientConfig{
		User: loc.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := check(host, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) {
				fp := key.Type() + " " + ssh.FingerprintSHA256(key)
				if len(ke.Want) == 0 {
					return fmt.Errorf("%w: %s offers %s, which is not in %s (add it with ssh-keyscan after checking it)",
						ErrHostKey, host, fp, files)
				}
				return fmt.Errorf("%w: %s offers %s, which does not match %s (line %d): refusing to connect",
					ErrHostKey, host, fp, ke.Want[0].Filename, ke.Want[0].Line)
			}
			return err
		},
		Timeout: cfg.DialTimeout,
	}, nil
}

// dial opens a new SSH connection and SFTP session.
func (s *Store) dial(ctx context.Context) (*session, error) {
	d := net.Dialer{Timeout: s.sshCfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", s.loc.Addr())
	if err != nil {
		return nil, fmt.Errorf("sftpstore: dialing %s: %w", s.loc.Addr(), err)
	}
	// The handshake has no context of its own: bound it by the dial timeout.
	nc.SetDeadline(time.Now().Add(s.sshCfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(nc, s.loc.Addr(), s.sshCfg)
	if err != nil {
		nc.Close()
		err = fmt.Errorf("sftpstore: ssh to %s@%s: %w", s.loc.User, s.loc.Addr(), err)
		if errors.Is(err, ErrHostKey) || strings.Contains(err.Error(), "unable to authenticate") {
			return nil, errFatal{err}
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	sc := ssh.NewClient(c, chans, reqs)
	fc, err := sftp.NewClient(sc, sftp.MaxPacketUnchecked(s.maxPacket))
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("sftpstore: starting sftp on %s: %w", s.loc.Addr(), err)
	}
	return &session{ssh: sc, sftp: fc, handles: map[fileID]*sftp.File{}}, nil
}

// current returns the live session, dialing one if there is none.
func (s *Store) current(ctx context.Context) (*session, error) {
	s.mu.Lock()
	se := s.sess
	s.mu.Unlock()
	if se != nil {
		return se, nil
	}
	s.dialMu.Lock() // one dial at a time; the others wait for its result
	defer s.dialMu.Unlock()
	s.mu.Lock()
	se = s.sess
	s.mu.Unlock()
	if se != nil {
		return se, nil
	}
	se, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		se.close()
		return nil, fs.ErrClosed
	}
	if s.dials > 0 {
		s.reconnects.Add(1)
		s.log.Info("sftp store reconnected", "addr", s.loc.Addr())
	}
	s.dials++
	s.sess = se
	return se, nil
}

// drop forgets a session that failed, so the next operation dials again.
func (s *Store) drop(se *session, cause error) {
	s.mu.Lock()
	if s.sess == se {
		s.sess = nil
		s.log.Warn("sftp store connection lost", "addr", s.loc.Addr(), "err", cause)
	}
	s.mu.Unlock()
	se.close()
}

// isConnError reports whether err means the connection (not the file) failed.
func isConnError(err error) bool {
	var st *sftp.StatusError
	var fatal errFatal
	switch {
	case errors.As(err, &st), errors.As(err, &fatal),
		errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission),
		errors.Is(err, fs.ErrInvalid), errors.Is(err, ErrChanged), errors.Is(err, errEscape),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// do runs op on a live session, redialing with backoff and retrying when the connection drops.
func (s *Store) do(ctx context.Context, what string, op func(*session) error) error {
	delay := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		se, err := s.current(ctx)
		if err == nil {
			err = op(se)
			if err == nil || !isConnError(err) {
				return err
			}
			s.drop(se, err)
		} else if !isConnError(err) {
			return err
		}
		if attempt >= s.maxRetries {
			return fmt.Errorf("sftpstore: %s: giving up after %d attempts: %w", what, attempt+1, err)
		}
		s.retries.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("sftpstore: %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// handle returns an open remote file for real on se, checking it is still the file the caller
// opened (size and modification time): bytes of a replaced file are never mixed with old ones.
// Up to maxHandles files stay open per session; beyond that a handle serves one read and the
// returned release closes it.
func (se *session) handle(real string, size int64, mtime time.Time) (h *sftp.File, release func(), err error) {
	se.mu.Lock()
	defer se.mu.Unlock()
	id := fileID{real, size, mtime.UnixNano()}
	if h, ok := se.handles[id]; ok {
		return h, func() {}, nil
	}
	h, err = se.sftp.Open(real)
	if err != nil {
		return nil, nil, err
	}
	st, err := h.Stat()
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	if st.Size() != size || !st.ModTime().Equal(mtime) {
		h.Close()
		return nil, nil, fmt.Errorf("sftpstore: %s: %w (size %d, now %d)", real, ErrChanged, size, st.Size())
	}
	if len(se.handles) >= maxHandles {
		return h, func() { h.Close() }, nil
	}
	se.handles[id] = h
	return h, func() {}, nil
}

// maxHandles bounds the remote files kept open per connection.
const maxHandles = 256
