//go:build !linux

package lzms

import "time"

// threadCPU falls back to wall time where thread CPU clocks are not available.
func threadCPU() time.Duration { return time.Duration(time.Now().UnixNano()) }
