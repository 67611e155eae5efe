//go:build amd64 && !purego

package lzms

// haveAsm says whether itemsLoop is the assembly loop (decode_amd64.s).
const haveAsm = true

// itemsLoop decodes items like state.items, with every stream state in a register, until
// the chunk's end or an item it leaves to Go (see the exit reasons). It reads and writes
// s.regs; everything else it touches is state that items touches too.
//
//go:noescape
func itemsLoop(s *state) int

// x86Flags is x86FlagsGo with SSE2 compares, 16 bytes a step (x86_amd64.s).
//
//go:noescape
func x86Flags(masks *[x86Block / 64]uint64, data *byte, groups int)
