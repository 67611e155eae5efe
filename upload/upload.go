// Package upload is pxewim's embedded SFTP server for admins: they put images into the store
// with any SFTP client (OpenSSH sftp, WinSCP) and the boot server publishes them at once.
//
// Access: SSH public-key authentication against an authorized_keys file (re-read when it
// changes); no passwords, no shell, only the "sftp" subsystem. The server's host key is made
// on first start if its file is missing.
//
// What a client sees: "/" is the store, listed and readable but not writable; "/incoming" is
// the one writable folder, private to the SSH session. A file put at /incoming/dir/name.wim is
// written to <store>/<IncomingDir>/<session>/dir/name.wim. When the client closes it, the
// file is synced, validated (a .wim or .esd opens and passes wim Verify: every blob's SHA-1;
// an .iso opens as ISO 9660/Joliet/UDF; other extensions only if allow-listed) and then renamed
// to <store>/dir/name.wim, replacing any older file of that name, and Config.OnPublish is
// called. The rename is atomic, so readers of the store see the old image or the whole new
// one, never a part. A rejected upload is deleted; the reason goes back to the client as the
// SFTP status of the close (pkg/sftp and WinSCP show it; OpenSSH's sftp shows only the status
// code, so the reason is also written to the session's stderr, which OpenSSH prints) and to
// the log. Uploads cut off before close are discarded, never published.
//
// Confinement: every path is resolved through os.Root on the store folder, so "..", absolute
// paths and symbolic links cannot reach outside it; writes outside /incoming, renames,
// removals outside /incoming and link creation are refused. Names starting with "." are
// refused, so nothing is published into the incoming area or other hidden folders.
package upload

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pxewim/pxewim/wim"
)

// Config configures a Server.
type Config struct {
	// Addr is where ListenAndServe listens, e.g. "127.0.0.1:2222" or ":2222".
	Addr string
	// HostKeyPath is the server's private host key; an ed25519 key is made there if missing.
	HostKeyPath string
	// AuthorizedKeysPath lists the admins' public keys (OpenSSH authorized_keys format).
	AuthorizedKeysPath string
	// StoreDir is the store folder images are published into.
	StoreDir string
	// IncomingDir is where uploads are written before validation: a folder inside StoreDir
	// (so publishing is a rename within one file system), relative to it or absolute.
	// "" means ".incoming". Catalogs should skip it (like every name starting with ".").
	IncomingDir string
	// AllowExt lists extensions (".img") accepted without validation besides the validated
	// .wim, .esd and .iso; nil means DefaultAllowExt.
	AllowExt []string
	// MaxBytes bounds one uploaded file; 0 means no bound.
	MaxBytes int64
	// MinFreeBytes is the space uploads must leave free on the store's file system: a write
	// that would go below it fails (checked when a file is opened and every 16 MiB written).
	// 0 means DefaultMinFreeBytes; a negative value turns the check off.
	MinFreeBytes int64
	// Validate replaces the built-in validation (see Validate); it gets the absolute path of
	// the complete uploaded file.
	Validate func(ctx context.Context, path string) error
	// Cache is the chunk cache the built-in validation decodes WIM metadata through (the
	// daemon's one shared cache); nil gives each validated WIM a private one.
	Cache *wim.Cache
	// OnPublish is called with the store-relative slash path of each published file.
	OnPublish func(name string)
	// Logger receives connection and upload events; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultAllowExt are the extensions accepted as is: floppy and disk images for memdisk.
var DefaultAllowExt = []string{".img", ".ima"}

// Server is the SFTP upload server.
type Server struct {
	cfg      Config
	store    *os.Root
	incoming string // IncomingDir relative to the store, slash-separated
	sshCfg   *ssh.ServerConfig
	log      *slog.Logger
	keys     *authorizedKeys
	seq      atomic.Uint64
	// freeBytes reports the store file system's free space (statfs; tests replace it).
	freeBytes func() (int64, error)
	wg        sync.WaitGroup
}

// New checks cfg, loads (or makes) the host key and reads the authorized keys.
func New(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" || cfg.HostKeyPath == "" || cfg.AuthorizedKeysPath == "" {
		return nil, errors.New("upload: StoreDir, HostKeyPath and AuthorizedKeysPath are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AllowExt == nil {
		cfg.AllowExt = DefaultAllowExt
	}
	inc, err := incomingRel(cfg.StoreDir, cfg.IncomingDir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("upload: store: %w", err)
	}
	if err := root.MkdirAll(inc, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("upload: incoming folder %s: %w", inc, err)
	}
	hostKey, err := loadOrMakeHostKey(cfg.HostKeyPath, cfg.Logger)
	if err != nil {
		root.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, store: root, incoming: filepath.ToSlash(inc), log: cfg.Logger,
		keys: &authorizedKeys{path: cfg.AuthorizedKeysPath}}
	s.freeBytes = func() (int64, error) { return statfsFree(cfg.StoreDir) }
	if _, err := s.keys.current(); err != nil {
		root.Close()
		return nil, err
	}
	s.sshCfg = &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		ServerVersion:     "SSH-2.0-pxewim",
		MaxAuthTries:      6,
	}
	s.sshCfg.AddHostKey(hostKey)
	return s, nil
}

