package wimlibc

// Codec is wimlib's enum wimlib_compression_type.
type Codec int

const (
	XPRESS Codec = 1
	LZX    Codec = 2
	LZMS   Codec = 3
)

func (c Codec) String() string {
	switch c {
	case XPRESS:
		return "XPRESS"
	case LZX:
		return "LZX"
	case LZMS:
		return "LZMS"
	}
	return "unknown"
}
