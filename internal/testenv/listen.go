package testenv

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNetns runs fn on an OS thread switched into the namespace, then switches the thread back.
// Sockets created by fn stay in the namespace after it returns, so a test can run an in-process
// server (net/http, a TFTP peer) on the lab's addresses. fn must not start goroutines that expect
// to be in the namespace: only the calling thread is switched.
func (ns *Netns) InNetns(fn func() error) error {
	target, err := os.Open("/run/netns/" + ns.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the lab namespace: keep it locked so the runtime destroys it when
		// this goroutine ends instead of reusing it for unrelated work.
		return fmt.Errorf("leave netns %s: %w", ns.Name, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Listen opens a stream listener ("tcp", "tcp4", ...) on addr inside the namespace.
func (ns *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.InNetns(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in netns %s: %w", network, addr, ns.Name, err)
	}
	return l, nil
}

// ListenPacket opens a packet socket ("udp", "udp4", ...) on addr inside the namespace.
func (ns *Netns) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := ns.InNetns(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in netns %s: %w", network, addr, ns.Name, err)
	}
	return c, nil
}