// incomingRel returns the incoming folder relative to the store, refusing one outside it.
func incomingRel(store, dir string) (string, error) {
	if dir == "" {
		return ".incoming", nil
	}
	if filepath.IsAbs(dir) {
		absStore, err := filepath.Abs(store)
		if err != nil {
			return "", fmt.Errorf("upload: store: %w", err)
		}
		rel, err := filepath.Rel(absStore, dir)
		if err != nil {
			return "", fmt.Errorf("upload: incoming folder %s: %w", dir, err)
		}
		dir = rel
	}
	dir = filepath.Clean(dir)
	if dir == "." || !filepath.IsLocal(dir) {
		return "", fmt.Errorf("upload: incoming folder %s must be a folder inside the store %s (publishing renames within it)", dir, store)
	}
	return dir, nil
}

// loadOrMakeHostKey reads the host key at p, making an ed25519 key there first if p is missing.
func loadOrMakeHostKey(p string, log *slog.Logger) (ssh.Signer, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("upload: making host key: %w", gerr)
		}
		block, merr := ssh.MarshalPrivateKey(priv, "pxewim upload host key")
		if merr != nil {
			return nil, fmt.Errorf("upload: making host key: %w", merr)
		}
		b = pem.EncodeToMemory(block)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("upload: host key folder: %w", err)
		}
		// O_EXCL: two servers starting at once must not overwrite each other's key.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("upload: writing host key: %w", err)
		}
		_, werr := f.Write(b)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("upload: writing host key %s: %w", p, werr)
		}
		signer, _ := ssh.NewSignerFromKey(priv)
		log.Info("upload: made a new SSH host key", "path", p, "fingerprint", ssh.FingerprintSHA256(signer.PublicKey()))
		return signer, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upload: host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("upload: host key %s: %w", p, err)
	}
	return signer, nil
}

// HostKey returns the server's public host key (for known_hosts).
func (s *Server) HostKey() ssh.PublicKey {
	b, err := os.ReadFile(s.cfg.HostKeyPath)
	if err != nil {
		return nil
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil
	}
	return signer.PublicKey()
}

// checkKey accepts a client key listed in the authorized_keys file.
func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ok, err := s.keys.allowed(key)
	if err != nil {
		s.log.Error("upload: authorized keys", "err", err)
		return nil, err
	}
	if !ok {
		s.log.Warn("upload: key refused", "user", meta.User(), "remote", meta.RemoteAddr().String(),
			"key", key.Type()+" "+ssh.FingerprintSHA256(key))
		return nil, fmt.Errorf("upload: key %s is not authorized", ssh.FingerprintSHA256(key))
	}
	return &ssh.Permissions{Extensions: map[string]string{"key": ssh.FingerprintSHA256(key)}}, nil
}

// ListenAndServe listens on cfg.Addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if s.cfg.Addr == "" {
		return errors.New("upload: no listen address")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts SSH connections on ln until ctx ends, then closes ln and every connection
// and waits for them. Uploads cut off this way are discarded.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("upload: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

// Close releases the store folder handle.
func (s *Server) Close() error { return s.store.Close() }
