// Package metrics exposes a running topology's counters to Prometheus.
//
// The collector owns no counters of its own: at each scrape it calls a
// func() Snapshot, typically a wrapper around engine.Status, and turns the
// figures it gets into const metrics. The engine's counters are the single
// source of truth, so `ztopo ps` and a scrape taken at the same moment agree,
// and nothing has to be kept in step when nodes come and go on reload.
//
// Metrics:
//
//	ztopo_socket_messages_total{node,socket,direction="in|out"}  counter
//	ztopo_socket_bytes_total{node,socket,direction="in|out"}     counter
//	ztopo_socket_send_errors_total{node,socket}                  counter
//	ztopo_auth_failures_total{node,socket}                       counter, CURVE server sockets only
//	ztopo_node_restarts_total{node}                              counter
//	ztopo_node_state{node,state}                                 gauge, 1 for the current state, 0 for the others
//	ztopo_reloads_total{result="applied|rejected|failed"}        counter
//
// node is the instance name ("worker.2"). Counters of an instance that is
// replaced by a reload start again from zero, which Prometheus' rate()
// treats as a counter reset.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ztopo/ztopo/runtime/engine"
)

// Snapshot is what a scrape reports.
type Snapshot struct {
	Instances []engine.InstanceStatus
	Reloads   Reloads
}

// Reloads count reloads by outcome since `ztopo up` started.
type Reloads struct {
	Applied  uint64 // the new file was valid and applied
	Rejected uint64 // the new file was invalid; the running topology was kept
	Failed   uint64 // applying failed; the affected nodes were rolled back
}

// states are every state an instance can be in: ztopo_node_state has one
// series per state and instance, so that `ztopo_node_state{state="failed"}
// == 1` is a plain alert and no series vanishes when a node changes state.
var states = []engine.State{
	engine.StateStarting,
	engine.StateRunning,
	engine.StateStalled,
	engine.StateCompleted,
	engine.StateRestarting,
	engine.StateFailed,
	engine.StateStopped,
}

var (
	descMessages = prometheus.NewDesc("ztopo_socket_messages_total",
		"Messages received (direction=in) or sent (direction=out) on a socket of a node instance.",
		[]string{"node", "socket", "direction"}, nil)
	descBytes = prometheus.NewDesc("ztopo_socket_bytes_total",
		"Bytes of message frames received (direction=in) or sent (direction=out) on a socket of a node instance.",
		[]string{"node", "socket", "direction"}, nil)
	descSendErrors = prometheus.NewDesc("ztopo_socket_send_errors_total",
		"Messages a socket of a node instance failed to send (EAGAIN, high-water mark, unroutable).",
		[]string{"node", "socket"}, nil)
	descAuthFailures = prometheus.NewDesc("ztopo_auth_failures_total",
		"CURVE handshakes refused on a CURVE server socket of a node instance (a key not allowed, a plain client, a client expecting another server key).",
		[]string{"node", "socket"}, nil)
	descRestarts = prometheus.NewDesc("ztopo_node_restarts_total",
		"Restarts of a node instance under its restart policy.",
		[]string{"node"}, nil)
	descState = prometheus.NewDesc("ztopo_node_state",
		"1 for the current state of a node instance, 0 for the other states.",
		[]string{"node", "state"}, nil)
	descReloads = prometheus.NewDesc("ztopo_reloads_total",
		"Reloads of the topology file by outcome: applied, rejected (invalid file) or failed (rolled back).",
		[]string{"result"}, nil)
)

// Collector is a prometheus.Collector over a snapshot function.
type Collector struct {
	snapshot func() Snapshot
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector calling snapshot once per scrape;
// snapshot must be safe to call from any goroutine.
func NewCollector(snapshot func() Snapshot) *Collector {
	return &Collector{snapshot: snapshot}
}

// Describe sends the descriptors of every metric the collector may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descBytes, descSendErrors, descAuthFailures, descRestarts, descState, descReloads} {
		ch <- d
	}
}

// Collect sends the figures of one snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, in := range s.Instances {
		for _, so := range in.Sockets {
			counter(descMessages, so.MsgsIn, in.Name, so.Name, "in")
			counter(descMessages, so.MsgsOut, in.Name, so.Name, "out")
			counter(descBytes, so.BytesIn, in.Name, so.Name, "in")
			counter(descBytes, so.BytesOut, in.Name, so.Name, "out")
			counter(descSendErrors, so.SendErrors, in.Name, so.Name)
			if so.Curve == "server" {
				counter(descAuthFailures, so.AuthFailures, in.Name, so.Name)
			}
		}
		counter(descRestarts, uint64(max(in.Restarts, 0)), in.Name)
		known := false
		for _, st := range states {
			v := 0.0
			if st == in.State {
				v, known = 1, true
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, in.Name, string(st))
		}
		if !known && in.State != "" {
			// A state this package does not know yet still shows.
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, in.Name, string(in.State))
		}
	}
	counter(descReloads, s.Reloads.Applied, "applied")
	counter(descReloads, s.Reloads.Rejected, "rejected")
	counter(descReloads, s.Reloads.Failed, "failed")
}

// Handler serves the collector's metrics and the Go runtime's on a
// registry of its own (never the global one: two topologies in one test
// binary must not collide).
func Handler(snapshot func() Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snapshot), collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
