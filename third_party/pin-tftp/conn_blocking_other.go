//go:build !linux

package tftp

// pxewim patch P6: blocking per-transfer sockets exist only on Linux (see
// conn_blocking_linux.go); elsewhere the upstream net.UDPConn path is used.

import (
	"errors"
	"net"
	"time"
)

type blockingConnection struct{}

func newBlockingConnection(net.IP, *net.UDPAddr) (*blockingConnection, error) {
	return nil, errors.New("blocking sockets are implemented on Linux only")
}

func (*blockingConnection) sendTo([]byte, *net.UDPAddr) error { return errors.ErrUnsupported }
func (*blockingConnection) readFrom([]byte) (int, *net.UDPAddr, error) {
	return 0, nil, errors.ErrUnsupported
}
func (*blockingConnection) setDeadline(time.Duration) error { return errors.ErrUnsupported }
func (*blockingConnection) close()                          {}
func (*blockingConnection) sendSegments([]byte, int) error  { return errors.ErrUnsupported }
