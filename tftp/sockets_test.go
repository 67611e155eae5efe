package tftp

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestSocketModes runs the same downloads over both transfer socket kinds:
// blocking sockets with UDP GSO windows (the default on Linux, pin/tftp
// patch P6) and netpoller sockets (PollSockets). The window cases cover a
// ring that wraps (window 16 over a 200-block file), windows larger than
// one GSO send (64 blocks: several sends), blocks too large for more than
// one per GSO send, and losses inside a window.
func TestSocketModes(t *testing.T) {
	data := testData(1468*200+77, 7)
	big := testData(40000*5+3, 8)
	fsys := mapFS(map[string][]byte{"boot.wim": data, "big.bin": big})
	cases := []struct {
		name string
		file string
		opts []string
		drop func(uint64) bool
	}{
		{"lock-step 512", "boot.wim", nil, nil},
		{"lock-step 1468", "boot.wim", []string{"blksize", "1468"}, nil},
		{"window 16", "boot.wim", []string{"blksize", "1468", "windowsize", "16"}, nil},
		{"window 64, two GSO sends each", "boot.wim", []string{"blksize", "1468", "windowsize", "64"}, nil},
		{"window 7, ring wraps mid-window", "boot.wim", []string{"blksize", "1468", "windowsize", "7"}, nil},
		{"window 16, losses", "boot.wim", []string{"blksize", "1468", "windowsize", "16"}, func(b uint64) bool { return b%9 == 4 }},
		{"window 4, 40000-byte blocks", "big.bin", []string{"blksize", "40000", "windowsize", "4"}, nil},
	}
	for _, poll := range []bool{false, true} {
		ts := startServer(t, fsys, Config{PollSockets: poll, MaxBlockSize: MaxBlockSizeLimit, Timeout: 10 * time.Second})
		for i, tc := range cases {
			t.Run(fmt.Sprintf("poll=%v/%s", poll, tc.name), func(t *testing.T) {
				c := newClient(t, ts.addr)
				start := time.Now()
				// checkWindow waits 30 ms after each window for a block too many.
				res, err := c.get(tc.file, getOptions{opts: tc.opts, drop: tc.drop, checkWindow: len(tc.opts) > 2})
				if err != nil {
					t.Fatal(err)
				}
				want := fsys[tc.file].Data
				if !bytes.Equal(res.data, want) {
					t.Fatalf("got %d bytes, not the %d-byte file", len(res.data), len(want))
				}
				if tc.drop != nil && res.dropped == 0 {
					t.Fatal("the client dropped nothing: the loss case tested nothing")
				}
				if d := time.Since(start); d > 8*time.Second {
					t.Fatalf("took %v: a loss was recovered only by the server's 10s timeout", d)
				}
				// The server logs the transfer after the client has the last block: wait
				// for it, so that no log line comes after the test.
				ts.rec.waitEnded(t, i+1)
			})
		}
	}
}
