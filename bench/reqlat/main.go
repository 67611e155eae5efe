// Command reqlat probes a running pxewim with small requests at a steady rate and records each
// one's latency, so that bench/bigstore.sh can compare request latency while the catalog scans
// a big store with latency while it is idle (same run, same daemon):
//
//	reqlat -http http://127.0.0.1:8080/files/small.txt -tftp 127.0.0.1:6969 -tftp-file small.txt \
//	       -every 5ms -for 60s -out lat.txt
//
// Each line of -out is "unix_nanoseconds proto latency_nanoseconds ok". Requests are sequential
// per protocol (one HTTP keep-alive connection, one TFTP transfer at a time), so a slow answer
// is seen as latency, not hidden behind concurrency. `reqlat -stats -out lat.txt -from T1 -to T2`
// prints the count, p50, p99 and max of each protocol's requests started in [T1, T2) (Unix
// nanoseconds). SIGINT or SIGTERM stops the probing before -for has passed (records kept).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

func main() {
	httpURL := flag.String("http", "", "URL of a small file to GET")
	tftpAddr := flag.String("tftp", "", "TFTP server host:port")
	tftpFile := flag.String("tftp-file", "", "file to read over TFTP")
	every := flag.Duration("every", 5*time.Millisecond, "pause between two requests of one protocol")
	dur := flag.Duration("for", 30*time.Second, "how long to probe")
	out := flag.String("out", "lat.txt", "latency record file")
	stats := flag.Bool("stats", false, "print percentiles of -out between -from and -to instead of probing")
	from := flag.Int64("from", 0, "with -stats: first request start (Unix ns)")
	to := flag.Int64("to", 0, "with -stats: end of the window (Unix ns; 0 = no end)")
	flag.Parse()
	if *stats {
		if err := printStats(*out, *from, *to); err != nil {
			fmt.Fprintln(os.Stderr, "reqlat:", err)
			os.Exit(1)
		}
		return
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reqlat:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	var mu sync.Mutex
	record := func(start time.Time, proto string, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%d %s %d %v\n", start.UnixNano(), proto, d.Nanoseconds(), err == nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reqlat: %s: %v\n", proto, err)
		}
	}
	// SIGINT or SIGTERM ends the probing early; the records are written either way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(*every):
		}
	}
	var wg sync.WaitGroup
	if *httpURL != "" {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				start := time.Now()
				resp, err := c.Get(*httpURL)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				record(start, "http", time.Since(start), err)
				pause()
			}
		})
	}
	if *tftpAddr != "" {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				err := tftpGet(*tftpAddr, *tftpFile)
				record(start, "tftp", time.Since(start), err)
				pause()
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "reqlat:", err)
		os.Exit(1)
	}
	f.Close()
}

func tftpGet(addr, name string) error {
	c, err := pintftp.NewClient(addr)
	if err != nil {
		return err
	}
	c.SetTimeout(5 * time.Second)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	_, err = wt.WriteTo(&b)
	return err
}

func printStats(path string, from, to int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lat := map[string][]time.Duration{}
	failed := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		start, _ := strconv.ParseInt(f[0], 10, 64)
		d, _ := strconv.ParseInt(f[2], 10, 64)
		if start < from || (to > 0 && start >= to) {
			continue
		}
		if f[3] != "true" {
			failed[f[1]]++
		}
		lat[f[1]] = append(lat[f[1]], time.Duration(d))
	}
	for _, proto := range []string{"http", "tftp"} {
		l := lat[proto]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		pct := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
		fmt.Printf("%s n=%d failed=%d p50=%.2fms p99=%.2fms max=%.2fms\n", proto, len(l), failed[proto],
			ms(pct(0.50)), ms(pct(0.99)), ms(l[len(l)-1]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
