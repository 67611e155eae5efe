// Package tftp is pxewim's read-only TFTP server. It serves, to each
// client, the fs.FS that Config.Resolve returns for it (a WIM image, a
// folder, an overlay...), reading files through io.ReaderAt so that many
// clients can fetch one file at once. Writes are refused with error 2
// (access violation); a missing file gets error 1 (file not found), which
// is what iPXE's autoexec.ipxe probe expects.
//
// # Paths
//
// PXE clients, bootmgr above all, ask for "\Boot\BCD", "/boot\x",
// "boot//pxelinux.0". NormalizePath maps them onto fs.ValidPath names with
// storepath's one cleaning rule (shared with HTTP and the config) and refuses
// "..", control characters, drive letters and absurd lengths. Case folding is the
// tree's job: WIM images fold case themselves; the store (localstore) folds a
// local folder. NormalizePath keeps requests inside the tree, but a tree
// can still leave itself: os.DirFS follows symbolic links anywhere, so
// serve a local folder as os.OpenRoot(dir) + Root.FS(), which refuses
// links that point outside it.
//
// # Options
//
// The server acknowledges in its OACK:
//   - blksize (RFC 2348): 8..65464, lowered to Config.MaxBlockSize (and,
//     for caps up to 1468, to the interface MTU);
//   - tsize (RFC 2349): the exact size from Stat;
//   - timeout (RFC 2349): 1..255 s, the transfer's retransmission timeout;
//   - windowsize (RFC 7440): 1..Config.MaxWindow blocks per ACK;
//   - msftwindow (Microsoft's variable window, used by bootmgr/WDS): the
//     client proposes 31416, the server answers 27182, and every ACK then
//     carries one more byte, the size of the next window.
//
// Unknown options are left out of the OACK, as RFC 2347 says. Block
// numbers wrap from 65535 to 0, so files over 32 MiB at 512-byte blocks
// (or 4 GiB at 65464) go through. A client that aborts with ERROR 8 right
// after the OACK (OVMF's tsize probe) is logged at debug level: it asks
// again at once.
//
// # Why a patched pin/tftp
//
// The project chose github.com/pin/tftp/v3 v3.2.0. Measured first (100 MB
// on loopback, blksize 1468, atftp client, this 2-core shared VM): its
// lock-step path took 4.0-4.3 s where tftpd-hpa took 2.6-2.9 s at low load
// (0.65-0.75x), and about 1.5 CPU-seconds per 100 MB against atftpd's 1.1:
// the cost is the Go runtime's park/wake per ACK (a bare Go lock-step loop
// costs the same; a connected socket or a blocking poll() did not help),
// not the library. Under load the Go server overtakes the single-threaded
// tftpd-hpa (bench/tftp.sh). What the library lacks is protocol: no RFC
// 7440 windowsize nor msftwindow (its SetAnticipate is a non-standard burst
// mode that negotiates nothing and stalls on loss), every error sent as
// code 1, the timeout option dropped, a client's ERROR reported as an
// untyped string. None of that can be added from outside: the library owns
// the sockets and the packet loop and exposes no hook between the RRQ and
// the first DATA. Handling windowed RRQs ourselves beside it would mean a
// second packet loop on the same socket. So go.mod replaces the module
// with third_party/pin-tftp, a copy with a small, additive diff listed in
// third_party/pin-tftp/PATCHES.md:
// option negotiation for timeout/windowsize/msftwindow, a separate
// windowed sender file used only when a window > 1 is negotiated (lock-step
// keeps the upstream code), typed errors with codes, case-insensitive
// option names. Each change is marked "pxewim Pn" in the code.
package tftp
