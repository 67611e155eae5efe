package upload

import (
	"fmt"
	"syscall"
)

// DefaultMinFreeBytes is the free space an upload must leave on the store's file system when
// Config.MinFreeBytes is 0: a full disk would break the catalog, the logs and the leases too.
const DefaultMinFreeBytes = 1 << 30

// spaceCheckEvery is how many written bytes an upload may add between two free-space checks:
// statfs per 32 KiB SFTP write would cost more than the write.
const spaceCheckEvery = 16 << 20

// minFree returns the configured reserve; 0 disables the check.
func (c *Config) minFree() int64 {
	switch {
	case c.MinFreeBytes < 0:
		return 0
	case c.MinFreeBytes == 0:
		return DefaultMinFreeBytes
	}
	return c.MinFreeBytes
}

// statfsFree returns the bytes an unprivileged writer may still use on dir's file system.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// checkSpace refuses a write of n more bytes that would leave less than the reserve free.
func (s *Server) checkSpace(n int64) error {
	reserve := s.cfg.minFree()
	if reserve == 0 {
		return nil
	}
	free, err := s.freeBytes()
	if err != nil {
		return err
	}
	if free-n < reserve {
		return fmt.Errorf("the store's disk has %s free and keeps %s in reserve (upload.min_free)",
			humanBytes(free), humanBytes(reserve))
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
