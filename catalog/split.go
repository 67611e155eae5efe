package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// Split WIMs. wimlib-imagex split (and DISM /Split-Image) cut one WIM into parts x.swm, x2.swm,
// x3.swm, ...: part 1 holds the images' metadata, every part holds some of the file data, and
// every header names the set (GUID), the part number and the part count. The catalog lists a
// set once, under the path of part 1, with the paths of all its parts; the store serves files
// inside it as "x.swm:N/path" and winpe entries boot it through a single WIM synthesised from
// the parts. Parts are grouped by GUID among the .swm files of one folder, never by name: a
// file named like a part that belongs to another set is a problem, and so are a missing part,
// two files claiming one part number, and parts that disagree on the part count, the
// compression or the chunk size.

// SplitExt is the extension of split WIM parts.
const SplitExt = ".swm"

// maxSplitFiles bounds the .swm files read in one folder.
const maxSplitFiles = 4096

// maxNamedMissing bounds the missing parts named one by one in a set's problems.
const maxNamedMissing = 8

// IsSplitPart reports whether a store path names a split WIM part (by its extension).
func IsSplitPart(p string) bool { return matchExt(p, SplitExt) }

// PartFile is one file of a split WIM set, as listed in File.Parts.
type PartFile struct {
	Path    string
	Size    int64
	ModTime time.Time
	Number  int // part number from its header
}

// SplitPart is one file of a split set with its header.
type SplitPart struct {
	PartFile
	Header wim.Header
}

// SplitSet is the files of one split WIM found in a folder: every .swm file there whose header
// has the set's GUID.
type SplitSet struct {
	GUID  [16]byte
	Total int // part count, from the header of the lowest part present
	// Parts are the files, by part number then path (a number appears twice only when two
	// files claim it, which is one of the Problems).
	Parts []SplitPart
	// Problems keep the set from being served, in words that name the parts by number.
	Problems []string
	// Missing are the part numbers no file has (the first maxNamedMissing), MissingCount all.
	Missing      []int
	MissingCount int
}

// Name is the set's store path: the path of part 1, or of the lowest part present.
func (s *SplitSet) Name() string { return s.Parts[0].Path }

// GUIDString is the set's GUID as wimlib-imagex info prints it.
func (s *SplitSet) GUIDString() string { return wim.Header{GUID: s.GUID}.GUIDString() }

// Err returns the set's problems as one error, nil when it is complete and consistent.
func (s *SplitSet) Err() error {
	if len(s.Problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(s.Problems, "; "))
}

// Files lists the set's files as File.Parts does.
func (s *SplitSet) Files() []PartFile {
	out := make([]PartFile, len(s.Parts))
	for i, p := range s.Parts {
		out[i] = p.PartFile
	}
	return out
}

// Stamp identifies the versions of the set's files (paths, sizes, mtimes).
func (s *SplitSet) Stamp() string { return SplitStamp(s.Files()) }

// SplitStamp identifies the versions of files (paths, sizes, mtimes): a store opens a set again
// when the stamp of its folder's .swm files changes.
func SplitStamp(files []PartFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%q %d %d;", f.Path, f.Size, f.ModTime.UnixNano())
	}
	return b.String()
}

