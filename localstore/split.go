package localstore

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/pxewim/pxewim/catalog"
)

// Split WIMs. "x.swm:N/path" enters image N of the split set that x.swm belongs to: the .swm
// files of its folder with the same GUID (catalog.GroupSplit), read across all parts. Any part
// names its set; the catalog lists the set under part 1. An incomplete or inconsistent set
// (a missing part, two files for one part, parts that disagree) is not served: every open
// fails with fs.ErrNotExist and the problem, naming the parts by number.
//
// An open set is cached like a WIM, under its part's path plus the stamp (paths, sizes,
// mtimes) of all .swm files of the folder, so a part added, replaced or removed opens the set
// again; each acquire lists the folder (one ReadDir) to know that. The background
// verification of WIM files (verify.go) does not cover split parts yet.

// acquireSplit is acquire for a split part.
func (s *Store) acquireSplit(wimPath string) (*openWIM, error) {
	real, err := resolveFold(s.rootFS, wimPath)
	if err != nil {
		return nil, err
	}
	st, err := fs.Stat(s.rootFS, real)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", real, fs.ErrNotExist)
	}
	sibs, err := catalog.SplitSiblings(s.rootFS, real)
	if err != nil {
		return nil, fmt.Errorf("listing the parts of split WIM %s: %w", real, err)
	}
	// The key holds the version of every part (and of part 1: it is among the siblings), so
	// a set found under it is current.
	key := real + "\x00" + catalog.SplitStamp(sibs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropStaleSplit(real, key)
	for {
		s.tick++
		if ow, ok := s.wims[key]; ok {
			ow.refs++
			ow.used = s.tick
			return ow, nil
		}
		ch, busy := s.opening[key]
		if !busy {
			s.opening[key] = make(chan struct{})
			break
		}
		s.mu.Unlock() // another request opens the set: wait for it
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
	ow, err := s.openSplit(real, sibs)
	s.mu.Lock()
	s.unclaim(key)
	if err != nil {
		return nil, fmt.Errorf("opening split WIM %s: %w", real, err)
	}
	ow.size, ow.mtime = st.Size(), st.ModTime()
	return s.addWIM(key, ow), nil
}

// openSplit groups the folder's parts and opens the set real belongs to.
func (s *Store) openSplit(real string, sibs []catalog.PartFile) (*openWIM, error) {
	sets, bad := catalog.GroupSplit(s.rootFS, sibs)
	for _, b := range bad {
		if b.Path == real {
			return nil, fmt.Errorf("%s", b.Problems[0].What)
		}
	}
	for _, set := range sets {
		for _, p := range set.Parts {
			if p.Path != real {
				continue
			}
			if err := set.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
			}
			arch, closer, err := catalog.OpenSplitSet(s.rootFS, set, s.cache)
			if err != nil {
				return nil, err
			}
			return &openWIM{arch: arch, closer: closer}, nil
		}
	}
	return nil, fmt.Errorf("%s changed while listing its folder: %w", real, fs.ErrNotExist)
}

// dropStaleSplit evicts the sets opened from real under another stamp. Called locked.
func (s *Store) dropStaleSplit(real, key string) {
	for k := range s.wims {
		if k != key && strings.HasPrefix(k, real+"\x00") {
			s.evict(k)
		}
	}
}
