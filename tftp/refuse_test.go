package tftp

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// TestRefusedRequests: requests the parser cannot take get ERROR 4 at
// once (pin/tftp patch P7) instead of silence and a client timeout; the
// server keeps serving afterwards.
func TestRefusedRequests(t *testing.T) {
	ts := startServer(t, mapFS(map[string][]byte{"a.bin": []byte("hello")}), Config{})
	tests := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"600-byte name", requestPacket(opRRQ, strings.Repeat("a", 600), "octet"), "longer than 512"},
		{"60000-byte name", requestPacket(opRRQ, strings.Repeat("A", 60000), "octet"), "longer than 512"},
		{"long WRQ", requestPacket(opWRQ, strings.Repeat("w", 1000), "octet"), "longer than 512"},
		{"name without NUL", []byte("\x00\x01a.bin"), "not NUL-terminated"},
		{"empty name", []byte("\x00\x01\x00octet\x00"), "empty filename"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, ts.addr)
			c.send(tc.pkt)
			p, err := c.recv(2 * time.Second)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			if op := binary.BigEndian.Uint16(p); op != opERROR {
				t.Fatalf("reply opcode %d, want ERROR", op)
			}
			code, msg := binary.BigEndian.Uint16(p[2:]), string(p[4:len(p)-1])
			if code != 4 || !strings.Contains(msg, tc.want) {
				t.Fatalf("ERROR %d %q, want 4 with %q", code, msg, tc.want)
			}
		})
	}
	// Stray non-request packets to port 69 stay unanswered.
	c := newClient(t, ts.addr)
	c.send(ackPacket(3))
	if p, err := c.recv(300 * time.Millisecond); err == nil {
		t.Fatalf("stray ACK answered with %x", p)
	}
	res, err := newClient(t, ts.addr).get("a.bin", getOptions{})
	if err != nil || string(res.data) != "hello" {
		t.Fatalf("after the refusals: %v", err)
	}
	ts.rec.waitEnded(t, 1) // the server logs the transfer after the client has it
}
