package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pxewim/pxewim/iso"
	"github.com/pxewim/pxewim/wim"
)

// extensionAllowed reports whether a file of this name may be uploaded at all.
func (s *Server) extensionAllowed(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	switch ext {
	case ".wim", ".esd", ".iso":
		return true
	}
	for _, a := range s.cfg.AllowExt {
		if strings.EqualFold(a, ext) {
			return true
		}
	}
	return false
}

// validate runs Config.Validate or the built-in Validate.
func (s *Server) validate(ctx context.Context, p string) error {
	if s.cfg.Validate != nil {
		return s.cfg.Validate(ctx, p)
	}
	return validateWith(ctx, p, s.cfg.Cache)
}

// Validate is the built-in check of an uploaded file: a .wim or .esd must open and pass
// (*wim.Archive).Verify (metadata, every blob's SHA-1, integrity table); an .iso must open as
// ISO 9660, Joliet or UDF; any other file must not be empty.
func Validate(ctx context.Context, p string) error {
	return validateWith(ctx, p, nil)
}

// validateWith is Validate decoding through cache (nil: a private one).
func validateWith(ctx context.Context, p string, cache *wim.Cache) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return errors.New("empty file")
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".wim", ".esd":
		a, err := wim.Open(f, st.Size(), &wim.Options{Cache: cache})
		if err != nil {
			return fmt.Errorf("not a valid WIM: %w", err)
		}
		if a.MissingParts() > 0 || a.Header().TotalParts > 1 {
			return errors.New("part of a split WIM: upload a single-file WIM")
		}
		if err := a.Verify(ctx, nil); err != nil {
			return fmt.Errorf("WIM verification failed: %w", err)
		}
	case ".iso":
		if _, err := iso.Open(f, st.Size()); err != nil {
			return fmt.Errorf("not a valid ISO image: %w", err)
		}
	}
	return nil
}
