package blobcache

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseName: any file name found in the cache folder is either refused or is exactly the
// canonical name of a key and a positive size (so no two names map to one blob, and a name
// never leads outside the folder). Seeds: testdata/fuzz/FuzzParseName.
func FuzzParseName(f *testing.F) {
	f.Add("0a4d55a8d778e5022fab701977c5d840bbc486d0-12")
	f.Add(tmpPrefix + "123")
	f.Fuzz(func(t *testing.T, name string) {
		key, size, ok := parseName(name)
		if !ok {
			return
		}
		if size <= 0 || fileName(key, size) != name {
			t.Fatalf("parseName(%q) = %s, %d: not the canonical name %q", name, key, size, fileName(key, size))
		}
		if strings.ContainsAny(name, `/\`) || filepath.Base(name) != name {
			t.Fatalf("parseName accepted %q, which is not a plain file name", name)
		}
	})
}
