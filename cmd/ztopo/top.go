package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ztopo/ztopo/runtime/control"
)

const topUsage = `usage: ztopo top [--once] [--json] [FILE|NAME]

A live table of a running topology, redrawn every second: per node
instance its state, restarts, messages and bytes per second in and out,
CPU% and resident memory (RSS) of process and command nodes, then the
totals. Rates are measured by top itself over its last second, from the
counters ztopo up keeps. It follows reloads (instances come and go) and,
when the topology stops, says so and exits 0; Ctrl-C ends it.

  --once   measure one second, print the table once and exit
  --json   JSON instead of the table (with --once: one object; without:
           one object per second, one per line)

Without FILE|NAME, the one topology running is meant.

Exit status: 0 ok (also when the topology stopped while top ran), 1 no
such topology is running, 2 wrong usage.
`

// topInterval is the refresh period and the window of the rates.
const topInterval = time.Second

// topRow is one instance in top's output.
type topRow struct {
	Name           string   `json:"name"`
	Node           string   `json:"node"`
	State          string   `json:"state"`
	Run            string   `json:"run"`
	PID            int      `json:"pid"`
	Restarts       int      `json:"restarts"`
	MsgsIn         uint64   `json:"msgs_in"`
	MsgsOut        uint64   `json:"msgs_out"`
	BytesIn        uint64   `json:"bytes_in"`
	BytesOut       uint64   `json:"bytes_out"`
	MsgsInPerSec   float64  `json:"msgs_in_per_sec"`
	MsgsOutPerSec  float64  `json:"msgs_out_per_sec"`
	BytesInPerSec  float64  `json:"bytes_in_per_sec"`
	BytesOutPerSec float64  `json:"bytes_out_per_sec"`
	CPUPercent     *float64 `json:"cpu_percent,omitempty"` // process nodes only
	RSSBytes       *uint64  `json:"rss_bytes,omitempty"`   // process nodes only
}

// topFrame is one refresh.
type topFrame struct {
	Name            string    `json:"name"`
	State           string    `json:"state"`
	At              time.Time `json:"at"`
	IntervalSeconds float64   `json:"interval_seconds"`
	Instances       []topRow  `json:"instances"`
	Totals          topRow    `json:"totals"` // sums; name "total"
}

// topSample is what one status call and /proc say at a time.
type topSample struct {
	at  time.Time
	st  control.StatusReply
	cpu map[int]uint64 // pid -> utime+stime in clock ticks
	rss map[int]uint64 // pid -> bytes
}

