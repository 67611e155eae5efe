package main

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pxewim/pxewim/ops/web"
)

// The Windows Setup share on /metrics and the dashboard (serve_smb.go).

var (
	descSetupEnabled  = prometheus.NewDesc("pxewim_setup_share_enabled", "1 when the Windows Setup SMB share is on (smbd installed, root, setup.share not off).", nil, nil)
	descSetupUp       = prometheus.NewDesc("pxewim_setup_share_up", "1 while smbd runs and accepts connections for the Windows Setup share.", nil, nil)
	descSetupStarts   = prometheus.NewDesc("pxewim_setup_share_smbd_starts_total", "Times smbd was started for the Windows Setup share.", nil, nil)
	descSetupRestarts = prometheus.NewDesc("pxewim_setup_share_smbd_restarts_total", "Times smbd was started again after it died or failed.", nil, nil)
	descSetupMedia    = prometheus.NewDesc("pxewim_setup_share_media", "Windows ISOs offered by the Windows Setup share.", nil, nil)
	descSetupAccounts = prometheus.NewDesc("pxewim_setup_share_accounts", "SMB accounts the Windows Setup share accepts: 1 with setup.credentials per_boot, one per client that fetched a Setup entry with per_client.", nil, nil)
	descSetupDamaged  = prometheus.NewDesc("pxewim_setup_share_damaged_file", "1 for each WIM of the Windows Setup share (FOLDER/path) that failed verification: its reads fail.", []string{"file"}, nil)
)

type setupCollector struct{ status func() setupStatus }

func (setupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSetupEnabled, descSetupUp, descSetupStarts, descSetupRestarts, descSetupMedia, descSetupAccounts, descSetupDamaged} {
		ch <- d
	}
}

func (c setupCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descSetupEnabled, prometheus.GaugeValue, b(s.Enabled))
	ch <- prometheus.MustNewConstMetric(descSetupUp, prometheus.GaugeValue, b(s.Running))
	ch <- prometheus.MustNewConstMetric(descSetupStarts, prometheus.CounterValue, float64(s.Starts))
	ch <- prometheus.MustNewConstMetric(descSetupRestarts, prometheus.CounterValue, float64(s.Restarts))
	ch <- prometheus.MustNewConstMetric(descSetupMedia, prometheus.GaugeValue, float64(len(s.Media)))
	ch <- prometheus.MustNewConstMetric(descSetupAccounts, prometheus.GaugeValue, float64(s.Accounts))
	for _, f := range s.Damaged {
		ch <- prometheus.MustNewConstMetric(descSetupDamaged, prometheus.GaugeValue, 1, f)
	}
}

// setupRows adds the share's state to the dashboard's catalog rows of the Windows ISOs it
// offers: a note while smbd runs, a problem when it does not.
func (d *daemon) setupRows(rows []web.CatalogRow) []web.CatalogRow {
	s := d.setupStatus()
	if !s.Enabled {
		return rows
	}
	folders := d.setup.view.folders()
	for i := range rows {
		folder, ok := folders[strings.ToLower(rows[i].File)]
		if !ok || rows[i].Index != 0 {
			continue
		}
		switch {
		case s.Running:
			rows[i].Notes = append(rows[i].Notes, fmt.Sprintf("Windows Setup over the network: share folder %s\\%s (smbd pid %d, %d restarts)", setupShareName, folder, s.PID, s.Restarts))
		case s.LastError != "":
			rows[i].Problems = append(rows[i].Problems, "Windows Setup share down: "+s.LastError)
		case s.LastStartError != "":
			rows[i].Problems = append(rows[i].Problems, "Windows Setup share not running: "+s.LastStartError)
		default:
			rows[i].Notes = append(rows[i].Notes, "Windows Setup share: starting")
		}
		for _, f := range s.Damaged {
			if strings.HasPrefix(f, folder+"/") {
				rows[i].Problems = append(rows[i].Problems, "Windows Setup share: "+strings.TrimPrefix(f, folder+"/")+" failed verification; reads of it fail")
			}
		}
	}
	return rows
}

// folders maps each offered ISO's store path (lower case) to its share folder.
func (v *setupView) folders() map[string]string {
	out := map[string]string{}
	if m := v.cur.Load(); m != nil {
		for _, vi := range m.byName {
			out[strings.ToLower(vi.media.ISO)] = vi.media.Folder
		}
	}
	return out
}