// SplitSiblings lists the .swm files in the folder of name (a store path), with their sizes
// and mtimes (Number is not set), sorted by path. Symbolic links to files count.
func SplitSiblings(fsys fs.FS, name string) ([]PartFile, error) {
	dir := path.Dir(name)
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []PartFile
	for _, e := range ents {
		if e.IsDir() || !IsSplitPart(e.Name()) {
			continue
		}
		p := path.Join(dir, e.Name())
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			fi, err = fs.Stat(fsys, p)
		} else {
			fi, err = e.Info()
		}
		if err != nil || !fi.Mode().IsRegular() {
			continue // a dangling link, a file gone meanwhile
		}
		if len(out) == maxSplitFiles {
			return nil, fmt.Errorf("%s: more than %d split WIM parts in one folder", dir, maxSplitFiles)
		}
		out = append(out, PartFile{Path: p, Size: fi.Size(), ModTime: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b PartFile) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// GroupSplit reads the header of each file (all in one folder) and groups them into sets by
// GUID, sets sorted by Name. Files whose header cannot be read come back as bad, each a File
// with its problem; read failures other than bad content set bad.retry as scans do.
func GroupSplit(fsys fs.FS, files []PartFile) (sets []*SplitSet, bad []File) {
	byGUID := map[[16]byte]*SplitSet{}
	var order []*SplitSet
	for _, pf := range files {
		h, err := readPartHeader(fsys, pf)
		if err != nil {
			f := File{Path: pf.Path, Size: pf.Size, ModTime: pf.ModTime, Kind: "wim",
				Parts: []PartFile{pf}}
			var re *readError
			f.retry = errors.As(err, &re) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission)
			f.Problems = append(f.Problems, Problem{File: pf.Path, What: "unreadable WIM: " + err.Error(),
				Fix: "check the file (pxewim wim info " + pf.Path + "); copy it again if it was cut short"})
			bad = append(bad, f)
			continue
		}
		pf.Number = int(h.Part)
		s := byGUID[h.GUID]
		if s == nil {
			s = &SplitSet{GUID: h.GUID}
			byGUID[h.GUID] = s
			order = append(order, s)
		}
		s.Parts = append(s.Parts, SplitPart{PartFile: pf, Header: h})
	}
	for _, s := range order {
		slices.SortStableFunc(s.Parts, func(a, b SplitPart) int {
			if a.Number != b.Number {
				return a.Number - b.Number
			}
			return strings.Compare(a.Path, b.Path)
		})
		s.Total = int(s.Parts[0].Header.TotalParts)
		s.check()
	}
	for _, s := range order {
		s.foreignNames(order)
	}
	slices.SortFunc(order, func(a, b *SplitSet) int { return strings.Compare(a.Name(), b.Name()) })
	return order, bad
}

// check records what keeps the set from being served.
func (s *SplitSet) check() {
	name, guid := s.Name(), s.GUIDString()
	first := s.Parts[0].Header
	have := map[int][]string{}
	counts := map[int][]string{} // part count -> the files saying it
	for _, p := range s.Parts {
		h := p.Header
		have[p.Number] = append(have[p.Number], p.Path)
		counts[int(h.TotalParts)] = append(counts[int(h.TotalParts)], p.Path)
		switch {
		case h.Compression != first.Compression || h.ChunkSize != first.ChunkSize:
			s.Problems = append(s.Problems, fmt.Sprintf("part %d (%s) is %v with %d-byte chunks, part %d (%s) %v with %d-byte chunks (GUID %s): not one split set",
				h.Part, p.Path, h.Compression, h.ChunkSize, first.Part, name, first.Compression, first.ChunkSize, guid))
		case h.Pipable != first.Pipable || h.Version != first.Version:
			s.Problems = append(s.Problems, fmt.Sprintf("part %d (%s) and part %d (%s) differ in WIM version or pipable format (GUID %s): not one split set",
				h.Part, p.Path, first.Part, name, guid))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(have)) {
		if paths := have[n]; len(paths) > 1 {
			s.Problems = append(s.Problems, fmt.Sprintf("part %d of %d of %s (GUID %s) is in %d files: %s: keep one",
				n, s.Total, name, guid, len(paths), strings.Join(paths, ", ")))
		}
	}
	if len(counts) > 1 {
		// Which parts are missing depends on whom to believe: say only that they disagree.
		var says []string
		for _, n := range slices.Sorted(maps.Keys(counts)) {
			says = append(says, fmt.Sprintf("%s: %d", strings.Join(firstN(counts[n], 3), ", "), n))
		}
		s.Problems = append(s.Problems, fmt.Sprintf("the parts of %s (GUID %s) disagree on the part count (%s): not one split set",
			name, guid, strings.Join(says, "; ")))
		return
	}
	for n := 1; n <= s.Total; n++ {
		if len(have[n]) > 0 {
			continue
		}
		s.MissingCount++
		if len(s.Missing) < maxNamedMissing {
			s.Missing = append(s.Missing, n)
			s.Problems = append(s.Problems, fmt.Sprintf("part %d of %d of %s (GUID %s) is missing", n, s.Total, name, guid))
		}
	}
	if more := s.MissingCount - len(s.Missing); more > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d more parts of %s (GUID %s) are missing", more, name, guid))
	}
}

// firstN is the first n paths, and how many more.
func firstN(paths []string, n int) []string {
	if len(paths) <= n {
		return paths
	}
	return append(slices.Clone(paths[:n]), fmt.Sprintf("%d more", len(paths)-n))
}

// foreignNames adds, for each missing part whose wimlib name (x3.swm beside x.swm) is taken
// by a part of another set, that it belongs to another set.
func (s *SplitSet) foreignNames(sets []*SplitSet) {
	if s.Parts[0].Number != 1 {
		return // the names are those of the set whose part 1 is here
	}
	for _, n := range s.Missing {
		want := s.PartName(n)
		if want == "" {
			continue
		}
		for _, o := range sets {
			if o == s {
				continue
			}
			for _, p := range o.Parts {
				if strings.EqualFold(p.Path, want) {
					s.Problems = append(s.Problems, fmt.Sprintf("%s is not part %d of %s: it is part %d of %d of another split WIM (GUID %s)",
						p.Path, n, s.Name(), p.Number, p.Header.TotalParts, o.GUIDString()))
				}
			}
		}
	}
}

// PartName is the path wimlib-imagex split gives part n of the set (x.swm, x2.swm, ...),
// derived from the name of a part present; "" when the names do not follow that scheme.
func (s *SplitSet) PartName(n int) string {
	for _, p := range s.Parts {
		dir, base := path.Split(p.Path)
		ext := path.Ext(base)
		stem := base[:len(base)-len(ext)]
		if p.Number > 1 {
			suffix := strconv.Itoa(p.Number)
			if !strings.HasSuffix(stem, suffix) {
				continue
			}
			stem = stem[:len(stem)-len(suffix)]
		}
		if n == 1 {
			return dir + stem + ext
		}
		return dir + stem + strconv.Itoa(n) + ext
	}
	return ""
}

// readError marks a failure to read a file (not what it holds), worth retrying.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readPartHeader reads the header of one .swm file.
func readPartHeader(fsys fs.FS, pf PartFile) (wim.Header, error) {
	f, err := fsys.Open(pf.Path)
	if err != nil {
		return wim.Header{}, &readError{err}
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return wim.Header{}, fmt.Errorf("the store cannot read %s at random offsets", pf.Path)
	}
	n := &readNoter{r: ra}
	h, err := wim.ReadHeader(n, pf.Size)
	if err != nil && n.failed.Load() {
		return h, &readError{err}
	}
	return h, err
}

// FindSplitSet returns the split set the part at name belongs to, among the .swm files of its
// folder (name need not be part 1: any part names its set).
func FindSplitSet(fsys fs.FS, name string) (*SplitSet, error) {
	files, err := SplitSiblings(fsys, name)
	if err != nil {
		return nil, err
	}
	sets, bad := GroupSplit(fsys, files)
	for _, f := range bad {
		if strings.EqualFold(f.Path, name) {
			return nil, errors.New(f.Problems[0].What)
		}
	}
	// The exact path first; a store that matches names without regard to case may be asked
	// for "X.SWM" when the folder lists "x.swm".
	for _, same := range []func(a, b string) bool{func(a, b string) bool { return a == b }, strings.EqualFold} {
		for _, s := range sets {
			for _, p := range s.Parts {
				if same(p.Path, name) {
					return s, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
}

// OpenSplitSet opens a complete, consistent set as one archive through fsys (the parts are
// opened again: wim.Open checks their headers once more). The closer closes the parts' files.
func OpenSplitSet(fsys fs.FS, s *SplitSet, cache *wim.Cache) (*wim.Archive, io.Closer, error) {
	return openSplit(fsys, s, cache, nil)
}

// openSplit opens the parts, each ReaderAt passed through wrap when not nil.
func openSplit(fsys fs.FS, s *SplitSet, cache *wim.Cache, wrap func(io.ReaderAt) io.ReaderAt) (*wim.Archive, io.Closer, error) {
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	var files closers
	var parts []wim.Part
	for _, p := range s.Parts {
		f, err := fsys.Open(p.Path)
		if err != nil {
			files.Close()
			return nil, nil, fmt.Errorf("part %d of %d (%s): %w", p.Number, s.Total, p.Path, err)
		}
		files = append(files, f)
		ra, ok := f.(io.ReaderAt)
		if !ok {
			files.Close()
			return nil, nil, fmt.Errorf("the store cannot read %s at random offsets", p.Path)
		}
		if wrap != nil {
			ra = wrap(ra)
		}
		parts = append(parts, wim.Part{R: ra, Size: p.Size})
	}
	a, err := wim.Open(parts[0].R, parts[0].Size, &wim.Options{Parts: parts[1:], Cache: cache, Name: s.Name()})
	if err != nil {
		files.Close()
		return nil, nil, fmt.Errorf("split WIM %s (GUID %s): %w", s.Name(), s.GUIDString(), err)
	}
	if miss := a.MissingPartNumbers(1); len(miss) > 0 {
		// A part changed between reading the headers and opening (its GUID is not the set's).
		files.Close()
		return nil, nil, fmt.Errorf("part %d of %d of %s (GUID %s) is missing (changed while opening)",
			miss[0], s.Total, s.Name(), s.GUIDString())
	}
	return a, files, nil
}

// closers closes files together.
type closers []fs.File

func (c closers) Close() error {
	var errs []error
	for _, f := range c {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// splitFound takes the .swm files out of found (when WIMs are scanned at all) and groups them,
// folder by folder, into sets; parts whose header is unreadable come back as bad, their
// problem already set.
func splitFound(fsys fs.FS, found []File, sc map[string]Scanner) (rest []File, sets []*SplitSet, bad []File) {
	if sc[".wim"] == nil {
		return found, nil, nil
	}
	byDir := map[string][]PartFile{}
	var dirs []string
	for _, f := range found {
		if !IsSplitPart(f.Path) {
			rest = append(rest, f)
			continue
		}
		d := path.Dir(f.Path)
		if byDir[d] == nil {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], PartFile{Path: f.Path, Size: f.Size, ModTime: f.ModTime})
	}
	for _, d := range dirs {
		s, b := GroupSplit(fsys, byDir[d])
		sets = append(sets, s...)
		bad = append(bad, b...)
	}
	return rest, sets, bad
}

// scanSets scans each set (reusing prev's entry for a set whose files are unchanged).
func scanSets(ctx context.Context, fsys fs.FS, sets []*SplitSet, bad []File, old map[string][]File, cache *wim.Cache) [][]File {
	var out [][]File
	for _, b := range bad {
		out = append(out, []File{b})
	}
	for _, s := range sets {
		if ctx.Err() != nil {
			break
		}
		if o := old[s.Name()]; len(o) == 1 && !o[0].retry && o[0].Parts != nil && SplitStamp(o[0].Parts) == s.Stamp() {
			out = append(out, o)
			continue
		}
		f := File{Path: s.Name(), Kind: "wim", Parts: s.Files()}
		for _, p := range s.Parts {
			f.Size += p.Size
			if p.ModTime.After(f.ModTime) {
				f.ModTime = p.ModTime
			}
		}
		scanSet(fsys, s, &f, cache)
		out = append(out, []File{f})
	}
	return out
}

// scanSet fills f from a split set: its problems when it is incomplete or inconsistent (no
// images then: it cannot boot), else its images as for a WIM, decoded through cache.
func scanSet(fsys fs.FS, s *SplitSet, f *File, cache *wim.Cache) {
	if len(s.Problems) > 0 {
		for _, p := range s.Problems {
			f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable split WIM: " + p, Fix: s.fix()})
		}
		return
	}
	var noters []*readNoter
	a, closer, err := openSplit(fsys, s, cache, func(r io.ReaderAt) io.ReaderAt {
		n := &readNoter{r: r}
		noters = append(noters, n)
		return n
	})
	defer func() {
		for _, n := range noters {
			n.done(f)
		}
	}()
	if err != nil {
		f.retry = f.retry || !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) && len(noters) < len(s.Parts)
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable split WIM: " + err.Error(),
			Fix: "check the set (pxewim wim verify " + f.Path + " --ref '" + s.refGlob() + "'); copy the parts again"})
		return
	}
	defer closer.Close()
	scanArchive(a, f, nil)
}

// fix says what to do about a set's problems.
func (s *SplitSet) fix() string {
	var names []string
	for _, n := range s.Missing {
		if p := s.PartName(n); p != "" {
			names = append(names, p)
		}
	}
	if len(names) > 0 {
		return "copy the missing parts (" + strings.Join(names, ", ") + ") beside the others; every part of one set has the same GUID (pxewim wim info PART)"
	}
	return "keep exactly one file per part of one set in the folder (pxewim wim info PART shows each part's GUID and number); split the WIM again if in doubt"
}

// refGlob is a --ref glob for the set's parts.
func (s *SplitSet) refGlob() string {
	if p := s.PartName(1); p != "" {
		return strings.TrimSuffix(p, path.Ext(p)) + "*" + path.Ext(p)
	}
	return path.Join(path.Dir(s.Name()), "*"+SplitExt)
}

// splitNote describes a split set in File.Transcode and an informational problem.
func splitNote(f *File, h wim.Header) string {
	why := fmt.Sprintf("split WIM (%d parts): boot loaders read a single file", h.TotalParts)
	f.Problems = append(f.Problems, Problem{File: f.Path, What: why, Info: true,
		Fix: "pxewim serves the parts joined into one WIM, synthesised on the fly from their stored resources (nothing re-encoded); " +
			"to avoid that, join them: wimlib-imagex export " + f.Path + " all joined.wim --ref='" + refGlobOf(f) + "'"})
	return why
}

// refGlobOf is a --ref glob naming the parts of a set listed in the catalog.
func refGlobOf(f *File) string {
	if len(f.Parts) == 0 {
		return f.Path
	}
	s := &SplitSet{}
	for _, p := range f.Parts {
		s.Parts = append(s.Parts, SplitPart{PartFile: p})
	}
	return s.refGlob()
}

// OpenSplit opens the split set that the part at name belongs to (FindSplitSet, then
// OpenSplitSet): an incomplete or inconsistent set fails with its problems.
func OpenSplit(fsys fs.FS, name string, cache *wim.Cache) (*wim.Archive, io.Closer, error) {
	s, err := FindSplitSet(fsys, name)
	if err != nil {
		return nil, nil, err
	}
	return OpenSplitSet(fsys, s, cache)
}
