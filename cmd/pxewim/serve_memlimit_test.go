package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"testing"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// TestLimitMemory: while a daemon runs, the runtime's memory limit is the chunk cache's bound
// plus twice the live heap outside it (at least minMemoryAllowance), and follows a new bound;
// the limit found before is put back when it stops. GOMEMLIMIT set leaves the limit alone.
func TestLimitMemory(t *testing.T) {
	if got := memoryLimit(64<<20, 10<<20); got != 64<<20+minMemoryAllowance {
		t.Errorf("memoryLimit(64 MiB, 10 MiB) = %d", got)
	}
	if got := memoryLimit(64<<20, 100<<20); got != 264<<20 {
		t.Errorf("memoryLimit(64 MiB, 100 MiB) = %d", got)
	}
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	d := &daemon{log: slog.New(slog.DiscardHandler), cache: wim.NewCache(1 << 40)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.limitMemory(ctx); close(done) }()
	// The limit is set at once: wait for it (an event), then check its value.
	waitLimit := func(what string, ok func(int64) bool) {
		t.Helper()
		serveWaitFor(t, time.Minute, func() bool { return ok(debug.SetMemoryLimit(-1)) }, what, &serveLog{})
	}
	waitLimit("the limit to follow the 1 TiB bound", func(l int64) bool { return l >= 1<<40+minMemoryAllowance && l < 1<<41 })
	d.cache.SetMaxBytes(1 << 41)
	waitLimit("the limit to follow the 2 TiB bound", func(l int64) bool { return l >= 1<<41+minMemoryAllowance && l < 1<<42 })
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after the daemon stopped: %d, want %d", got, before)
	}
}
