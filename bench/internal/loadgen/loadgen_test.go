package loadgen

import (
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestRunMatchesAnswers runs the generator against a loopback responder that answers every
// packet but those whose sequence number is divisible by 5, twice each (only the first answer
// counts), plus a stray datagram Seq rejects; the result counts exactly the answered ones.
func TestRunMatchesAnswers(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n != 5 || buf[0] != 'Q' {
				continue
			}
			seq := binary.BigEndian.Uint32(buf[1:5])
			srv.WriteToUDPAddrPort([]byte("junk"), from)
			if seq%5 == 0 {
				continue
			}
			buf[0] = 'A'
			srv.WriteToUDPAddrPort(buf[:5], from)
			srv.WriteToUDPAddrPort(buf[:5], from)
		}
	}()
	const total = 200
	pkt := make([]byte, 5)
	r, err := Run(Load{Conn: conn, Dst: srv.LocalAddr().(*net.UDPAddr).AddrPort(), Total: total, Rate: 1000, Burst: true,
		Packet: func(i int) []byte {
			pkt[0] = 'Q'
			binary.BigEndian.PutUint32(pkt[1:], uint32(i))
			return pkt
		},
		Seq: func(b []byte) (int, bool) {
			if len(b) != 5 || b[0] != 'A' {
				return 0, false
			}
			return int(binary.BigEndian.Uint32(b[1:])), true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Loopback UDP may drop under a burst (a full socket buffer), never invent answers.
	if r.Sent != total || len(r.Latency) > total*4/5 || len(r.Latency) == 0 {
		t.Fatalf("sent %d, answered %d: want %d sent and at most %d answered", r.Sent, len(r.Latency), total, total*4/5)
	}
	for i := 1; i < len(r.Latency); i++ {
		if r.Latency[i] < r.Latency[i-1] {
			t.Fatalf("latencies not sorted: %v", r.Latency)
		}
	}
	if r.Percentile(0) != r.Latency[0] || r.Percentile(1) != r.Latency[len(r.Latency)-1] {
		t.Errorf("percentiles 0 and 1: %v %v, want %v %v", r.Percentile(0), r.Percentile(1), r.Latency[0], r.Latency[len(r.Latency)-1])
	}
}

// TestLine is the result line the bench scripts' awk reads: the label padded, then key=value
// fields.
func TestLine(t *testing.T) {
	r := Result{Sent: 4, Latency: []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, Elapsed: 2 * time.Second}
	got := r.Line("pxewim", 8, "rate=2/s", "offers")
	want := "pxewim   rate=2/s sent=4 offers=3 (75.0%) offers/s=2 p50=2ms p99=3ms max=3ms"
	if got != want {
		t.Errorf("Line:\n got %q\nwant %q", got, want)
	}
	got = r.Line("dnsmasq-v6", 14, "rate=2/s", "answers")
	if m := regexp.MustCompile(`^dnsmasq-v6     rate=2/s sent=4 answers=3 \(75\.0%\) answers/s=(\d+) p50=`).FindStringSubmatch(got); m == nil {
		t.Errorf("Line: %q", got)
	} else if n, _ := strconv.Atoi(m[1]); n != 2 {
		t.Errorf("answers/s %d, want 2", n)
	}
	if (Result{Sent: 1}).Percentile(0.5) != 0 {
		t.Error("percentile without answers")
	}
}
