package wimsynth

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// presizer runs the XPRESS sizing pass of a Build's source blobs ahead of the layout, one
// blob per worker, so that images of many small files (most of a WinPE) use every CPU; a big
// blob is also split over the CPUs by sizeChunks. The layout takes the results in blob order
// and waits for each one that is not ready yet.
type presizer struct {
	jobs   map[blobKey]*presizeJob
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type presizeJob struct {
	key   blobKey
	r     io.ReaderAt
	what  string
	ready chan struct{}
	x     *xpressRes
	err   error
}

// presize starts sizing the source blobs the image refers to and that decode selects, in
// blob table order.
func (b *builder) presize(refs map[[sha1.Size]byte]uint32) (*presizer, error) {
	ctx, cancel := context.WithCancel(b.ctx)
	p := &presizer{jobs: map[blobKey]*presizeJob{}, cancel: cancel}
	var order []*presizeJob
	for bi := range b.src.Blobs() {
		key := blobKey{bi.Hash, bi.Size}
		if refs[bi.Hash] == 0 || p.jobs[key] != nil || !b.decode(bi) {
			continue
		}
		r, err := b.src.OpenBlob(bi.Hash)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("wimsynth: %w", err)
		}
		j := &presizeJob{key: key, r: r, what: fmt.Sprintf("blob %x", bi.Hash), ready: make(chan struct{})}
		p.jobs[key] = j
		order = append(order, j)
	}
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(order)) {
		p.wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(order)) {
					return
				}
				j := order[i]
				j.x, j.err = sizeXPRESS(ctx, b.opts.Cache, j.r, j.key, j.what)
				close(j.ready)
			}
		})
	}
	return p, nil
}

// result waits for a blob's sizing; ok is false for blobs the presizer does not size.
func (p *presizer) result(key blobKey) (x *xpressRes, ok bool, err error) {
	if p == nil {
		return nil, false, nil
	}
	j := p.jobs[key]
	if j == nil {
		return nil, false, nil
	}
	<-j.ready
	return j.x, true, j.err
}

// stop cancels what is left and waits for the workers.
func (p *presizer) stop() {
	p.cancel()
	p.wg.Wait()
}
