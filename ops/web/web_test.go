package web

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/ops"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}

func newServer(t *testing.T, o Options) (*httptest.Server, *ops.Hub) {
	t.Helper()
	hub := ops.NewHub(ops.Options{})
	o.Hub = hub
	srv := httptest.NewServer(Handler(o))
	t.Cleanup(srv.Close)
	return srv, hub
}

func TestPagesAndAPI(t *testing.T) {
	srv, hub := newServer(t, Options{Catalog: func() []CatalogRow {
		return []CatalogRow{{File: "boot.wim", Index: 1, Arch: "x64", Codec: "LZX"}}
	}})
	hub.Exchange(boot.Client{MAC: testMAC, IP: netip.MustParseAddr("10.0.0.9")}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "undionly.kpxe"}, nil)
	tests := []struct {
		path, ctype, want string
		status            int
	}{
		{"/", "text/html", `<table id="clients">`, 200},
		{"/assets/app.js", "javascript", "EventSource", 200},
		{"/assets/style.css", "text/css", "progress", 200},
		{"/api/clients", "application/json", `"bootFile":"undionly.kpxe"`, 200},
		{"/api/client?key=52:54:00:01:02:03", "application/json", `"what":"DISCOVER -\u003e undionly.kpxe"`, 200},
		{"/api/client?key=nobody", "text/plain", "no such client", 404},
		{"/api/catalog", "application/json", `"codec":"LZX"`, 200},
		{"/metrics", "text/plain", "404", 404}, // no metrics handler given
		{"/assets/../web.go", "text/plain", "", 404},
	}
	for _, tc := range tests {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %s, body %.200q; want %d %s with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.status, tc.ctype, tc.want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
	}
}

// TestNoExternalResources: the page must work offline, so it names no other host.
func TestNoExternalResources(t *testing.T) {
	for _, name := range []string{"assets/index.html", "assets/app.js", "assets/style.css"} {
		b, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"https://", "//cdn", "<script src=\"http"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}

func TestBasicAuth(t *testing.T) {
	srv, _ := newServer(t, Options{User: "admin", Password: "s3cret"})
	tests := []struct {
		user, pass string
		want       int
	}{
		{"", "", 401},
		{"admin", "wrong", 401},
		{"Admin", "s3cret", 401},
		{"admin", "s3cret", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest("GET", srv.URL+"/api/clients", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s/%s: %d, want %d", tc.user, tc.pass, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Error("401 without a Basic challenge")
		}
	}
}

// TestEvents: the stream sends the table at once and again after a change.
func TestEvents(t *testing.T) {
	srv, hub := newServer(t, Options{EventInterval: time.Millisecond})
	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan []ops.ClientView, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var v []ops.ClientView
				if json.Unmarshal([]byte(data), &v) == nil {
					events <- v
				}
			}
		}
		close(events)
	}()
	first := <-events
	if len(first) != 0 {
		t.Fatalf("first event: %d clients, want 0", len(first))
	}
	hub.Exchange(boot.Client{MAC: testMAC}, dhcpv4.MessageTypeDiscover, dhcp.Decision{BootFile: "x"}, nil)
	select {
	case v := <-events:
		if len(v) != 1 || v[0].MAC != testMAC.String() {
			t.Fatalf("event after DHCP: %+v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after a change")
	}
}
