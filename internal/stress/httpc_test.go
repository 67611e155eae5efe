package stress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// nsClient returns an HTTP client whose connections are made inside ns from local address
// src (any when invalid). Each client keeps its own keep-alive connection, as one PXE client
// (iPXE) does.
func nsClient(ns *testenv.Netns, src netip.Addr, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.InNetns(func() (err error) {
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		MaxIdleConnsPerHost: 2,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// getRange fetches [off, off+n) of url and checks it is a 206 with exactly n bytes.
func getRange(ctx context.Context, c *http.Client, url string, off, n int64, buf []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s range %d+%d: status %s", url, off, n, resp.Status)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return nil, fmt.Errorf("GET %s range %d+%d: %w", url, off, n, err)
	}
	if extra, _ := io.Copy(io.Discard, resp.Body); extra != 0 {
		return nil, fmt.Errorf("GET %s range %d+%d: %d bytes too many", url, off, n, extra)
	}
	return buf, nil
}

// getAll fetches url whole and returns status and body (body capped at max bytes).
func getAll(ctx context.Context, c *http.Client, url string, max int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max))
	return resp.StatusCode, b, err
}
