package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// The chunk cache bounds the memory of decoding (cache:), but the Go runtime's default pacing
// (GOGC=100) lets the heap grow to twice what is live before it collects, so a full cache of
// 256 MiB alone would let RSS reach ~512 MiB of mostly dead, evicted chunks. The daemon
// therefore keeps the runtime's soft memory limit at the cache's bound plus twice the live heap
// outside the cache (what GOGC=100 allows for the rest of the program), at least
// minMemoryAllowance, re-read every memLimitPeriod. GOMEMLIMIT in the environment turns this
// off (the operator's limit stands).
const (
	minMemoryAllowance = 64 << 20
	memLimitPeriod     = 2 * time.Second
)

// memLimits counts the daemons of this process that set the limit (tests run several); the
// limit found before the first is put back when the last stops.
var memLimits struct {
	sync.Mutex
	n    int
	prev int64
}

// memoryLimit returns the limit for a cache bound and the live heap outside the cache.
func memoryLimit(bound, otherLive int64) int64 {
	return bound + max(2*otherLive, minMemoryAllowance)
}

// limitMemory keeps the runtime's memory limit in step with the chunk cache until ctx ends.
func (d *daemon) limitMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		d.log.Info("memory limit: GOMEMLIMIT is set, the chunk cache's bound does not set it")
		return
	}
	memLimits.Lock()
	if memLimits.n == 0 {
		memLimits.prev = debug.SetMemoryLimit(-1)
	}
	memLimits.n++
	memLimits.Unlock()
	defer func() {
		memLimits.Lock()
		if memLimits.n--; memLimits.n == 0 {
			debug.SetMemoryLimit(memLimits.prev)
		}
		memLimits.Unlock()
	}()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		var live int64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = int64(min(sample[0].Value.Uint64(), math.MaxInt64))
		}
		st := d.cache.Stats()
		debug.SetMemoryLimit(memoryLimit(d.cache.MaxBytes(), max(live-st.UsedBytes, 0)))
	}
	set()
	t := time.NewTicker(memLimitPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
