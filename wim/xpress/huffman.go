package xpress

import "github.com/pxewim/pxewim/wim/internal/huffman"

// The decode tables are built by wim/internal/huffman, shared with the other codec; see its doc
// for the table entry layout that the decode loops here read directly.
const (
	entryPtr    = huffman.EntryPtr
	entryLenMsk = huffman.EntryLenMask
	maxCodeLen  = huffman.MaxCodeLen
)

func buildTable(table []uint32, lens []uint8, tableBits, maxLen uint, sorted []uint16) error {
	return huffman.BuildTable(table, lens, tableBits, maxLen, sorted)
}

func tableSize(numSyms int, tableBits, maxLen uint) int {
	return huffman.TableSize(numSyms, tableBits, maxLen)
}
