//go:build !amd64 || purego

package lzms

const haveAsm = false

func itemsLoop(*state) int { panic("lzms: no assembly item loop on this platform") }

func x86Flags(*[x86Block / 64]uint64, *byte, int) {
	panic("lzms: no assembly x86 scan on this platform")
}
