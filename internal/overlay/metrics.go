package overlay

import "github.com/prometheus/client_golang/prometheus"

// Metric descriptions of Overlay.Collector.
var (
	descInstalled = prometheus.NewDesc("zgrid_overlay_psk_installed_total",
		"Pre-shared keys from the post-quantum (ML-KEM-768) exchange installed, over all peers.", nil, nil)
	descFailed = prometheus.NewDesc("zgrid_overlay_psk_exchange_failures_total",
		"Post-quantum key exchanges that failed (each is retried within seconds).", nil, nil)
	descRecoveries = prometheus.NewDesc("zgrid_overlay_psk_recoveries_total",
		"Pre-shared keys dropped because no handshake succeeded with them for the recovery period.", nil, nil)
	descPeers = prometheus.NewDesc("zgrid_overlay_peers",
		"Peers by post-quantum state: pq (sessions use a key from the exchange), classical (not yet, within the grace period), blocked (traffic stopped: no post-quantum key past the grace period).",
		[]string{"state"}, nil)
)

// collector reads an overlay's counters when scraped.
type collector struct{ o *Overlay }

// Collector returns the overlay's Prometheus metrics: keys installed,
// failed exchanges, recoveries, and peers by post-quantum state.
func (o *Overlay) Collector() prometheus.Collector { return collector{o} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstalled, descFailed, descRecoveries, descPeers} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	x := c.o.psk
	ch <- prometheus.MustNewConstMetric(descInstalled, prometheus.CounterValue, float64(x.stats.installed.Load()))
	ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(x.stats.failed.Load()))
	ch <- prometheus.MustNewConstMetric(descRecoveries, prometheus.CounterValue, float64(x.stats.recoveries.Load()))
	var pq, classical, blocked int
	x.mu.Lock()
	for _, p := range x.pairs {
		switch {
		case p.pq:
			pq++
		case p.blocked:
			blocked++
		default:
			classical++
		}
	}
	x.mu.Unlock()
	for state, n := range map[string]int{"pq": pq, "classical": classical, "blocked": blocked} {
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(n), state)
	}
}
