package main

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

func newBufWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 64<<10) }

// progress draws a one-line progress bar on a terminal, at most ten times a second; on
// anything else it draws nothing.
type progress struct {
	w     io.Writer
	label string
	on    bool
	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, on: isTerminal(w)}
}

func (p *progress) update(done, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || done == total {
		p.last, p.drawn = now, true
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		const width = 30
		fill := int(pct / 100 * width)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < fill {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(p.w, "\r%s: [%s] %s of %s (%.0f%%)", p.label, bar, mib(done), mib(total), pct)
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
