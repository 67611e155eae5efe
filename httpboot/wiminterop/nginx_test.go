package wiminterop

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// startNginx runs nginx (our own process, stopped by PID at cleanup) on a free loopback port
// with proxy_cache in front of upstream, as httpboot's doc shows it, and returns its URL.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	return testenv.StartNginx(t, func(prefix, listen string) string {
		return fmt.Sprintf(`master_process off; worker_processes 1;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body; proxy_temp_path %[1]s/tmp/proxy; fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi; scgi_temp_path %[1]s/tmp/scgi;
    proxy_cache_path %[1]s/cache levels=1:2 keys_zone=pxewim:1m max_size=64m inactive=1d use_temp_path=off;
    server {
        listen %[2]s;
        location / {
            proxy_pass http://%[3]s; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_cache pxewim; proxy_cache_revalidate on; proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }
    }
}
`, prefix, listen, upstream)
	})
}

// getVia downloads url and returns the status, X-Cache-Status, body and body error.
func getVia(t *testing.T, url string) (int, string, []byte, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Cache-Status"), b, err
}

// TestNginxNeverCachesDamagedWIMFile: real WIMs (wimlib-imagex: uncompressed, and XPRESS with
// the damaged chunk stored raw) with 4 bytes flipped in a file's data, served by httpboot from
// package wim with nginx proxy_cache in front: every client of the file's /blob/ URL gets a
// truncated body and reaches pxewim (nginx stores nothing), while the undamaged file of the
// same WIM is cached (MISS, then HIT) and byte-identical.
func TestNginxNeverCachesDamagedWIMFile(t *testing.T) {
	for i, comp := range []string{"none", "XPRESS"} {
		t.Run(comp, func(t *testing.T) {
			d := wimtest.MakeDamagedWIM(t, comp, uint64(70+i))
			rc, err := wim.OpenFile(d.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			img, err := rc.Image(1)
			if err != nil {
				t.Fatal(err)
			}
			var upstream atomic.Int64
			h := httpboot.NewHandler(httpboot.Config{Resolve: func(*http.Request, httpboot.ClientInfo) (fs.FS, error) { return img, nil },
				Logger: slog.New(slog.DiscardHandler)})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstream.Add(1)
				h.ServeHTTP(w, r)
			}))
			defer srv.Close()
			cache := startNginx(t, srv.Listener.Addr().String())
			bad := httpboot.BlobURL(cache, sha1.Sum(d.Data), d.Name)
			for k := range 3 {
				st, cs, body, err := getVia(t, bad)
				if err == nil || len(body) >= len(d.Data) || cs == "HIT" {
					t.Fatalf("client %d: status %d cache %q, %d of %d bytes, err %v: want a truncated body", k, st, cs, len(body), len(d.Data), err)
				}
				if n := upstream.Load(); n != int64(k+1) {
					t.Fatalf("client %d: pxewim saw %d requests, want %d (nothing cached)", k, n, k+1)
				}
			}
			good := httpboot.BlobURL(cache, sha1.Sum(d.OData), d.Other)
			for k, want := range []string{"MISS", "HIT"} {
				st, cs, body, err := getVia(t, good)
				if err != nil || st != 200 || cs != want || !bytes.Equal(body, d.OData) {
					t.Fatalf("undamaged file, client %d: status %d cache %q (want %s), identical=%v, %v", k, st, cs, want, bytes.Equal(body, d.OData), err)
				}
			}
		})
	}
}
