// Package ops is pxewim's operator view of what clients are doing: an event hub that the DHCP,
// TFTP and HTTP observers feed, keeping per-client state (MAC, IP, vendor, firmware, boot file,
// stage DHCP -> TFTP -> HTTP -> handed off, transfers with progress and throughput, last error
// with a hint in plain words) and a bounded per-client boot trace. The web dashboard
// (ops/web) and the Prometheus metrics (ops/metrics) read it.
//
// Memory is bounded: at most Options.MaxClients clients (the least recently seen are dropped,
// and clients not seen for Options.TTL expire), each with a trace ring of Options.TraceLen
// entries and at most maxLiveTransfers transfers in flight.
package ops
