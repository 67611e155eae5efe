package httpboot

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// nginxConf is the cache a site would put in front of pxewim: proxy_cache honouring upstream
// Cache-Control, revalidation with If-None-Match/If-Modified-Since, one upstream fetch per key.
var nginxConf = template.Must(template.New("nginx").Parse(`
master_process off;
worker_processes 1;
error_log {{.Prefix}}/error.log info;
events { worker_connections 64; }
http {
    log_format cache '$request "$http_range" $status $body_bytes_sent cache=$upstream_cache_status upstream=$upstream_status';
    access_log {{.Prefix}}/access.log cache;
    client_body_temp_path {{.Prefix}}/tmp/body;
    proxy_temp_path       {{.Prefix}}/tmp/proxy;
    fastcgi_temp_path     {{.Prefix}}/tmp/fastcgi;
    uwsgi_temp_path       {{.Prefix}}/tmp/uwsgi;
    scgi_temp_path        {{.Prefix}}/tmp/scgi;
    proxy_cache_path {{.Prefix}}/cache levels=1:2 keys_zone=pxewim:1m max_size=256m inactive=1d use_temp_path=off;
    upstream pxewim { server {{.Upstream}}; keepalive 4; }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://pxewim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache pxewim;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
        }
    }
}
`))

// startNginx runs nginx in the foreground (our own process, killed by PID in Cleanup) on a free
// 127.0.0.1 port, proxying to upstream, and returns its base URL.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	return testenv.StartNginx(t, func(prefix, listen string) string {
		var buf bytes.Buffer
		if err := nginxConf.Execute(&buf, map[string]string{"Prefix": prefix, "Upstream": upstream, "Listen": listen}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	})
}

// upstreamLog records what reached pxewim behind the cache.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path status inm=If-None-Match"
}

func (u *upstreamLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, r)
		u.mu.Lock()
		u.reqs = append(u.reqs, fmt.Sprintf("%s %s %d inm=%s", r.Method, r.URL.Path, rec.status, r.Header.Get("If-None-Match")))
		u.mu.Unlock()
	})
}

// count returns the requests for path that reached upstream.
func (u *upstreamLog) count(path string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.reqs {
		if strings.Fields(r)[1] == path {
			out = append(out, r)
		}
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// fetch is one client (its own connection pool) downloading url.
func fetch(t *testing.T, url string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestNginxCachesBlobs: behind nginx proxy_cache, a blob URL reaches pxewim once; every later
// client (whole file, range, HEAD) is served by the cache, byte-identical.
func TestNginxCachesBlobs(t *testing.T) {
	fx := newFixture(t, nil)
	var up upstreamLog
	srv, _ := loopbackServer(t, up.wrap(fx.h))
	cache := startNginx(t, srv.Listener.Addr().String())
	blob := fx.blobPath()

	status, h, first := fetch(t, cache+blob)
	if status != 200 || !bytes.Equal(first, fx.wim) || h.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("first client: status %d cache %q, %d bytes (identical=%v)", status, h.Get("X-Cache-Status"), len(first), bytes.Equal(first, fx.wim))
	}
	status, h, second := fetch(t, cache+blob)
	if status != 200 || !bytes.Equal(second, first) || h.Get("X-Cache-Status") != "HIT" {
		t.Errorf("second client: status %d cache %q, identical=%v", status, h.Get("X-Cache-Status"), bytes.Equal(second, first))
	}
	if h.Get("Cache-Control") != CacheImmutable || h.Get("ETag") != hashETag(fx.sum) {
		t.Errorf("cached response headers: Cache-Control %q ETag %q", h.Get("Cache-Control"), h.Get("ETag"))
	}
	status, _, part := fetch(t, cache+blob, "Range", "bytes=100000-100099")
	if status != 206 || !bytes.Equal(part, fx.wim[100000:100100]) {
		t.Errorf("range from the cache: status %d, identical=%v", status, bytes.Equal(part, fx.wim[100000:100100]))
	}
	status, _, _ = fetch(t, cache+blob, "If-None-Match", hashETag(fx.sum))
	if status != 304 {
		t.Errorf("conditional GET from the cache: status %d, want 304", status)
	}
	if got := up.count(blob); len(got) != 1 {
		t.Fatalf("pxewim saw the blob %d times behind the cache, want once: %v", len(got), got)
	}

	// A lab booting at once: 8 clients ask for an uncached blob together; proxy_cache_lock
	// lets one request through and serves the rest from the cache when it is filled.
	big := randomBytes(4<<20, 9)
	fx.fs.put("sources/big.wim", big, true)
	bigPath := BlobURL("", sha1.Sum(big), "sources/big.wim")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if status, _, b := fetch(t, cache+bigPath); status != 200 || !bytes.Equal(b, big) {
				t.Errorf("concurrent client %d: status %d, identical=%v", i, status, bytes.Equal(b, big))
			}
		})
	}
	wg.Wait()
	if got := up.count(bigPath); len(got) != 1 {
		t.Errorf("8 concurrent clients: pxewim saw the blob %d times, want once: %v", len(got), got)
	}
}

