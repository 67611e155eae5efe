package tftp

// pxewim patch P3/P4: typed errors in both directions.
//
// Upstream v3.2.0 sends every handler error to the peer as error code 1
// ("File not found") and reports an ERROR packet from the peer as a plain
// fmt error. A read-only PXE server needs to refuse writes with code 2
// (access violation) and to tell a firmware's routine "ERROR 8 after OACK"
// size probe apart from a real failure, so both directions get a type.

import (
	"errors"
	"fmt"
	"net"
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
