package bcd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Registry value types (winnt.h REG_*).
const (
	RegNone                     uint32 = 0
	RegSZ                       uint32 = 1
	RegExpandSZ                 uint32 = 2
	RegBinary                   uint32 = 3
	RegDWORD                    uint32 = 4
	RegDWORDBigEndian           uint32 = 5
	RegLink                     uint32 = 6
	RegMultiSZ                  uint32 = 7
	RegResourceList             uint32 = 8
	RegFullResourceDescriptor   uint32 = 9
	RegResourceRequirementsList uint32 = 10
	RegQWORD                    uint32 = 11
)

// Limits enforced by WriteHive. The name limits are Windows' own; the value
// size limit keeps generated hives inside what hivex (HIVEX_MAX_VALUE_LEN,
// 8 MB) and the boot manager are willing to read.
const (
	MaxKeyNameLen   = 255     // UTF-16 code units
	MaxValueNameLen = 16383   // UTF-16 code units
	MaxClassLen     = 32767   // bytes of UTF-16 (the nk field is 16 bits)
	MaxValueSize    = 4 << 20 // bytes, format 1.4 and later
	MaxValueSize13  = 1 << 20 // bytes, format 1.3 (one cell per value)
	MaxDepth        = 512     // key nesting below the root
	MaxKeys         = 1 << 20 // keys in one hive
	// MaxHiveSize bounds an estimate of the written file (names, classes,
	// data and per-cell overhead). The layout can at most double it
	// (slack at bin ends), which keeps every offset inside 32 bits.
	MaxHiveSize = 1 << 30
)

// Key is one registry key: a name, its values and its subkeys. The root
// key's name is stored in the hive but is not part of any path (Windows
// shows the hive under the name it was loaded as, e.g. BCD00000000).
type Key struct {
	Name    string
	Class   string // optional class name, rarely used
	Values  []Value
	Subkeys []*Key
}

// Value is one named value of a key. An empty Name is the key's default
// value. Data is the raw bytes as stored (strings are UTF-16LE with their
// terminating NUL, see String).
type Value struct {
	Name string
	Type uint32
	Data []byte
}

// HiveOptions controls the parts of a hive that are not the tree itself.
type HiveOptions struct {
	// ModTime is written as every timestamp (base block, hbins, keys), so
	// the same tree and options always give the same bytes. Zero writes 0.
	ModTime time.Time
	// MinorVersion is the regf format minor version: 3 (the default, what
	// BCD stores shipped on Windows media use: "lf" subkey lists, one cell
	// for any value), or 5 ("lh" hashed subkey lists, "db" big data
	// records for values over 16344 bytes). 4 writes "lf" lists and "db"
	// records; 6 behaves like 5. Values are limited to MaxValueSize13 in
	// 1.3 and to MaxValueSize otherwise.
	MinorVersion uint32
	// FileName is the name recorded in the base block (informational,
	// the last 31 UTF-16 units are kept, as Windows does).
	FileName string
}

// String returns a REG_SZ value holding s as UTF-16LE with a terminating NUL.
func String(name, s string) Value {
	return Value{Name: name, Type: RegSZ, Data: utf16z(s)}
}

// ExpandString returns a REG_EXPAND_SZ value.
func ExpandString(name, s string) Value {
	return Value{Name: name, Type: RegExpandSZ, Data: utf16z(s)}
}

// MultiString returns a REG_MULTI_SZ value: each string NUL-terminated,
// then one more NUL.
func MultiString(name string, ss []string) Value {
	var b []byte
	for _, s := range ss {
		b = append(b, utf16z(s)...)
	}
	b = append(b, 0, 0)
	return Value{Name: name, Type: RegMultiSZ, Data: b}
}

// DWORD returns a REG_DWORD (little-endian) value.
func DWORD(name string, v uint32) Value {
	return Value{Name: name, Type: RegDWORD, Data: binary.LittleEndian.AppendUint32(nil, v)}
}

// QWORD returns a REG_QWORD (little-endian) value.
func QWORD(name string, v uint64) Value {
	return Value{Name: name, Type: RegQWORD, Data: binary.LittleEndian.AppendUint64(nil, v)}
}

// Binary returns a REG_BINARY value holding a copy of b.
func Binary(name string, b []byte) Value {
	return Value{Name: name, Type: RegBinary, Data: append([]byte{}, b...)}
}

// utf16z encodes s as UTF-16LE followed by a NUL code unit.
func utf16z(s string) []byte {
	return append(utf16le(s), 0, 0)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// ErrInvalidTree is wrapped by every error WriteHive returns for a tree it
// refuses (names, sizes, shape); test with errors.Is.
var ErrInvalidTree = errors.New("invalid registry tree")

// WriteHive writes root and everything below it as a registry hive file
// (regf) to w. The output depends only on root and opts.
func WriteHive(w io.Writer, root *Key, opts HiveOptions) error {
	minor := opts.MinorVersion
	if minor == 0 {
		minor = 3
	}
	if minor < 3 || minor > 6 {
		return fmt.Errorf("bcd: hive minor version %d: want 3, 4, 5 or 6", opts.MinorVersion)
	}
	maxValue := MaxValueSize
	if minor < 4 {
		maxValue = MaxValueSize13
	}
	if err := validateTree(root, maxValue); err != nil {
		return err
	}
	b := newHiveBuilder(minor, filetime(opts.ModTime))
	rootOff := b.writeTree(root)
	out := b.finish(rootOff, opts.FileName)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("bcd: writing hive: %w", err)
	}
	return nil
}

