package httpboot

import (
	"errors"
	"io"
	"syscall"
)

// kernelSource is a plain file of the operating system as kernelFile finds it: readable from its
// own offset, seekable, with a file descriptor (sendfile reads from that offset).
type kernelSource interface {
	io.ReadSeeker
	syscall.Conn
}

// kernelBody is what ServeContent gets for a kernelSource of known size. ServeContent seeks three
// times per request (to the end for the size, back to the start, then to the range's first
// byte) and net/http reads the first 512 bytes itself before it hands the rest to the
// connection (its sniffing copy): on a plain file that is three lseek and one read system call
// per request, as many as the sendfile that carries the body. kernelBody keeps the position
// itself and moves the descriptor's offset once, right before the kernel copies (sendTo) or a
// Read needs it; the recorder flushes the response header before sendTo, so that nothing is
// read through user space.
type kernelBody struct {
	f    kernelSource
	size int64
	off  int64 // the body's position, as ServeContent sees it
	pos  int64 // the descriptor's offset when known, else -1
}

// newKernelBody wraps f, opened for this request and not read yet (its offset is 0).
func newKernelBody(f kernelSource, size int64) *kernelBody {
	return &kernelBody{f: f, size: size}
}

var errNegativeSeek = errors.New("httpboot: seek to a negative position")

// Seek moves the body's position only; the descriptor follows when bytes are read or sent.
func (k *kernelBody) Seek(offset int64, whence int) (int64, error) {
	var n int64
	switch whence {
	case io.SeekStart:
		n = offset
	case io.SeekCurrent:
		n = k.off + offset
	case io.SeekEnd:
		n = k.size + offset
	default:
		return 0, errors.New("httpboot: seek: invalid whence")
	}
	if n < 0 {
		return 0, errNegativeSeek
	}
	k.off = n
	return n, nil
}

// sync moves the descriptor's offset to the body's position.
func (k *kernelBody) sync() error {
	if k.pos == k.off {
		return nil
	}
	if _, err := k.f.Seek(k.off, io.SeekStart); err != nil {
		k.pos = -1
		return err
	}
	k.pos = k.off
	return nil
}

func (k *kernelBody) Read(p []byte) (int, error) {
	if err := k.sync(); err != nil {
		return 0, err
	}
	n, err := k.f.Read(p)
	k.off += int64(n)
	k.pos = k.off
	return n, err
}

// sendTo copies up to n bytes from the body's position through rf (a connection's ReadFrom:
// sendfile from the descriptor's offset) and advances the position by what was copied.
func (k *kernelBody) sendTo(rf io.ReaderFrom, n int64) (int64, error) {
	if err := k.sync(); err != nil {
		return 0, err
	}
	w, err := rf.ReadFrom(&io.LimitedReader{R: rawFile{k.f}, N: n})
	k.off += w
	k.pos = k.off
	return w, err
}

// rawFile shows the connection only Read and the descriptor: sendfile takes it as a file, and
// a connection without sendfile reads it from the same offset.
type rawFile struct{ f kernelSource }

func (r rawFile) Read(p []byte) (int, error)            { return r.f.Read(p) }
func (r rawFile) SyscallConn() (syscall.RawConn, error) { return r.f.SyscallConn() }
