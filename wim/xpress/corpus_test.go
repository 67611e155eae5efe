package xpress

import (
	"testing"

	"github.com/pxewim/pxewim/wim/internal/codectest"
)

// corpus returns about n bytes of one kind of test data (see codectest.Corpus).
func corpus(t testing.TB, kind string, n int) []byte { return codectest.Corpus(t, kind, n) }
