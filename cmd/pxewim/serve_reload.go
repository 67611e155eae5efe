package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// watchConfig reloads on SIGHUP and when the config file's mtime or size changes (polled:
// editors replace files in ways inotify watchers miss, and polling needs no new dependency).
func (d *daemon) watchConfig(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(configPollPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			d.reload("SIGHUP")
		case <-tick.C:
			if d.configChanged() {
				d.reload("config file changed")
			}
		}
	}
}

func (d *daemon) configChanged() bool {
	if d.flags.config == "" {
		return false
	}
	fi, err := os.Stat(d.flags.config)
	if err != nil {
		return false // being replaced; the next poll sees the new file
	}
	d.reloadMu.Lock()
	old := d.configStat
	d.reloadMu.Unlock()
	return old == nil || !fi.ModTime().Equal(old.ModTime()) || fi.Size() != old.Size()
}

// reload loads the config again and swaps it in. A config with errors changes nothing: the
// old one keeps serving and the log names the line and key of each problem. Transfers in
// progress keep the files they opened; the old store closes its WIMs as they finish. Listen
// addresses and DHCP settings apply too (serve_listen.go): new listeners start before the old
// ones drain, and one that cannot bind leaves the old one serving.
func (d *daemon) reload(why string) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.cur.Load()
	st, err := d.load()
	if err != nil {
		if fi, serr := os.Stat(d.flags.config); serr == nil {
			d.configStat = fi // do not retry the same broken file every 2 s
		}
		d.log.Error("config reload failed; still serving the previous config", "why", why, "error", err.Error())
		return
	}
	if d.srv.ctx != nil {
		d.applyListeners(st.base, st.cfg)
	}
	d.install(st)
	// When the store URL changed, the old connection closes once the old store's files
	// (transfers still reading them) are closed.
	old.store.Retire(st.store)
	d.log.Info("config reloaded", "why", why, "config", st.cfg.Source, "entries", len(st.cfg.Entries), "rules", len(st.cfg.Rules),
		"http", st.cfg.Listen.HTTP, "tftp", st.cfg.Listen.TFTP, "dhcp", string(st.cfg.DHCP.Mode))
	d.logProblems(st)
}
