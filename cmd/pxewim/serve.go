package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pxewim/pxewim/boot"
)

//go:embed default-config.yaml
var defaultConfigYAML []byte

const defaultConfigName = "(built-in default config)"

// serveFlags are the command-line settings of "pxewim serve"; set ones override the config.
type serveFlags struct {
	config     string
	store      string
	interfaces stringList
	dhcp       string
	http       string
	tftp       string
	advertise  string
	tftpAdv    string
	logFormat  string
	logLevel   string
	check      bool
	set        map[string]bool // flags given on the command line
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func parseServeFlags(args []string, stdout io.Writer) (*serveFlags, error) {
	f := &serveFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.config, "config", "", "")
	fs.StringVar(&f.store, "store", "", "")
	fs.Var(&f.interfaces, "interface", "")
	fs.StringVar(&f.dhcp, "dhcp", "", "")
	fs.StringVar(&f.http, "http", "", "")
	fs.StringVar(&f.tftp, "tftp", "", "")
	fs.StringVar(&f.advertise, "advertise", "", "")
	fs.StringVar(&f.tftpAdv, "tftp-advertise", "", "")
	fs.StringVar(&f.logFormat, "log-format", "text", "")
	fs.StringVar(&f.logLevel, "log-level", "info", "")
	fs.BoolVar(&f.check, "check", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, serveManual)
			return nil, flag.ErrHelp
		}
		return nil, usageError{err.Error() + " (see pxewim serve --help)"}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q (see pxewim serve --help)", fs.Arg(0))}
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// newLogger builds the slog logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
}

// loadConfig reads the config file (or the embedded default), applies the flags and checks
// the result. Errors from the file name its line and key.
func (f *serveFlags) loadConfig() (*boot.Config, error) {
	name, data := defaultConfigName, defaultConfigYAML
	if f.config != "" {
		var err error
		if data, err = os.ReadFile(f.config); err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		name = f.config
	}
	cfg, err := boot.ParseConfig(name, data)
	if err != nil {
		return nil, err
	}
	f.resolvePaths(cfg)
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	return cfg, cfg.CheckRuntime()
}

// resolvePaths makes the config file's relative paths relative to its folder (pxewim check
// shares it).
func (f *serveFlags) resolvePaths(cfg *boot.Config) {
	if f.config == "" {
		return
	}
	relativeTo(filepath.Dir(f.config), &cfg.Store, &cfg.IPXE.Dir, &cfg.Images.SyslinuxDir,
		&cfg.Upload.AuthorizedKeys, &cfg.Upload.HostKey)
	for i := range cfg.SFTP.Keys {
		relativeTo(filepath.Dir(f.config), &cfg.SFTP.Keys[i])
	}
	for i := range cfg.SFTP.KnownHosts {
		relativeTo(filepath.Dir(f.config), &cfg.SFTP.KnownHosts[i])
	}
	if cfg.DHCP.Full != nil {
		relativeTo(filepath.Dir(f.config), &cfg.DHCP.Full.Leases)
	}
}

// relativeTo makes relative paths from a config file relative to the file's folder, so a
// config means the same whatever directory pxewim starts in (systemd starts it in /).
func relativeTo(dir string, paths ...*string) {
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(dir, *p)
		}
	}
}

// apply overrides config values with the flags that were given.
func (f *serveFlags) apply(cfg *boot.Config) error {
	if f.set["store"] {
		cfg.Store = f.store
	}
	if f.set["interface"] {
		cfg.DHCP.Interfaces = f.interfaces
	}
	if f.set["dhcp"] {
		switch m := boot.DHCPMode(f.dhcp); m {
		case boot.DHCPOff, boot.DHCPProxy, boot.DHCPFull:
			cfg.DHCP.Mode = m
		default:
			return usageError{fmt.Sprintf("--dhcp %q: want off, proxy or full", f.dhcp)}
		}
	}
	// Check flag addresses with the config's own rules by parsing a one-key document: the
	// messages then read the same as for the file.
	check := func(flagName, key, val string, dst *string) error {
		if !f.set[flagName] {
			return nil
		}
		doc := fmt.Sprintf("listen:\n  %s: %q\n", key, val)
		if _, err := boot.ParseConfig("--"+flagName, []byte(doc)); err != nil {
			return usageError{strings.ReplaceAll(err.Error(), ":2: ", ": ")}
		}
		*dst = val
		return nil
	}
	return errors.Join(
		check("http", "http", f.http, &cfg.Listen.HTTP),
		check("tftp", "tftp", f.tftp, &cfg.Listen.TFTP),
		check("advertise", "advertise", f.advertise, &cfg.Listen.Advertise),
		check("tftp-advertise", "tftp_advertise", f.tftpAdv, &cfg.Listen.TFTPAdvertise),
	)
}

// runServe runs the boot server until ctx ends (SIGTERM/SIGINT), then drains transfers.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseServeFlags(args, stdout)
	if err != nil {
		return err
	}
	if f.check {
		return runCheck(f, stdout)
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	d, err := newDaemon(f, log)
	if err != nil {
		return err
	}
	return d.run(ctx)
}
