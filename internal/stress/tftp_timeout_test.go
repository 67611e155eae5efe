package stress

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTFTPGiveUpErrorCode: a client that stops acknowledging makes the server give up after
// its retries. The ERROR it then sends must not claim "file not found" (code 1): the file
// exists, the peer went silent. Known bug (see the report): third_party/pin-tftp sends every
// non-coded error, including its own read timeout, as code 1 with the socket error text
// ("read udp 10.x.x.1:PORT: i/o timeout"). Fix: errorCodeFor (errors_pxewim.go) maps a
// net.Error with Timeout() to code 0 and a fixed "timed out waiting for ACK" message.
func TestTFTPGiveUpErrorCode(t *testing.T) {
	p := newPair(t, "10.91.11")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(store, 0o755)
	os.WriteFile(filepath.Join(store, "f.bin"), payload(64<<10, 1), 0o644)
	startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "off"), true, false)
	c, err := listenUDP(p.Cli, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := &net.UDPAddr{IP: p.SrvIP.AsSlice(), Port: 69}
	c.WriteToUDP(buildRequest(opRRQ, "f.bin", "octet", [][2]string{{"timeout", "1"}}), srv)
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no ERROR from the server after it gave up: %v", err)
		}
		if binary.BigEndian.Uint16(buf) != opERROR {
			continue // OACK and its retransmissions: never acknowledged
		}
		code := binary.BigEndian.Uint16(buf[2:])
		msg := string(bytes.TrimRight(buf[4:n], "\x00"))
		t.Logf("server gave up with ERROR %d %q", code, msg)
		if code == 1 {
			t.Errorf("server gave up on a silent client with code 1 (file not found) %q; want code 0 with a timeout message", msg)
		}
		return
	}
}
