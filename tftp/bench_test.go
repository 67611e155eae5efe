package tftp

import (
	"bytes"
	"testing"
)

// BenchmarkGet downloads 8 MB over loopback with the Go test client;
// bench/tftp.sh compares against tftpd-hpa and atftpd with a real client.
func BenchmarkGet(b *testing.B) {
	data := testData(8<<20, 30)
	ts := startServer(b, mapFS(map[string][]byte{"f": data}), Config{Logger: discardLogger(), MaxBlockSize: 65464})
	cases := []struct {
		name string
		opts []string
	}{
		{"lockstep-1468", []string{"blksize", "1468"}},
		{"window16-1468", []string{"blksize", "1468", "windowsize", "16"}},
		{"window64-1468", []string{"blksize", "1468", "windowsize", "64"}},
		{"msftwindow16-1468", []string{"blksize", "1468", "msftwindow", "31416"}},
		{"lockstep-65464", []string{"blksize", "65464"}},
		// Windows of 64 KiB blocks overflow the client's default socket
		// buffer (net.core.rmem_default) and then crawl at one client
		// timeout per window: keep big-block windows small.
		{"window4-8192", []string{"blksize", "8192", "windowsize", "4"}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			o := getOptions{opts: tc.opts, msftWindows: []int{16}}
			for i := 0; i < b.N; i++ {
				res, err := newClient(b, ts.addr).get("f", o)
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Equal(res.data, data) {
					b.Fatal("not byte-exact")
				}
			}
		})
	}
}
