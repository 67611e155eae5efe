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

// errorCodeFor picks the code to send for err: the handler's choice when it
// implements ErrorCoder, 1 otherwise (upstream behaviour).
func errorCodeFor(err error) uint16 {
	var c ErrorCoder
	if errors.As(err, &c) {
		return c.TFTPErrorCode()
	}
	return 1
}

// isPeerError reports whether err came from the peer's own ERROR packet:
// RFC 1350 says ERROR packets are not acknowledged, so we must not answer
// one with another ERROR.
func isPeerError(err error) bool {
	var p *PeerError
	return errors.As(err, &p)
}
