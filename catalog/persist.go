package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// The persistent catalog: after each scan the snapshot is written to Options.Persist, and a
// scan that has no previous snapshot (a start, `pxewim serve` after a restart) reads it back
// and reuses every entry whose file kept its size and mtime, so a restart does not re-read
// an unchanged store (2,000 WIMs: BENCHMARKS.md). The file is only a cache: it is ignored,
// whole, when it was written by another build of pxewim (its scanners may read files
// differently), for another store, or when it cannot be decoded; then the store is scanned.

// persistFormat changes when the file's layout changes.
const persistFormat = 1

// maxPersistBytes bounds what is read back (2,000 WIMs take about 2 MB).
const maxPersistBytes = 256 << 20

type persisted struct {
	Format  int
	Scanner string // which build wrote it (scannerID)
	Label   string // the store it describes
	Files   []File
}

var scannerOnce struct {
	sync.Once
	id string
}

// scannerID names the running build: the SHA-256 of the executable, so a catalog written by
// another build (whose scanners may find other things in the same files) is not trusted.
func scannerID() string {
	scannerOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			return
		}
		f, err := os.Open(exe)
		if err != nil {
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return
		}
		scannerOnce.id = hex.EncodeToString(h.Sum(nil)[:16])
	})
	return scannerOnce.id
}

// loadPersisted returns the snapshot saved for label at path, or nil with the reason it
// cannot be used (a missing file is not an error: nil, nil).
func loadPersisted(path, label string) (*Snapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: reading the saved catalog: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPersistBytes+1))
	if err != nil {
		return nil, fmt.Errorf("catalog: reading the saved catalog %s: %w", path, err)
	}
	if len(b) > maxPersistBytes {
		return nil, fmt.Errorf("catalog: saved catalog %s is larger than %d bytes: ignored", path, maxPersistBytes)
	}
	var p persisted
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&p); err != nil {
		return nil, fmt.Errorf("catalog: saved catalog %s cannot be decoded (ignored, the store is scanned): %w", path, err)
	}
	id := scannerID()
	switch {
	case p.Format != persistFormat:
		return nil, fmt.Errorf("catalog: saved catalog %s has format %d, not %d: ignored", path, p.Format, persistFormat)
	case id == "" || p.Scanner != id:
		return nil, fmt.Errorf("catalog: saved catalog %s was written by another build of pxewim: ignored", path)
	case p.Label != label:
		return nil, fmt.Errorf("catalog: saved catalog %s describes store %q, not %q: ignored", path, p.Label, label)
	}
	return &Snapshot{Files: p.Files}, nil
}

// savePersisted writes snap for label to path atomically (a temporary file renamed over it).
// Entries whose scan was cut short by a read error are left out, so the next start reads
// them again.
func savePersisted(path, label string, snap *Snapshot) error {
	id := scannerID()
	if id == "" {
		return errors.New("catalog: cannot name the running build: the catalog is not saved")
	}
	p := persisted{Format: persistFormat, Scanner: id, Label: label}
	skip := map[string]bool{}
	for _, f := range snap.Files {
		if f.retry {
			skip[f.Path] = true
			if f.In != "" {
				skip[f.In] = true
			}
		}
	}
	for _, f := range snap.Files {
		if skip[f.Path] || (f.In != "" && skip[f.In]) {
			continue
		}
		p.Files = append(p.Files, f)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&p); err != nil {
		return fmt.Errorf("catalog: encoding the catalog: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("catalog: saving the catalog: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("catalog: saving the catalog: %w", err)
	}
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("catalog: saving the catalog to %s: %w", path, err)
	}
	return nil
}
