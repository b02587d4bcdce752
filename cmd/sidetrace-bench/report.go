package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// summary condenses a scenario's runs: medians across runs, and the spread of req/s.
type summary struct {
	runs           int
	rps            float64
	rpsSpread      float64 // (max-min)/median, percent
	p50, p99, p999 float64 // µs
	cpuPer1k       float64 // ms of proxy CPU per 1000 requests; 0 without a proxy
	peakRSSMiB     float64
	errors         uint64
	firstErr       string
	requests       uint64
	exports, spans uint64
	exportErrors   uint64
	saturated      bool
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func spread(xs []float64) float64 {
	m := median(xs)
	if m == 0 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / m * 100
}

// summarizeRuns condenses load results with the proxy CPU used during each.
func summarizeRuns(rs []loadResult, cpu []time.Duration) summary {
	var s summary
	var rps, p50, p99, p999, per1k []float64
	for i, r := range rs {
		s.runs++
		rps = append(rps, r.RPS)
		p50 = append(p50, r.P50us)
		p99 = append(p99, r.P99us)
		p999 = append(p999, r.P999us)
		if i < len(cpu) && r.Requests > 0 && cpu[i] > 0 {
			per1k = append(per1k, float64(cpu[i])/float64(time.Millisecond)/float64(r.Requests)*1000)
		}
		s.errors += r.Errors + r.Dropped
		s.requests += r.Requests
		s.saturated = s.saturated || r.Saturated
		if s.firstErr == "" {
			s.firstErr = r.FirstErr
		}
	}
	s.rps, s.rpsSpread = median(rps), spread(rps)
	s.p50, s.p99, s.p999 = median(p50), median(p99), median(p999)
	s.cpuPer1k = median(per1k)
	return s
}

// summarize condenses the closed-loop runs of a scenario.
func summarize(ms []measurement) summary {
	rs := make([]loadResult, len(ms))
	cpu := make([]time.Duration, len(ms))
	var s summary
	for i, m := range ms {
		rs[i], cpu[i] = m.Closed, m.CPU
	}
	s = summarizeRuns(rs, cpu)
	for _, m := range ms {
		s.peakRSSMiB = max(s.peakRSSMiB, float64(m.HWMKiB)/1024)
		s.exports += m.Export.Requests
		s.spans += m.Export.Spans
		s.exportErrors += m.Export.Errors
	}
	return s
}

// summarizeOpen condenses the open-loop runs at the i-th rate.
func summarizeOpen(ms []measurement, i int) summary {
	var rs []loadResult
	var cpu []time.Duration
	for _, m := range ms {
		if i < len(m.Open) {
			rs = append(rs, m.Open[i])
			cpu = append(cpu, m.OpenCPU[i])
		}
	}
	return summarizeRuns(rs, cpu)
}

func dash(ok bool, s string) string {
	if !ok {
		return "–"
	}
	return s
}

// writeMarkdown prints the report as Markdown tables, followed by how they were measured.
func (r *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	cfg := r.Config
	var ran []scenario
	for _, name := range cfg.Scenarios {
		if _, ok := r.Results[name]; ok {
			sc, _ := scenarioByName(name)
			ran = append(ran, sc)
		}
	}
	baseline := func(sc scenario) (summary, bool) {
		ms, ok := r.Results[sc.baseline]
		if !ok {
			return summary{}, false
		}
		return summarize(ms), true
	}

	fmt.Fprintf(&b, "Closed loop: %d connections, HTTP/1.1 keep-alive (h2c where named), %s GET responses on loopback.\n\n",
		cfg.Conc, sizeName(cfg.Size))
	b.WriteString("| scenario | runs | req/s | spread | p50 | p99 | p99.9 | proxy CPU ms / 1000 req | proxy peak RSS MB | req/s vs direct |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, sc := range ran {
		s := summarize(r.Results[sc.name])
		hasProxy := s.cpuPer1k > 0 || s.peakRSSMiB > 0
		ratio := "–"
		if base, ok := baseline(sc); ok && base.rps > 0 {
			ratio = fmt.Sprintf("%.2f", s.rps/base.rps)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.1f%% | %s | %s | %s | %s | %s | %s |\n",
			sc.name, s.runs, s.rps, s.rpsSpread, fmtUs(s.p50), fmtUs(s.p99), fmtUs(s.p999),
			dash(hasProxy, fmt.Sprintf("%.1f", s.cpuPer1k)), dash(hasProxy, fmt.Sprintf("%.1f", s.peakRSSMiB)), ratio)
	}

	if len(cfg.Rates) > 0 {
		fmt.Fprintf(&b, "\nOpen loop: fixed request rate over up to %d connections; latency counted from each request's scheduled send time.\n\n", cfg.OpenConc)
		b.WriteString("| scenario | target req/s | runs | achieved req/s | p50 | p99 | p99.9 | p99 added over direct | proxy CPU ms / 1000 req |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for i, rate := range cfg.Rates {
			for _, sc := range ran {
				s := summarizeOpen(r.Results[sc.name], i)
				added := "–"
				if sc.baseline != sc.name {
					if ms, ok := r.Results[sc.baseline]; ok {
						added = fmtSignedUs(s.p99 - summarizeOpen(ms, i).p99)
					}
				}
				fmt.Fprintf(&b, "| %s | %.0f | %d | %.0f | %s | %s | %s | %s | %s |\n",
					sc.name, rate, s.runs, s.rps, fmtUs(s.p50), fmtUs(s.p99), fmtUs(s.p999), added,
					dash(s.cpuPer1k > 0, fmt.Sprintf("%.1f", s.cpuPer1k)))
			}
		}
	}

	b.WriteString("\n")
	fmt.Fprintf(&b, "Machine: %s. ", r.Machine)
	if cfg.Pin {
		fmt.Fprintf(&b, "Proxy pinned to CPU %s (sidetrace GOMAXPROCS=1, nginx 1 worker); load generator, upstream and receiver on CPU %s. ",
			cfg.ProxyCPUs, cfg.LoadCPUs)
	} else {
		b.WriteString("Processes not pinned to CPUs. ")
	}
	fmt.Fprintf(&b, "Each run %s after a %s warm-up; %d interleaved round(s); figures are medians over the runs, spread is (max−min)/median of req/s; proxy CPU is user+system time from /proc/PID/stat, peak RSS is VmHWM.",
		cfg.Duration, cfg.Warmup, r.Rounds)
	if cfg.Quick {
		b.WriteString(" BENCH_QUICK=1: smoke run, not for publishing.")
	}
	b.WriteString("\n\n")
	for _, sc := range ran {
		fmt.Fprintf(&b, "- %s: %s", sc.name, sc.about)
		s := summarize(r.Results[sc.name])
		if s.exports > 0 || strings.Contains(sc.about, "always_on") {
			fmt.Fprintf(&b, "; receiver got %d spans in %d exports for %d requests", s.spans, s.exports, s.requests)
			if s.exportErrors > 0 {
				fmt.Fprintf(&b, " (%d exports rejected)", s.exportErrors)
			}
		}
		if s.errors > 0 {
			fmt.Fprintf(&b, "; %d errors, first: %s", s.errors, s.firstErr)
		}
		for i := range cfg.Rates {
			if o := summarizeOpen(r.Results[sc.name], i); o.errors > 0 || o.saturated {
				fmt.Fprintf(&b, "; at %.0f req/s: %d errors or drops", cfg.Rates[i], o.errors)
				if o.saturated {
					b.WriteString(", every connection was busy at some point")
				}
			}
		}
		b.WriteString("\n")
	}
	for _, name := range cfg.Scenarios {
		if why, ok := r.Skipped[name]; ok {
			fmt.Fprintf(&b, "- %s: skipped, %s\n", name, why)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d-byte", n)
}

func fmtSignedUs(us float64) string {
	if us < 0 {
		return "−" + fmtUs(-us)
	}
	return "+" + fmtUs(us)
}