// filetime converts t to a Windows FILETIME (100 ns ticks since 1601).
func filetime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	secs := t.Unix() + epochDiff
	if secs < 0 {
		return 0
	}
	return uint64(secs)*10_000_000 + uint64(t.Nanosecond()/100)
}

// validateTree checks the whole tree before anything is laid out, so the
// writer itself never meets a name it cannot store.
func validateTree(root *Key, maxValue int) error {
	if root == nil {
		return fmt.Errorf("bcd: %w: nil root key", ErrInvalidTree)
	}
	keys, size := 0, 0
	var walk func(k *Key, path string, depth int) error
	walk = func(k *Key, path string, depth int) error {
		keys++
		size += cellEstimate(k)
		if size > MaxHiveSize {
			return fmt.Errorf("bcd: %w: hive would be larger than %d bytes", ErrInvalidTree, MaxHiveSize)
		}
		if keys > MaxKeys {
			return fmt.Errorf("bcd: %w: more than %d keys", ErrInvalidTree, MaxKeys)
		}
		if depth > MaxDepth {
			return fmt.Errorf("bcd: %w: %s: nested deeper than %d keys", ErrInvalidTree, path, MaxDepth)
		}
		if err := checkKey(k, path, depth == 0, maxValue); err != nil {
			return err
		}
		seen := make(map[string]bool, len(k.Subkeys))
		for i, sk := range k.Subkeys {
			if sk == nil {
				return fmt.Errorf("bcd: %w: %s: subkey %d is nil", ErrInvalidTree, path, i)
			}
			up := upcaseName(sk.Name)
			if seen[up] {
				return fmt.Errorf("bcd: %w: %s: duplicate subkey %q (names are case-insensitive)", ErrInvalidTree, path, sk.Name)
			}
			seen[up] = true
			if err := walk(sk, path+`\`+sk.Name, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, `\`+root.Name, 0)
}

// cellEstimate over-estimates the bytes k's own cells take: nk, class,
// index entry, and per value vk, list entry, data and big-data overhead.
func cellEstimate(k *Key) int {
	n := 128 + 2*len(k.Name) + 2*len(k.Class)
	for _, v := range k.Values {
		n += 64 + 2*len(v.Name) + len(v.Data) + 16*(len(v.Data)/bigDataSegment+1)
	}
	return n
}

func checkKey(k *Key, path string, isRoot bool, maxValue int) error {
	if err := checkName(k.Name, MaxKeyNameLen); err != nil {
		return fmt.Errorf("bcd: %w: key %s: %w", ErrInvalidTree, path, err)
	}
	if !isRoot && k.Name == "" {
		return fmt.Errorf("bcd: %w: key %s: empty subkey name", ErrInvalidTree, path)
	}
	if strings.ContainsRune(k.Name, '\\') {
		return fmt.Errorf("bcd: %w: key %s: name contains a backslash", ErrInvalidTree, path)
	}
	if !utf8.ValidString(k.Class) || 2*len(utf16.Encode([]rune(k.Class))) > MaxClassLen {
		return fmt.Errorf("bcd: %w: key %s: class name is not valid UTF-8 or longer than %d bytes", ErrInvalidTree, path, MaxClassLen)
	}
	seen := make(map[string]bool, len(k.Values))
	for _, v := range k.Values {
		if err := checkName(v.Name, MaxValueNameLen); err != nil {
			return fmt.Errorf("bcd: %w: key %s: value %q: %w", ErrInvalidTree, path, v.Name, err)
		}
		up := upcaseName(v.Name)
		if seen[up] {
			return fmt.Errorf("bcd: %w: key %s: duplicate value %q (names are case-insensitive)", ErrInvalidTree, path, v.Name)
		}
		seen[up] = true
		if len(v.Data) > maxValue {
			return fmt.Errorf("bcd: %w: key %s: value %q: %d bytes of data, limit %d for this format version", ErrInvalidTree, path, v.Name, len(v.Data), maxValue)
		}
	}
	return nil
}

func checkName(name string, max int) error {
	if !utf8.ValidString(name) {
		return errors.New("name is not valid UTF-8")
	}
	if strings.ContainsRune(name, 0) {
		return errors.New("name contains NUL")
	}
	if n := len(utf16.Encode([]rune(name))); n > max {
		return fmt.Errorf("name is %d UTF-16 units long, limit %d", n, max)
	}
	return nil
}
