package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer is a log sink (an io.Writer for slog handlers) safe for concurrent writers, whose
// text tests read while the writers run.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
