// Package ui serves the live picture of a running topology behind
// `ztopo up --ui ADDR`: one page, embedded (it works offline), showing the
// wiring as a graph with each node's state and the message rate on every
// edge, kept current through server-sent events.
//
// The graph is laid out on the server by Graphviz (`dot -Tsvg`) from the
// same DOT that `ztopo graph` prints, so the page shows the picture users
// already know, hosts as clusters included, and carries no layout code of
// its own. It is rendered once per topology (again after a reload), never
// per update. Updates cost nothing while nobody watches: the status is read
// only for a connected page, once a second.
//
// Routes: / (the page), /graph.svg, /events (text/event-stream: one
// "status" event a second), /node?name=BASE (its instances' sockets and
// endpoints and its last log lines), /tap?node=INSTANCE&socket=NAME
// (text/event-stream: the messages passing that socket, as ztopo tap
// prints them, while the page listens).
package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ztopo/ztopo/runtime/control"
	"github.com/ztopo/ztopo/runtime/logbuf"
	"github.com/ztopo/ztopo/runtime/tap"
	"github.com/ztopo/ztopo/spec"
	"github.com/ztopo/ztopo/spec/graph"
)

//go:embed assets/index.html
var assets embed.FS

// Interval is how often a connected page gets the status.
const Interval = time.Second

// logLines bounds the log lines the node panel shows.
const logLines = 30

// dotTimeout bounds one Graphviz run.
const dotTimeout = 20 * time.Second

// Source is what the page shows.
type Source struct {
	// Topology is the running (resolved) topology; a reload replaces it.
	Topology func() *spec.Topology
	// Status is the reply of `ztopo status --json`.
	Status func() control.StatusReply
	// Logs is the log kept by `up`; nil shows no log lines.
	Logs *logbuf.Ring
	// Tap attaches t to a socket of an instance or node (engine.Tap); nil:
	// the page offers no tap.
	Tap func(t *tap.Tap, node, socket string) ([]string, error)
}

// Server is the UI's http.Handler.
type Server struct {
	src Source
	log hclog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	rendered *spec.Topology // the topology svg and version were made from
	svg      []byte
	version  string
	dotErr   error
}

