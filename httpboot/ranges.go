package httpboot

import (
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// serveContent is http.ServeContent with one request fixed up first (see withoutZeroSuffix).
func serveContent(w http.ResponseWriter, r *http.Request, name string, modtime time.Time, body io.ReadSeeker, size int64) {
	if rng := r.Header.Get("Range"); rng != "" {
		if fixed := withoutZeroSuffix(rng, size); fixed != rng {
			r = r.Clone(r.Context()) // handlers must not modify the request they are given
			r.Header.Set("Range", fixed)
		}
	}
	http.ServeContent(w, r, name, modtime, body)
}

// withoutZeroSuffix drops suffix ranges of length zero ("-0") from a Range header. net/http
// (through Go 1.26) answers "bytes=-0" with a 206 and the impossible Content-Range
// "bytes N-(N-1)/N"; RFC 9110 §14.1.1 says a zero suffix-length is unsatisfiable. When no range
// is left, the header becomes "bytes=SIZE-", which ServeContent answers with a proper 416
// (or ignores, as the RFC wants, when If-Range does not match).
func withoutZeroSuffix(header string, size int64) string {
	specs, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return header
	}
	var keep []string
	for _, spec := range strings.Split(specs, ",") {
		s := textproto.TrimString(spec)
		if len(s) > 1 && s[0] == '-' && strings.Trim(s[1:], "0") == "" {
			continue
		}
		keep = append(keep, spec)
	}
	switch {
	case len(keep) == len(strings.Split(specs, ",")):
		return header
	case len(keep) == 0:
		return "bytes=" + strconv.FormatInt(size, 10) + "-"
	}
	return "bytes=" + strings.Join(keep, ",")
}
