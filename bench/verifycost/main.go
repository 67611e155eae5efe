// Command verifycost times pxewim's background WIM verification (localstore.Verifier, as
// `pxewim serve` runs it) on the WIM files of a store folder: wall time, CPU time and both per
// GB of WIM file, then a second start over the same verdicts file (a daemon restart), which
// must verify nothing. Used by bench/verify-cost.sh.
//
//	verifycost STORE_DIR NAME.wim...
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/verdicts"
	"github.com/pxewim/pxewim/wim"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// start is one daemon start: verify every name and wait for the verdicts.
func start(root, dbPath string, names []string) (localstore.VerifyStats, time.Duration, time.Duration, error) {
	db, err := verdicts.Open(dbPath)
	if err != nil {
		return localstore.VerifyStats{}, 0, 0, err
	}
	v := localstore.NewVerifier(localstore.VerifierOptions{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer v.Close()
	s, err := localstore.New(root, localstore.Options{Verifier: v, Cache: wim.NewCache(256 << 20)})
	if err != nil {
		return localstore.VerifyStats{}, 0, 0, err
	}
	defer s.Close()
	t0, c0 := time.Now(), cpu()
	s.VerifyInBackground(names)
	for _, n := range names {
		f, err := s.Open(n)
		if err != nil {
			return localstore.VerifyStats{}, 0, 0, err
		}
		err = f.(interface {
			WaitVerified(context.Context) error
		}).WaitVerified(context.Background())
		f.Close()
		if err != nil {
			return localstore.VerifyStats{}, 0, 0, fmt.Errorf("%s: %w", n, err)
		}
	}
	return v.Stats(), time.Since(t0), cpu() - c0, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: verifycost STORE_DIR NAME.wim...")
		os.Exit(2)
	}
	root, names := os.Args[1], os.Args[2:]
	var size int64
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(root, n))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		size += fi.Size()
	}
	dir, err := os.MkdirTemp("", "verifycost")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "verdicts.db")
	gb := float64(size) / 1e9
	st, wall, cpuTime, err := start(root, dbPath, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		os.Exit(1)
	}
	fmt.Printf("VERIFY first start: %d WIM(s), %.3f GB of WIM file, %.3f GB decoded; verified %d, failed %d\n",
		len(names), gb, float64(st.Bytes)/1e9, st.Verified, st.Failed)
	dgb := float64(st.Bytes) / 1e9
	fmt.Printf("VERIFY wall %.2f s = %.2f s/GB of WIM file = %.2f s/GB decoded; CPU %.2f s = %.2f CPU-s/GB of WIM file = %.2f CPU-s/GB decoded (%.1f cores busy on average)\n",
		wall.Seconds(), wall.Seconds()/gb, wall.Seconds()/dgb, cpuTime.Seconds(), cpuTime.Seconds()/gb, cpuTime.Seconds()/dgb, cpuTime.Seconds()/wall.Seconds())
	st2, wall2, cpu2, err := start(root, dbPath, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, "restart:", err)
		os.Exit(1)
	}
	fmt.Printf("VERIFY restart: verified %d, remembered %d; verdicts known after %.1f ms (CPU %.1f ms)\n",
		st2.Verified, st2.Remembered, float64(wall2.Microseconds())/1000, float64(cpu2.Microseconds())/1000)
	if st2.Verified != 0 {
		fmt.Fprintln(os.Stderr, "restart verified again")
		os.Exit(1)
	}
}
