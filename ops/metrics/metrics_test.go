package metrics

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
	"github.com/pxewim/pxewim/wim"
)

func TestCounts(t *testing.T) {
	m := New(Sources{Cache: func() wim.CacheStats {
		return wim.CacheStats{Hits: 7, Misses: 3, Evictions: 1, Bytes: 4096, Entries: 2,
			MaxBytes: 1 << 20, UsedBytes: 6144, Waits: 4, Overdrafts: 1,
			DecodeCount: 3, DecodeSum: 1500 * time.Microsecond,
			DecodeBuckets: []wim.DecodeBucket{{UpperBound: time.Millisecond, Count: 2}, {UpperBound: 10 * time.Millisecond, Count: 3}}}
	},
		Active: func() int { return 2 }, Known: func() int { return 5 }, Version: "v-test",
		Verify: func() VerifyStats {
			return VerifyStats{Good: 4, Bad: 1, Remembered: 9, Pending: 2, Done: 25, Total: 100}
		}})
	efi := boot.Client{Arch: 7, Firmware: boot.FirmwareEFI64}
	ipxe := boot.Client{Arch: 0, Firmware: boot.FirmwareBIOS, IPXE: true}
	m.Exchange(efi, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "snponly.efi"}, nil)
	m.Exchange(efi, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "snponly.efi"}, nil)
	m.Exchange(efi, dhcpv4.MessageTypeRequest, dhcp.Decision{BootFile: "snponly.efi"}, nil)
	m.Exchange(ipxe, dhcpv4.MessageTypeDiscover, dhcp.Decision{NoBoot: true}, nil)
	m.Exchange(ipxe, dhcpv4.MessageTypeDiscover, dhcp.Decision{}, errors.New("policy"))
	to := m.TFTPObserver()
	to.TransferEnded(&tftp.Transfer{Sent: 100, Started: time.Now()}, nil)
	to.TransferEnded(&tftp.Transfer{Sent: 0, Started: time.Now()}, errors.New("not found"))
	ho := m.HTTPObserver()
	ho.Ended(httpboot.Event{Kind: "file", Status: 206, Bytes: 1000})
	ho.Ended(httpboot.Event{Kind: "script", Status: 200, Bytes: 50})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	series := parse(t, rec.Body.String())
	want := map[string]float64{
		`pxewim_dhcp_offers_total{firmware="efi64",mode="pxe"}`:                                        2,
		`pxewim_dhcp_exchanges_total{firmware="efi64",message="REQUEST",mode="pxe",outcome="boot"}`:    1,
		`pxewim_dhcp_exchanges_total{firmware="bios",message="DISCOVER",mode="ipxe",outcome="noboot"}`: 1,
		`pxewim_dhcp_exchanges_total{firmware="bios",message="DISCOVER",mode="ipxe",outcome="error"}`:  1,
		`pxewim_tftp_transfers_total{result="ok"}`:                                                     1,
		`pxewim_tftp_transfers_total{result="error"}`:                                                  1,
		`pxewim_tftp_bytes_total`:                            100,
		`pxewim_http_requests_total{code="206",kind="file"}`: 1,
		`pxewim_http_bytes_total{kind="file"}`:               1000,
		`pxewim_http_bytes_total{kind="script"}`:             50,
		`pxewim_chunk_cache_hits_total`:                      7,
		`pxewim_chunk_cache_misses_total`:                    3,
		`pxewim_chunk_cache_evictions_total`:                 1,
		`pxewim_chunk_cache_bytes`:                           4096,
		`pxewim_chunk_cache_entries`:                         2,
		`pxewim_chunk_cache_used_bytes`:                      6144,
		`pxewim_chunk_cache_bound_bytes`:                     1 << 20,
		`pxewim_chunk_cache_waits_total`:                     4,
		`pxewim_chunk_cache_overdrafts_total`:                1,
		`pxewim_wim_verifications_total{verdict="good"}`:     4,
		`pxewim_wim_verifications_total{verdict="bad"}`:      1,
		`pxewim_wim_verdicts_remembered_total`:               9,
		`pxewim_wim_verify_pending`:                          2,
		`pxewim_wim_verify_progress_ratio`:                   0.25,
		`pxewim_chunk_decode_seconds_count`:                  3,
		`pxewim_chunk_decode_seconds_sum`:                    0.0015,
		`pxewim_chunk_decode_seconds_bucket{le="0.001"}`:     2,
		`pxewim_chunk_decode_seconds_bucket{le="0.01"}`:      3,
		`pxewim_chunk_decode_seconds_bucket{le="+Inf"}`:      3,
		`pxewim_active_clients`:                              2,
		`pxewim_known_clients`:                               5,
		`pxewim_build_info{version="v-test"}`:                1,
	}
	for k, v := range want {
		if got, ok := series[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if _, ok := series[`pxewim_dhcp_offers_total{firmware="bios",mode="ipxe"}`]; ok {
		t.Error("a no-boot or failed DISCOVER counted as an offer")
	}
	if _, ok := series["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
}

func parse(t *testing.T, body string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestChecksumFailures: transfers that ended on a checksum mismatch (wim.ChecksumError, as the
// servers pass it on) are counted per protocol; other errors are not; both series exist at 0.
func TestChecksumFailures(t *testing.T) {
	m := New(Sources{})
	scrape := func() map[string]float64 {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return parse(t, rec.Body.String())
	}
	for _, proto := range []string{"tftp", "http"} {
		if v, ok := scrape()[`pxewim_checksum_failures_total{proto="`+proto+`"}`]; !ok || v != 0 {
			t.Fatalf("%s checksum failures before any: %v (present %v), want 0", proto, v, ok)
		}
	}
	bad := &wim.ChecksumError{WIM: "boot.wim", Image: 1, Path: "Windows/Boot/PXE/bootmgr.exe"}
	to, ho := m.TFTPObserver(), m.HTTPObserver()
	to.TransferEnded(&tftp.Transfer{Size: 70000, Sent: 65536, Started: time.Now()}, fmt.Errorf("boot/bootmgr.exe: transfer aborted: %w", bad))
	to.TransferEnded(&tftp.Transfer{Started: time.Now()}, errors.New("timed out waiting for ACK"))
	ho.Ended(httpboot.Event{Kind: "blob", Status: 200, Bytes: 4096, Err: fmt.Errorf("reading body: %w", bad)})
	ho.Ended(httpboot.Event{Kind: "file", Status: 200, Bytes: 4096, Err: fmt.Errorf("reading body: %w", bad)})
	ho.Ended(httpboot.Event{Kind: "file", Status: 200, Bytes: 10, Err: errors.New("response cut short: sent 10 of 20 bytes")})
	// Refusals of a WIM known to be damaged are not aborted transfers.
	ho.Ended(httpboot.Event{Kind: "file", Status: 404, Err: fmt.Errorf("open: %w", bad)})
	to.TransferEnded(&tftp.Transfer{Size: -1, Started: time.Now()}, fmt.Errorf("open: %w", bad))
	s := scrape()
	for k, v := range map[string]float64{
		`pxewim_checksum_failures_total{proto="tftp"}`: 1,
		`pxewim_checksum_failures_total{proto="http"}`: 2,
	} {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
}
