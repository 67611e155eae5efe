package upload

import (
	"context"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// serveConn runs one SSH connection: handshake, then session channels with the sftp subsystem.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second)) // bound the handshake
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.sshCfg)
	if err != nil {
		s.log.Info("upload: ssh handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	nc.SetDeadline(time.Time{})
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	log := s.log.With("user", conn.User(), "remote", conn.RemoteAddr().String(), "key", conn.Permissions.Extensions["key"])
	log.Info("upload: admin connected")
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		id := strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(s.seq.Add(1), 10)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveSession(ctx, ch, chReqs, id, log.With("session", id))
		}()
	}
}

// serveSession waits for the sftp subsystem request and runs the SFTP request server; shells,
// commands and other subsystems are refused.
func (s *Server) serveSession(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, id string, log logger) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "subsystem" || len(req.Payload) < 4 || string(req.Payload[4:]) != "sftp" {
			if req.Type == "shell" || req.Type == "exec" || req.Type == "subsystem" {
				fmt.Fprintf(ch.Stderr(), "pxewim: this server offers SFTP only\r\n")
			}
			req.Reply(req.Type == "env" || req.Type == "pty-req", nil) // harmless, ignored
			continue
		}
		req.Reply(true, nil)
		go ssh.DiscardRequests(reqs)
		h := &handler{s: s, ctx: ctx, sessDir: path.Join(s.incoming, id), stderr: ch.Stderr(), log: log}
		rs := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
		if err := rs.Serve(); err != nil && err != io.EOF {
			log.Info("upload: sftp session ended", "err", err)
		}
		rs.Close()
		h.cleanup()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
		return
	}
}