// New returns the handler serving the page for src.
func New(src Source, log hclog.Logger) *Server {
	s := &Server{src: src, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /graph.svg", s.graphSVG)
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /node", s.node)
	s.mux.HandleFunc("GET /tap", s.tap)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	b, _ := assets.ReadFile("assets/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// graph returns the current topology's SVG and its version, rendering it
// when the topology changed since the last call.
func (s *Server) graph() (svg []byte, version string, err error) {
	t := s.src.Topology()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t != s.rendered {
		dot := graph.DOT(t)
		sum := sha256.Sum256([]byte(dot))
		s.rendered, s.version = t, hex.EncodeToString(sum[:8])
		s.svg, s.dotErr = renderSVG(dot)
		if s.dotErr != nil {
			s.log.Warn("ui: cannot lay out the graph", "error", s.dotErr)
		}
	}
	return s.svg, s.version, s.dotErr
}

// renderSVG runs Graphviz's dot on src.
func renderSVG(src string) ([]byte, error) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return nil, errors.New("graphviz's dot is not on PATH (Debian: apt-get install graphviz): the page lays out the graph with it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), dotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dot, "-Tsvg")
	cmd.Stdin = bytes.NewReader([]byte(src))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dot -Tsvg: %v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.Bytes(), nil
}

func (s *Server) graphSVG(w http.ResponseWriter, _ *http.Request) {
	svg, _, err := s.graph()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(svg)
}

// update is one "status" event.
type update struct {
	Graph    string              `json:"graph"`                 // version of /graph.svg
	GraphErr string              `json:"graph_error,omitempty"` // why there is no graph
	Status   control.StatusReply `json:"status"`
	Nodes    []nodeView          `json:"nodes"` // per node as written, instances summed
	Edges    []edgeRate          `json:"edges"`
}

// events streams one update a second while the page is connected; the
// browser's EventSource reconnects by itself (after `retry` ms) when `up`
// restarts.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 1000\n\n")
	fl.Flush()
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		b, err := json.Marshal(s.snapshot())
		if err != nil {
			s.log.Warn("ui: status", "error", err)
			return
		}
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) snapshot() update {
	_, version, err := s.graph()
	st := s.src.Status()
	u := update{Graph: version, Status: st}
	if err != nil {
		u.GraphErr = err.Error()
	}
	u.Nodes = nodesOf(st)
	u.Edges = edgeRates(s.src.Topology(), st)
	return u
}

// nodeDetail is the reply of /node.
type nodeDetail struct {
	Name      string         `json:"name"`
	Instances []instanceSpec `json:"instances"`
	Logs      []string       `json:"logs"`
}

type instanceSpec struct {
	Name    string       `json:"name"`
	Run     string       `json:"run"`
	Handler string       `json:"handler"`
	Sockets []socketSpec `json:"sockets"`
	// Tappable: its messages pass through ztopo (not a process, command
	// or proxy node), and the page can tap.
	Tappable bool `json:"tappable"`
}

type socketSpec struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Bind    []string `json:"bind,omitempty"`
	Connect []string `json:"connect,omitempty"`
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	base := r.URL.Query().Get("name")
	d := nodeDetail{Name: base, Instances: []instanceSpec{}, Logs: []string{}}
	for _, n := range s.src.Topology().Nodes {
		if n.Base != base {
			continue
		}
		is := instanceSpec{Name: n.Name, Run: string(n.Run), Handler: n.Handler.Label()}
		b, _ := n.Handler.Builtin()
		is.Tappable = s.src.Tap != nil && n.Run != spec.RunProcess && n.Handler.Kind != spec.HandlerCommand && !b.Opaque
		for _, so := range n.Sockets {
			is.Sockets = append(is.Sockets, socketSpec{Name: so.Name, Type: string(so.Type), Bind: so.Bind, Connect: so.Connect})
		}
		d.Instances = append(d.Instances, is)
	}
	if len(d.Instances) == 0 {
		http.Error(w, "no node "+strconv.Quote(base), http.StatusNotFound)
		return
	}
	if s.src.Logs != nil {
		res := s.src.Logs.Select(logbuf.Query{Names: []string{base}})
		recs := res.Records
		if len(recs) > logLines {
			recs = recs[len(recs)-logLines:]
		}
		p := &logbuf.Printer{}
		for i := range recs {
			d.Logs = append(d.Logs, string(bytes.TrimRight(p.Append(nil, &recs[i]), "\n")))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(d)
}

// nodeView sums a node's instances for its box in the graph.
type nodeView struct {
	Name       string         `json:"name"`
	State      string         `json:"state"`  // the most telling of its instances' states
	States     map[string]int `json:"states"` // instances by state
	Instances  int            `json:"instances"`
	Restarts   int            `json:"restarts"`
	SendErrors uint64         `json:"send_errors"`
	RateIn     float64        `json:"rate_in"`
	RateOut    float64        `json:"rate_out"`
}

// stateRank orders states by how much they tell: a failed instance colours
// its node before a restarting one, which colours it before running ones.
var stateRank = map[string]int{"failed": 7, "restarting": 6, "stalled": 5, "starting": 4, "stopping": 3, "running": 2, "stopped": 1, "completed": 0}

func nodesOf(v control.StatusReply) []nodeView {
	by := map[string]*nodeView{}
	var order []string
	for _, in := range v.Nodes {
		n := by[in.Node]
		if n == nil {
			n = &nodeView{Name: in.Node, States: map[string]int{}, State: in.State}
			by[in.Node] = n
			order = append(order, in.Node)
		}
		n.Instances++
		n.States[in.State]++
		n.Restarts += in.Restarts
		if stateRank[in.State] > stateRank[n.State] {
			n.State = in.State
		}
		for _, so := range in.Sockets {
			n.SendErrors += so.SendErrors
			n.RateIn += so.RateIn
			n.RateOut += so.RateOut
		}
	}
	sort.Strings(order)
	out := make([]nodeView, 0, len(order))
	for _, name := range order {
		out = append(out, *by[name])
	}
	return out
}
