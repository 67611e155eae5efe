// Package web serves pxewim's operator dashboard: charts of the server's throughput and active
// clients over the last hour, a clients table with live progress bars (sortable, filtered by
// stage and by MAC/IP/vendor text), the store's catalog, and per client a boot timeline (each
// DHCP exchange and TFTP/HTTP file as a bar with its bytes and duration, and the gaps where the
// client waited) above its boot trace, as one embedded page (HTML, CSS and vanilla
// JavaScript; no CDN, works offline) plus a small JSON API and a server-sent-events stream
// (text/event-stream) that pushes the clients table whenever the ops.Hub changes.
//
//	GET /                      the page (#/clients, #/catalog, #/client/MAC)
//	GET /api/clients           clients as JSON
//	GET /api/client?key=MAC    one client and its trace
//	GET /api/series            the last hour of traffic (bytes, requests, active clients per 10 s)
//	GET /api/catalog           catalog rows
//	GET /api/events            text/event-stream: "clients" events with the table
//	GET /metrics               Prometheus metrics, when Options.Metrics is set
package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/pxewim/pxewim/ops"
)

//go:embed assets
var assets embed.FS

// CatalogRow is one image (or one plain file) of the store, as the catalog view lists it.
type CatalogRow struct {
	File      string   `json:"file"`
	Index     int      `json:"index"` // image index in a WIM; 0 for a plain file
	Name      string   `json:"name"`
	Arch      string   `json:"arch"`
	Codec     string   `json:"codec"`
	Size      int64    `json:"size"`
	WindowsPE bool     `json:"windowsPE"`
	BootFiles []string `json:"bootFiles"` // "efi64: bootmgr, BCD, boot.sdi"
	Problems  []string `json:"problems"`  // what stops clients booting from it
	Notes     []string `json:"notes"`     // informational: pxewim works around it, clients boot
	// Loaders are the Authenticode verdicts on a WindowsPE image's UEFI boot managers
	// (bootmgfw.efi, EFI_EX/bootmgfw_EX.efi), as read from the image.
	Loaders []LoaderRow `json:"loaders,omitempty"`
}

// LoaderRow is the signature verdict on one EFI loader of an image.
type LoaderRow struct {
	Path     string   `json:"path"`     // "bootmgfw.efi", "EFI_EX/bootmgfw_EX.efi"
	Signed   bool     `json:"signed"`   // the file carries a signature
	SignedBy []string `json:"signedBy"` // the CA each signature chains to (Windows Production PCA 2011, Windows UEFI CA 2023, ...)
	DigestOK bool     `json:"digestOK"` // every signature verifies and its signed digest matches the file
	Summary  string   `json:"summary"`  // "signed by Windows UEFI CA 2023 (digest ok)", "unsigned", or why it could not be read
	Warning  string   `json:"warning"`  // what Secure Boot clients will refuse or stop booting ("" = none)
}

// Options configure the dashboard.
type Options struct {
	Hub     *ops.Hub
	Catalog func() []CatalogRow // nil shows an empty catalog
	Metrics http.Handler        // mounted at /metrics when set
	// User and Password, when User is set, require HTTP basic auth on every path.
	User, Password string
	// Listen is shown in the page's "how to reach this" note.
	Listen string
	// Version is shown in the page's header.
	Version string
	// EventInterval is the least time between two SSE pushes; 0 means 250 ms.
	EventInterval time.Duration
}

// Handler returns the dashboard's handler, rooted at "/" (mount it under a prefix with
// http.StripPrefix; the page uses relative URLs).
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /api/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"version": o.Version, "listen": o.Listen, "auth": o.User != ""})
	})
	mux.HandleFunc("GET /api/clients", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, o.Hub.Clients()) })
	mux.HandleFunc("GET /api/client", func(w http.ResponseWriter, r *http.Request) {
		c, trace, ok := o.Hub.Client(r.URL.Query().Get("key"))
		if !ok {
			http.Error(w, "no such client (it may have expired)", http.StatusNotFound)
			return
		}
		// "now" is the server's clock: the page draws transfers still in flight up to it.
		writeJSON(w, map[string]any{"client": c, "trace": trace, "now": o.Hub.Now()})
	})
	mux.HandleFunc("GET /api/series", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, o.Hub.Series()) })
	mux.HandleFunc("GET /api/catalog", func(w http.ResponseWriter, r *http.Request) {
		rows := []CatalogRow{}
		if o.Catalog != nil {
			rows = o.Catalog()
		}
		writeJSON(w, rows)
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) { serveEvents(w, r, o) })
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	var h http.Handler = mux
	if o.User != "" {
		h = basicAuth(h, o.User, o.Password)
	}
	return securityHeaders(h)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, fmt.Sprintf("encoding JSON: %v", err), http.StatusInternalServerError)
	}
}

// serveEvents streams the clients table: once at once, then after changes (at most one push
// per interval), with a comment every 15 s so proxies keep the connection open.
func serveEvents(w http.ResponseWriter, r *http.Request, o Options) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	every := o.EventInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	changes, cancel := o.Hub.Subscribe()
	defer cancel()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	send := func() error {
		b, err := json.Marshal(o.Hub.Clients())
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: clients\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send() != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-changes:
			if send() != nil {
				return
			}
			select { // coalesce bursts of progress events
			case <-time.After(every):
			case <-r.Context().Done():
				return
			}
		}
	}
}

// basicAuth requires user and password; it compares digests so the time taken does not tell
// how much of a guess was right.
func basicAuth(next http.Handler, user, password string) http.Handler {
	wantU, wantP := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotU, gotP := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		if !ok || subtle.ConstantTimeCompare(gotU[:], wantU[:])&subtle.ConstantTimeCompare(gotP[:], wantP[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="pxewim admin", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders: the page loads nothing from elsewhere, so say so.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
