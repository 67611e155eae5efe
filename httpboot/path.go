package httpboot

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"github.com/pxewim/pxewim/storepath"
)

// MaxPathLen is the longest URL path (decoded) the handler accepts: storepath's one limit.
// Boot file paths are short; anything longer is a probe or an attack, refused before it
// reaches a store.
const MaxPathLen = storepath.MaxLen

// routeKind says what a request path names.
type routeKind int

const (
	routeScript routeKind = iota + 1 // an iPXE script rendered by Config.Script
	routeFile                        // a file of the client's tree, revalidated
	routeBlob                        // a content-addressed file, immutable
)

func (k routeKind) String() string {
	switch k {
	case routeScript:
		return "script"
	case routeFile:
		return "file"
	case routeBlob:
		return "blob"
	}
	return "none"
}

// route is a parsed request path.
type route struct {
	kind routeKind
	name string           // script name, or fs.ValidPath of the file in the tree
	sum  [20]byte         // routeBlob: the SHA-1 named by the URL
	mac  net.HardwareAddr // from a /mac/{mac}/ prefix, nil otherwise
}

// httpError is a refusal with the status to send and a message that names the problem.
type httpError struct {
	status int
	msg    string
	cause  error // for the log; never sent to the client
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.cause)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *httpError) Unwrap() error { return e.cause }

func badRequest(format string, a ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, a...)}
}

// statusOf maps an error to the HTTP status sent for it.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// cleanPath turns a decoded URL path (or any part of one) into the segments of a path that
// stays inside the tree, with storepath's one cleaning rule (storepath.Clean, shared with TFTP
// and the config): backslashes count as separators because Windows tools write them, "." and
// empty segments drop, and a ".." segment, control characters, invalid UTF-8 and paths over
// MaxPathLen are refused (400).
func cleanPath(p string) ([]string, error) {
	clean, err := storepath.Clean(p)
	if err != nil {
		return nil, &httpError{status: http.StatusBadRequest, msg: strings.TrimPrefix(err.Error(), storepath.ErrInvalid.Error()+" "), cause: err}
	}
	if clean == "." {
		return nil, nil
	}
	return strings.Split(clean, "/"), nil
}

// CleanName returns the fs.ValidPath name for a client-supplied path (e.g. `\Boot\BCD` gives
// "Boot/BCD"), or an error naming why the path is refused. The root itself gives ".".
func CleanName(p string) (string, error) {
	segs, err := cleanPath(p)
	if err != nil {
		return "", err
	}
	if len(segs) == 0 {
		return ".", nil
	}
	return strings.Join(segs, "/"), nil
}

// parseRoute maps a decoded URL path to what it names.
func parseRoute(p string) (route, error) {
	segs, err := cleanPath(p)
	if err != nil {
		return route{}, err
	}
	var rt route
	if len(segs) >= 2 && segs[0] == "mac" {
		mac, err := ParseMAC(segs[1])
		if err != nil {
			return route{}, badRequest("path prefix /mac/%s/: %v", segs[1], err)
		}
		rt.mac, segs = mac, segs[2:]
	}
	if len(segs) == 0 {
		return route{}, notFound("no route for %q", p)
	}
	switch segs[0] {
	case "boot.ipxe":
		if len(segs) != 1 {
			return route{}, notFound("no route for %q", p)
		}
		rt.kind, rt.name = routeScript, "boot.ipxe"
	case "ipxe":
		rt.kind = routeScript
	case "files":
		rt.kind = routeFile
	case "blob":
		if len(segs) < 2 {
			return route{}, notFound("blob URL without a hash")
		}
		if rt.sum, err = parseSum(segs[1]); err != nil {
			return route{}, err
		}
		rt.kind, segs = routeBlob, segs[1:]
	default:
		return route{}, notFound("no route for %q", p)
	}
	if rt.name == "" {
		if len(segs) < 2 {
			return route{}, notFound("%s URL without a name", rt.kind)
		}
		rt.name = strings.Join(segs[1:], "/")
	}
	return rt, nil
}

// parseSum parses the hash segment of a blob URL. Only the canonical form (40 lowercase hex
// digits, as BlobURL writes it) is accepted, so one blob has exactly one URL and one cache entry.
func parseSum(s string) ([20]byte, error) {
	var sum [20]byte
	if len(s) != 2*len(sum) || strings.ToLower(s) != s {
		return sum, badRequest("blob hash %q is not 40 lowercase hex digits", s)
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, badRequest("blob hash %q: %v", s, err)
	}
	return sum, nil
}

// ParseMAC parses a MAC address as iPXE and firmware write it: "52:54:00:12:34:56",
// "52-54-00-12-34-56" (${mac:hexhyp}), "5254.0012.3456" or twelve bare hex digits.
func ParseMAC(s string) (net.HardwareAddr, error) {
	if len(s) == 12 {
		mac := make(net.HardwareAddr, 6)
		if _, err := hex.Decode(mac, []byte(s)); err != nil {
			return nil, fmt.Errorf("MAC address %q: %w", s, err)
		}
		return mac, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("MAC address %q: %w", s, err)
	}
	return mac, nil
}
