package tftp

// pxewim patch P3/P4: typed errors in both directions.
//
// Upstream v3.2.0 sends every handler error to the peer as error code 1
// ("File not found") and reports an ERROR packet from the peer as a plain
// fmt error. A read-only PXE server needs to refuse writes with code 2
// (access violation) and to tell a firmware's routine "ERROR 8 after OACK"
// size probe apart from a real failure, so both directions get a type.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ErrorCoder is implemented by handler errors that choose the TFTP error
// code sent to the peer (RFC 1350 section 5). Errors that do not implement
// it are sent with code 1, as upstream does.
type ErrorCoder interface {
	TFTPErrorCode() uint16
}

// PeerError is returned when the remote peer ended the transfer with an
// ERROR packet. Code 8 (RFC 2347) means the peer refused or probed the
// options and aborted on purpose.
type PeerError struct {
	Block   uint16 // block being sent or received when the error arrived
	Code    uint16
	Message string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("sending block %d: code=%d, error: %s", e.Block, e.Code, e.Message)
}

// errorPacketFor picks the code and message sent for err: the handler's
// choice when it implements ErrorCoder; code 0 "timed out waiting for ACK"
// when we gave up on a silent peer (upstream sent code 1 "file not found"
// with the socket's text, which tells the peer a lie and leaks our address);
// code 1 with err's text otherwise (upstream behaviour).
func errorPacketFor(err error) (uint16, string) {
	var c ErrorCoder
	if errors.As(err, &c) {
		return c.TFTPErrorCode(), err.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, "timed out waiting for ACK"
	}
	return 1, err.Error()
}

// isPeerError reports whether err came from the peer's own ERROR packet:
// RFC 1350 says ERROR packets are not acknowledged, so we must not answer
// one with another ERROR.
func isPeerError(err error) bool {
	var p *PeerError
	return errors.As(err, &p)
}

// pxewim patch P7: a request that cannot be served gets an ERROR.
//
// Upstream read requests into a 516-byte buffer and dropped, without a
// reply, any request it could not parse, including longer ones (which the
// socket truncated): the client then retried until its own timeout.
// RFC 1350/2347 cap a request at 512 bytes; tftpd-hpa answers both cases
// with an ERROR, and so does this. Only packets that claim to be RRQ or
// WRQ are answered, so stray DATA/ACK/ERROR packets (and ERROR loops) stay
// silent as before.

// checkRequest returns nil for a request packet that upstream's parser
// can take (it is lenient about the mode and options) (or a packet
// that is no request at all, which the caller drops). Otherwise it sends
// ERROR 4 (illegal TFTP operation) to the client and returns why.
func (s *Server) checkRequest(local net.IP, remote *net.UDPAddr, p []byte) error {
	if len(p) < 2 {
		return errors.New("short packet")
	}
	op := binary.BigEndian.Uint16(p)
	if op != opRRQ && op != opWRQ {
		return nil
	}
	var why string
	switch {
	case len(p) > datagramLength:
		why = "request longer than 512 bytes"
	case bytes.IndexByte(p[2:], 0) < 0:
		why = "malformed request: filename not NUL-terminated"
	case p[2] == 0:
		why = "malformed request: empty filename"
	default:
		return nil
	}
	s.sendRefusal(local, remote, 4, why)
	return fmt.Errorf("request from %v refused: %s", remote, why)
}

// sendRefusal sends an ERROR from the listening socket, from the address
// the request was sent to when known.
func (s *Server) sendRefusal(local net.IP, remote *net.UDPAddr, code uint16, msg string) {
	b := make([]byte, len(msg)+6)
	b = b[:packERROR(b, code, msg)]
	switch {
	case s.conn4 != nil && local.To4() != nil:
		_, _ = s.conn4.WriteTo(b, &ipv4.ControlMessage{Src: local}, remote)
	case s.conn6 != nil && local != nil:
		_, _ = s.conn6.WriteTo(b, &ipv6.ControlMessage{Src: local}, remote)
	case s.conn != nil:
		_, _ = s.conn.WriteTo(b, remote)
	}
}
