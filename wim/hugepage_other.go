//go:build !linux

package wim

// makeLarge returns a fresh buffer of length n and capacity class (huge page advice is
// Linux-only).
func makeLarge(n, class int) []byte { return make([]byte, n, class) }