func runTop(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("top")
	once := fs.Bool("once", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, code, ok := parseArgs(fs, "top", topUsage, args, stdout, stderr)
	if !ok {
		return code
	}
	tg, code, ok := oneTarget("top", topUsage, pos, "", stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	prev, err := takeSample(ctx, tg)
	if err = tg.plain(err); err != nil {
		return fail(stderr, "top", err)
	}
	live := !*once && !*asJSON && colorOK(stdout) // a terminal: redraw in place
	if live {
		fmt.Fprint(stdout, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
		defer func() {
			if live {
				fmt.Fprint(stdout, "\x1b[?25h\x1b[?1049l")
			}
		}()
	}
	first := true
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(topInterval):
		}
		cur, err := takeSample(ctx, tg)
		switch {
		case ctx.Err() != nil:
			return exitOK
		case errors.Is(err, control.ErrNotRunning):
			if live {
				fmt.Fprint(stdout, "\x1b[?25h\x1b[?1049l")
				live = false
			}
			fmt.Fprintf(stdout, "topology %s stopped\n", tg.name)
			return exitOK
		case err != nil:
			return fail(stderr, "top", err)
		}
		f := makeFrame(prev, cur)
		note := ""
		if cur.st.Reloads != prev.st.Reloads || cur.st.PID != prev.st.PID {
			note = "  (the topology reloaded)"
		}
		var b strings.Builder
		switch {
		case *asJSON && *once:
			return printJSON("top", f, stdout, stderr)
		case *asJSON:
			writeJSONLine(&b, f)
		default:
			if live {
				b.WriteString("\x1b[H\x1b[2J")
			} else if !first {
				b.WriteString("\n")
			}
			writeTopTable(&b, f, cur.st.Reloads, note)
		}
		if _, err := io.WriteString(stdout, b.String()); err != nil {
			return exitOK // the reader went away
		}
		if *once {
			return exitOK
		}
		first = false
		prev = cur
	}
}

func takeSample(ctx context.Context, tg target) (topSample, error) {
	cctx, cancel := context.WithTimeout(ctx, control.DefaultTimeout)
	defer cancel()
	s := topSample{at: time.Now(), cpu: map[int]uint64{}, rss: map[int]uint64{}}
	var err error
	if s.st, err = control.Status(cctx, tg.endpoint); err != nil {
		return s, err
	}
	for _, n := range s.st.Nodes {
		if n.PID > 0 {
			if c, r, ok := procStats(n.PID); ok {
				s.cpu[n.PID], s.rss[n.PID] = c, r
			}
		}
	}
	return s, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture ztopo builds for.
const clockTicks = 100

// procStats reads a process's CPU time (ticks) and resident set (bytes).
func procStats(pid int) (cpu, rss uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15, rss (pages) 24.
	if len(f) < 22 {
		return 0, 0, false
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	pages, _ := strconv.ParseUint(f[21], 10, 64)
	return ut + st, pages * uint64(os.Getpagesize()), true
}

// makeFrame computes rates between two samples; an instance new in cur
// (or one whose counters went down: restarted) has no rates yet.
func makeFrame(prev, cur topSample) topFrame {
	dt := cur.at.Sub(prev.at).Seconds()
	f := topFrame{Name: cur.st.Name, State: cur.st.State, At: cur.at, IntervalSeconds: dt, Instances: []topRow{}, Totals: topRow{Name: "total"}}
	old := map[string]control.InstanceStatus{}
	for _, n := range prev.st.Nodes {
		old[n.Name] = n
	}
	rate := func(a, b uint64) float64 {
		if b < a || dt <= 0 {
			return 0
		}
		return float64(b-a) / dt
	}
	for _, n := range cur.st.Nodes {
		r := topRow{Name: n.Name, Node: n.Node, State: n.State, Run: n.Run, PID: n.PID, Restarts: n.Restarts}
		for _, s := range n.Sockets {
			r.MsgsIn += s.MsgsIn
			r.MsgsOut += s.MsgsOut
			r.BytesIn += s.BytesIn
			r.BytesOut += s.BytesOut
		}
		if o, ok := old[n.Name]; ok {
			var p topRow
			for _, s := range o.Sockets {
				p.MsgsIn += s.MsgsIn
				p.MsgsOut += s.MsgsOut
				p.BytesIn += s.BytesIn
				p.BytesOut += s.BytesOut
			}
			r.MsgsInPerSec, r.MsgsOutPerSec = rate(p.MsgsIn, r.MsgsIn), rate(p.MsgsOut, r.MsgsOut)
			r.BytesInPerSec, r.BytesOutPerSec = rate(p.BytesIn, r.BytesIn), rate(p.BytesOut, r.BytesOut)
		}
		if n.PID > 0 {
			if c, ok := cur.cpu[n.PID]; ok {
				rss := cur.rss[n.PID]
				r.RSSBytes = &rss
				if pc, ok := prev.cpu[n.PID]; ok && c >= pc && dt > 0 {
					pct := float64(c-pc) / clockTicks / dt * 100
					r.CPUPercent = &pct
				}
			}
		}
		t := &f.Totals
		t.MsgsIn += r.MsgsIn
		t.MsgsOut += r.MsgsOut
		t.BytesIn += r.BytesIn
		t.BytesOut += r.BytesOut
		t.MsgsInPerSec += r.MsgsInPerSec
		t.MsgsOutPerSec += r.MsgsOutPerSec
		t.BytesInPerSec += r.BytesInPerSec
		t.BytesOutPerSec += r.BytesOutPerSec
		t.Restarts += r.Restarts
		if r.CPUPercent != nil {
			v := *r.CPUPercent
			if t.CPUPercent != nil {
				v += *t.CPUPercent
			}
			t.CPUPercent = &v
		}
		if r.RSSBytes != nil {
			v := *r.RSSBytes
			if t.RSSBytes != nil {
				v += *t.RSSBytes
			}
			t.RSSBytes = &v
		}
		f.Instances = append(f.Instances, r)
	}
	return f
}

func writeJSONLine(b *strings.Builder, f topFrame) {
	j, _ := json.Marshal(f)
	b.Write(j)
	b.WriteByte('\n')
}

func writeTopTable(b *strings.Builder, f topFrame, reloads uint64, note string) {
	fmt.Fprintf(b, "ztopo top: %s  %s  %s  reloads %d%s  (every %v; Ctrl-C to quit)\n\n", f.Name, f.State, f.At.Format("15:04:05"), reloads, note, topInterval)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "NODE\tSTATE\tRESTARTS\tMSG/S IN\tMSG/S OUT\tBYTES/S IN\tBYTES/S OUT\tCPU%\tRSS\t")
	row := func(r topRow) {
		cpu, rss := "-", "-"
		if r.CPUPercent != nil {
			cpu = strconv.FormatFloat(*r.CPUPercent, 'f', 1, 64)
		}
		if r.RSSBytes != nil {
			rss = bytesText(float64(*r.RSSBytes))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.State, r.Restarts,
			rateText(r.MsgsInPerSec), rateText(r.MsgsOutPerSec), bytesText(r.BytesInPerSec), bytesText(r.BytesOutPerSec), cpu, rss)
	}
	for _, r := range f.Instances {
		row(r)
	}
	row(f.Totals)
	tw.Flush()
}

// bytesText is a byte count or rate in binary units: 0, 512, 1.5Ki, 20Mi.
func bytesText(v float64) string {
	units := []string{"", "Ki", "Mi", "Gi", "Ti"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + units[i]
}
