package dhcp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no interfaces", Config{Mode: ModeProxy, Policy: testPolicy{}}, "no interfaces"},
		{"unknown interface", Config{Mode: ModeProxy, Policy: testPolicy{}, Interfaces: []string{"pxw-nonexistent0"}}, "pxw-nonexistent0"},
		{"proxy without policy", Config{Mode: ModeProxy, Interfaces: []string{"lo"}}, "Policy"},
		{"unknown mode", Config{Mode: Mode("turbo"), Interfaces: []string{"lo"}}, "unknown mode"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLog()
			s, err := New(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestModeOffServesNothing(t *testing.T) {
	s, err := New(Config{Mode: ModeOff, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Leases() != nil {
		t.Error("off mode has a lease store")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeOff, "off": ModeOff, "proxy": ModeProxy, "full": ModeFull} {
		if got, err := ParseMode(in); err != nil || got != want || (in != "" && got.String() != in) {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("dhcpd"); err == nil || !strings.Contains(err.Error(), "dhcpd") {
		t.Errorf("bad mode: %v", err)
	}
}

// Reconfigure refuses what New refuses, keeps the settings in effect when it does, and is
// refused after Close. (Switching modes on real sockets: TestNetnsReconfigure.)
func TestReconfigureRefusals(t *testing.T) {
	s, err := New(Config{Mode: ModeOff, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown mode", Config{Mode: Mode("warp"), Interfaces: []string{"lo"}}, "unknown mode"},
		{"proxy without policy", Config{Mode: ModeProxy, Interfaces: []string{"lo"}}, "Policy"},
		{"no interfaces", Config{Mode: ModeProxy, Policy: testPolicy{}}, "no interfaces"},
		{"missing interface", Config{Mode: ModeProxy, Policy: testPolicy{}, Interfaces: []string{"pxw-nonexistent0"}}, "pxw-nonexistent0"},
		{"full without pool", Config{Mode: ModeFull, Policy: testPolicy{}, Interfaces: []string{"lo"}}, "pool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Reconfigure(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tt.want)
			}
			if s.Mode() != ModeOff || s.Leases() != nil {
				t.Errorf("a refused reconfiguration changed the server: mode %v", s.Mode())
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Reconfigure(Config{Mode: ModeOff}); !errors.Is(err, ErrClosed) {
		t.Errorf("Reconfigure after Close: %v, want ErrClosed", err)
	}
}