// TestNginxRevalidatesFiles: /files/ responses are never reused stale. With the default
// no-cache, nginx stores nothing (its rule for no-cache) and every client gets the current file;
// with FilesMaxAge nginx caches, revalidates with If-None-Match once the age is reached and gets
// a 304 from pxewim, and fetches the new bytes once the file changed.
func TestNginxRevalidatesFiles(t *testing.T) {
	t.Run("no-cache", func(t *testing.T) {
		fx := newFixture(t, nil)
		var up upstreamLog
		srv, _ := loopbackServer(t, up.wrap(fx.h))
		cache := startNginx(t, srv.Listener.Addr().String())
		const path = "/files/boot/x64/ipxe.efi"
		_, h, b1 := fetch(t, cache+path)
		_, _, b2 := fetch(t, cache+path)
		if !bytes.Equal(b1, fx.efi) || !bytes.Equal(b2, fx.efi) {
			t.Fatal("bodies through nginx differ from the file")
		}
		if got := up.count(path); len(got) != 2 {
			t.Errorf("a no-cache file reached pxewim %d times for 2 clients, want 2: %v", len(got), got)
		}
		if h.Get("X-Cache-Status") != "MISS" || h.Get("Cache-Control") != CacheRevalidate {
			t.Errorf("no-cache file through nginx: cache %q Cache-Control %q", h.Get("X-Cache-Status"), h.Get("Cache-Control"))
		}
		// A replaced file is seen by the very next client: nothing stale is kept.
		fx.fs.touch("boot/x64/ipxe.efi", []byte("rebuilt ipxe.efi"))
		if status, _, body := fetch(t, cache+path); status != 200 || string(body) != "rebuilt ipxe.efi" {
			t.Errorf("after the file changed: status %d body %q", status, body)
		}
	})
	t.Run("max-age", func(t *testing.T) {
		fx := newFixture(t, func(c *Config) { c.FilesMaxAge = time.Second })
		var up upstreamLog
		srv, _ := loopbackServer(t, up.wrap(fx.h))
		cache := startNginx(t, srv.Listener.Addr().String())
		const path = "/files/boot/x64/ipxe.efi"
		steps := []struct {
			wait        time.Duration
			change      string // new content before the step, "" for none
			cacheStatus string
			upstream    string // status pxewim answered with, "" when it saw nothing
			body        []byte
		}{
			{0, "", "MISS", "200", fx.efi},
			{0, "", "HIT", "", fx.efi},
			{2100 * time.Millisecond, "", "REVALIDATED", "304", fx.efi},
			{2100 * time.Millisecond, "rebuilt ipxe.efi", "EXPIRED", "200", []byte("rebuilt ipxe.efi")},
			{0, "", "HIT", "", []byte("rebuilt ipxe.efi")},
		}
		for i, st := range steps {
			time.Sleep(st.wait)
			if st.change != "" {
				fx.fs.touch("boot/x64/ipxe.efi", []byte(st.change))
			}
			before := len(up.count(path))
			status, h, body := fetch(t, cache+path)
			seen := up.count(path)[before:]
			if status != 200 || !bytes.Equal(body, st.body) || h.Get("X-Cache-Status") != st.cacheStatus {
				t.Errorf("step %d: status %d cache %q body identical=%v; want 200 %q", i, status, h.Get("X-Cache-Status"), bytes.Equal(body, st.body), st.cacheStatus)
			}
			switch {
			case st.upstream == "" && len(seen) != 0:
				t.Errorf("step %d: pxewim saw %v, want nothing (served from cache)", i, seen)
			case st.upstream != "" && (len(seen) != 1 || strings.Fields(seen[0])[2] != st.upstream):
				t.Errorf("step %d: pxewim saw %v, want one request answered %s", i, seen, st.upstream)
			case st.upstream == "304" && !strings.Contains(seen[0], "inm=\""):
				t.Errorf("step %d: nginx revalidated without If-None-Match: %v", i, seen)
			}
		}
	})
}
