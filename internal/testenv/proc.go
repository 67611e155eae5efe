package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is one background process the test started. It is stopped by its own PID only: never by
// name, never a process group it did not create.
type Proc struct {
	Name    string // label used in messages
	LogPath string // where stdout and stderr go
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // exit status, valid after done is closed
}

// StartProc starts argv in the background with stdout and stderr appended to logPath. The child
// gets SIGKILL if the test binary dies (Pdeathsig), so a panicking test leaves nothing behind.
func StartProc(name, logPath string, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s: empty command", name)
	}
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: log file: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id. `ip netns exec` execs in place, so for commands started in a namespace
// this is the real program's PID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its exit error if so.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Wait waits up to timeout for the process to exit by itself.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v", p.Name, p.PID(), timeout)
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL. It is safe to call more than once and on
// a process that already exited. It returns the exit error unless the process was killed by us.
func (p *Proc) Stop(grace time.Duration) error {
	if done, err := p.Exited(); done {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID(), err)
	}
	<-p.done
	return nil
}

// Signal delivers sig to the process (e.g. SIGHUP for a reload test).
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}
