package gateway

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// unroutedName is the name label of requests for no known name.
const unroutedName = "_unrouted"

// Metrics are the gateway's Prometheus series, on a registry of their own.
// Name labels only ever hold names that had a live backend (so a client
// cannot grow the series by inventing Host headers), or unroutedName.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	bytesIn    *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	tunnelsUp  *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
	passConns  *prometheus.CounterVec
	openConns  prometheus.Gauge
	rejected   *prometheus.CounterVec

	mu   sync.Mutex
	lost map[string]int // tunnels lost per name and not yet replaced

	names sync.Map // name → *nameMetrics
}

// nameMetrics holds one name's series, looked up once.
type nameMetrics struct {
	name     string
	requests *prometheus.CounterVec
	codes    sync.Map // status code → prometheus.Counter
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	latency  prometheus.Observer
}

// forName returns the series of a name that has a live backend.
func (m *Metrics) forName(name string) *nameMetrics {
	if v, ok := m.names.Load(name); ok {
		return v.(*nameMetrics)
	}
	v, _ := m.names.LoadOrStore(name, &nameMetrics{
		name: name, requests: m.requests,
		bytesIn: m.bytesIn.WithLabelValues(name), bytesOut: m.bytesOut.WithLabelValues(name),
		latency: m.latency.WithLabelValues(name),
	})
	return v.(*nameMetrics)
}

// request counts one answered request.
func (n *nameMetrics) request(code int) {
	if c, ok := n.codes.Load(code); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := n.codes.LoadOrStore(code, n.requests.WithLabelValues(n.name, strconv.Itoa(code)))
	c.(prometheus.Counter).Inc()
}

// NewMetrics creates the series on a new private registry.
func NewMetrics() *Metrics {
	const ns = "zgrid_gateway"
	m := &Metrics{
		lost: make(map[string]int),
		reg:  prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "HTTP requests answered in terminate mode, by name and status code."}, []string{"name", "code"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "received_bytes_total",
			Help: "Bytes received from clients: request bodies (terminate) or raw bytes (passthrough)."}, []string{"name"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sent_bytes_total",
			Help: "Bytes sent to clients: response bodies (terminate) or raw bytes (passthrough)."}, []string{"name"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from request headers read to the response's end, terminate mode.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"name"}),
		tunnelsUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tunnels_up",
			Help: "Backend tunnels connected for the name."}, []string{"name"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnel_reconnects_total",
			Help: "Tunnels for the name that connected again after one was lost."}, []string{"name"}),
		passConns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "passthrough_connections_total",
			Help: "Client connections spliced to a backend in passthrough mode."}, []string{"name"}),
		openConns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "client_connections_open",
			Help: "Client connections currently open."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "client_connections_rejected_total",
			Help: "Client connections closed before routing, by reason: total, per-ip, not-tls, unknown-sni, handshake."}, []string{"reason"}),
	}
	m.reg.MustRegister(m.requests, m.bytesIn, m.bytesOut, m.latency, m.tunnelsUp, m.reconnects,
		m.passConns, m.openConns, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the private registry the series live on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// TunnelUp records a tunnel for name coming up; one that replaces a
// tunnel lost earlier counts as a reconnect (tunnel.Observer).
func (m *Metrics) TunnelUp(name string) {
	m.tunnelsUp.WithLabelValues(name).Inc()
	m.mu.Lock()
	lost := m.lost[name] > 0
	if lost {
		if m.lost[name]--; m.lost[name] == 0 {
			delete(m.lost, name)
		}
	}
	m.mu.Unlock()
	if lost {
		m.reconnects.WithLabelValues(name).Inc()
	}
}

// TunnelDown records a tunnel for name going away (tunnel.Observer).
func (m *Metrics) TunnelDown(name string) {
	m.tunnelsUp.WithLabelValues(name).Dec()
	m.mu.Lock()
	m.lost[name]++
	m.mu.Unlock()
}
