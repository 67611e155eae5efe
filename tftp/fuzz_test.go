package tftp

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzServeRequest sends any datagram to the listening port of a live
// server (the request parser is the patched pin/tftp's, the path and
// option handling ours), then checks that the server still serves a file
// byte-exact: no panic, no wedged listener, whatever the packet was.
func FuzzServeRequest(f *testing.F) {
	seeds := [][]byte{
		requestPacket(opRRQ, "f", "octet"),
		requestPacket(opRRQ, `\Boot\BCD`, "octet", "blksize", "1468", "tsize", "0", "windowsize", "4"),
		requestPacket(opRRQ, "f", "octet", "msftwindow", "31416", "blksize", "65464"),
		requestPacket(opRRQ, "f", "netascii", "timeout", "999", "windowsize", "0", "blksize", "7"),
		requestPacket(opRRQ, "f", "octet", "blksize", "-1", "tsize", "x", "windowsize", "99999999999999999999"),
		requestPacket(opRRQ, "../../etc/passwd", "octet"),
		requestPacket(opRRQ, "C:\\x", "octet"),
		requestPacket(opRRQ, strings.Repeat("a/", 2000), "octet"),
		requestPacket(opWRQ, "f", "octet", "tsize", "100"),
		{0, 1, 'f'},            // no terminators
		{0, 1, 0, 0},           // empty name and mode
		{0, 1},                 // opcode only
		{0},                    // one byte
		{0, 3, 0, 1, 'x'},      // DATA to the listening port
		{0, 4, 0, 0},           // ACK
		{0, 5, 0, 8, 'x', 0},   // ERROR
		{0, 6, 'a', 0, 'b', 0}, // OACK
		{0xff, 0xff, 1, 2, 3},  // unknown opcode
		append(requestPacket(opRRQ, "f", "octet"), "blksize\x00"...), // option without value
	}
	for _, s := range seeds {
		f.Add(s)
	}
	data := testData(3000, 20)
	ts := startServer(f, mapFS(map[string][]byte{"f": data}), Config{
		Timeout: 50 * time.Millisecond, Retries: 1, // transfers the fuzzer starts end fast
		Logger: discardLogger(),
	})
	f.Fuzz(func(t *testing.T, packet []byte) {
		c := newClient(t, ts.addr)
		c.send(packet)
		c.recv(20 * time.Millisecond) // whatever the answer, if any
		res, err := newClient(t, ts.addr).get("f", getOptions{opts: []string{"blksize", "1024"}})
		if err != nil {
			t.Fatalf("server no longer serves after %x: %v", packet[:min(len(packet), 64)], err)
		}
		if !bytes.Equal(res.data, data) {
			t.Fatal("not byte-exact")
		}
	})
}
