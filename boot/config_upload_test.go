package boot

import (
	"strings"
	"testing"
)

func TestUploadLimits(t *testing.T) {
	const base = "upload: {listen: \"127.0.0.1:2222\", authorized_keys: a.pub, host_key: hk"
	tests := []struct {
		name     string
		src      string
		maxBytes int64
		minFree  int64 // as upload.Config wants it: 0 default, -1 off
		err      string
	}{
		{"defaults", base + "}\n", 0, 0, ""},
		{"limits", base + ", max_bytes: 8GiB, min_free: 20GiB}\n", 8 << 30, 20 << 30, ""},
		{"reserve off", base + ", min_free: 0}\n", 0, -1, ""},
		{"bad size", base + ", max_bytes: 8 gigs}\n", 0, 0, "c.yaml:1: upload.max_bytes: want a size"},
		{"negative", base + ", min_free: -5}\n", 0, 0, "upload.min_free: want a size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("c.yaml", []byte(tt.src))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Upload.MaxBytes != tt.maxBytes || cfg.Upload.UploadMinFree() != tt.minFree {
				t.Fatalf("max_bytes %d min_free %d, want %d %d", cfg.Upload.MaxBytes, cfg.Upload.UploadMinFree(), tt.maxBytes, tt.minFree)
			}
		})
	}
}
