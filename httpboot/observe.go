package httpboot

import (
	"io"
	"net/http"
	"time"
)

// Event describes one request at a point of its life, for the dashboard and metrics.
type Event struct {
	ID       uint64    // unique per Handler, the same in all events of one request
	Start    time.Time // when the request arrived
	Method   string
	Path     string // the URL path as requested (decoded)
	Kind     string // "script", "file", "blob", or "none" when the path names nothing
	Name     string // the script name or the path in the tree ("" when the path names nothing)
	Range    string // the Range header, "" when absent
	Client   ClientInfo
	Size     int64         // the file's or script's full size, -1 until known
	Status   int           // 0 until the response header is written
	Bytes    int64         // body bytes written so far
	Duration time.Duration // time since Start (in Progress and Ended)
	Err      error         // Ended: why the request failed or stopped early, nil if it did not
}

// Observer watches requests. Calls for one request come from its serving goroutine, in order:
// Started, any number of Progress (at most one per Config.ProgressInterval), Ended. Calls for
// different requests are concurrent. Implementations must be quick: they run on the data path.
type Observer interface {
	Started(Event)
	Progress(Event)
	Ended(Event)
}

// recorder wraps a ResponseWriter to count body bytes, keep the status and report progress.
type recorder struct {
	http.ResponseWriter
	ev       *Event
	obs      Observer
	every    time.Duration
	lastTick time.Time
}

func (rw *recorder) WriteHeader(status int) {
	if rw.ev.Status == 0 {
		rw.ev.Status = status
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.ev.Status == 0 {
		rw.ev.Status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.sent(int64(n))
	return n, err
}

// readFromPiece is how much one ReadFrom call of the connection copies before the recorder
// counts it and reports progress.
const readFromPiece = 4 << 20

// ReadFrom lets a body copy (ServeContent's io.CopyN) reach the connection's ReadFrom, which
// has the kernel copy a plain file (sendfile) instead of going through Write. It copies in
// pieces of readFromPiece bytes, each still one sendfile, so that bytes and progress are
// reported along the way.
func (rw *recorder) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := rw.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{rw}, src)
	}
	if rw.ev.Status == 0 {
		rw.ev.Status = http.StatusOK
	}
	outer, limited := src.(*io.LimitedReader)
	inner := src
	if limited {
		inner = outer.R
	}
	kb, _ := inner.(*kernelBody)
	var total int64
	for {
		n := int64(readFromPiece)
		if limited {
			if outer.N <= 0 {
				return total, nil
			}
			n = min(n, outer.N)
		}
		var k int64
		var err error
		if kb != nil {
			if total == 0 {
				// The header now, alone: net/http would otherwise read the body's first 512
				// bytes through user space to send them with it.
				if f, ok := rw.ResponseWriter.(http.Flusher); ok {
					f.Flush()
				}
			}
			k, err = kb.sendTo(rf, n)
		} else {
			k, err = rf.ReadFrom(&io.LimitedReader{R: inner, N: n})
		}
		total += k
		if limited {
			outer.N -= k
		}
		rw.sent(k)
		if err != nil || k < n {
			return total, err
		}
	}
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// sent counts body bytes and reports progress at most once per interval.
func (rw *recorder) sent(n int64) {
	rw.ev.Bytes += n
	if rw.obs != nil {
		if now := time.Now(); now.Sub(rw.lastTick) >= rw.every {
			rw.lastTick = now
			rw.ev.Duration = now.Sub(rw.ev.Start)
			rw.obs.Progress(*rw.ev)
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
