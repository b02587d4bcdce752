package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// summary condenses a scenario's runs: medians across runs, and the spread of req/s. Runs during
// which other processes took more than the allowed share of the machine are left out, unless all were.
type summary struct {
	runs           int     // runs the figures are from
	dropped        int     // runs left out as disturbed
	disturbed      bool    // every run was disturbed; the figures are from them anyway
	foreign        float64 // largest share of the machine other processes used during the runs kept
	rps            float64
	rpsSpread      float64 // (max-min)/median, percent
	p50, p99, p999 float64 // µs
	p99Added       float64 // µs: median over the runs of p99 minus the interleaved baseline's p99
	hasAdded       bool    // every run had an interleaved baseline
	cpuPer1k       float64 // ms of proxy CPU per 1000 requests; 0 without a proxy
	peakRSSMiB     float64
	errors         uint64
	firstErr       string
	requests       uint64
	answered       uint64 // requests the proxy answered in all its runs, warm-ups included
	exports, spans uint64
	exportErrors   uint64
	saturated      bool
}

// sampleRun is one load run with what the proxy and other processes used meanwhile.
type sampleRun struct {
	res     loadResult
	cpu     time.Duration
	foreign float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	n := len(s)
	return (s[n/2-1] + s[n/2]) / 2
}

func spread(xs []float64) float64 {
	m := median(xs)
	if m == 0 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / m * 100
}

// summarizeRuns condenses runs, leaving out those where other processes used more than maxForeign
// percent of the machine.
func summarizeRuns(runs []sampleRun, maxForeign float64) summary {
	var s summary
	kept := slices.DeleteFunc(slices.Clone(runs), func(r sampleRun) bool { return r.foreign*100 > maxForeign })
	if len(kept) == 0 && len(runs) > 0 {
		kept, s.disturbed = runs, true
	}
	s.dropped = len(runs) - len(kept)
	var rps, p50, p99, p999, per1k, added []float64
	for _, run := range kept {
		r := run.res
		s.runs++
		s.foreign = max(s.foreign, run.foreign)
		rps = append(rps, r.RPS)
		p50 = append(p50, r.P50us)
		p99 = append(p99, r.P99us)
		p999 = append(p999, r.P999us)
		if r.BaseRequests > 0 {
			added = append(added, r.P99us-r.BaseP99us)
		}
		if r.Requests > 0 && run.cpu > 0 {
			per1k = append(per1k, float64(run.cpu)/float64(time.Millisecond)/float64(r.Requests)*1000)
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
	if len(added) > 0 && len(added) == s.runs {
		s.p99Added, s.hasAdded = median(added), true
	}
	return s
}

// summarize condenses the closed-loop runs of a scenario.
func summarize(ms []measurement, maxForeign float64) summary {
	runs := make([]sampleRun, len(ms))
	for i, m := range ms {
		runs[i] = sampleRun{m.Closed, m.CPU, m.Foreign}
	}
	s := summarizeRuns(runs, maxForeign)
	for _, m := range ms {
		s.peakRSSMiB = max(s.peakRSSMiB, float64(m.HWMKiB)/1024)
		s.answered += m.Answered
		s.exports += m.Export.Requests
		s.spans += m.Export.Spans
		s.exportErrors += m.Export.Errors
	}
	return s
}

// summarizeOpen condenses the open-loop runs at the i-th rate.
func summarizeOpen(ms []measurement, i int, maxForeign float64) summary {
	var runs []sampleRun
	for _, m := range ms {
		if i < len(m.Open) {
			runs = append(runs, sampleRun{m.Open[i], m.OpenCPU[i], m.OpenForeign[i]})
		}
	}
	return summarizeRuns(runs, maxForeign)
}

// addedVsNginx returns, round by round, a scenario's p99 added over direct at the i-th rate minus nginx's in
// the same round: pairing by round cancels the host's drift between rounds, which moves one scenario's
// p99 added by more than the gaps compared. Rounds where either run was disturbed or had no interleaved
// baseline are left out.
func addedVsNginx(ms, ngx []measurement, i int, maxForeign float64) []float64 {
	added := func(m measurement) (float64, bool) {
		if i >= len(m.Open) || m.OpenForeign[i]*100 > maxForeign || m.Open[i].BaseRequests == 0 {
			return 0, false
		}
		return m.Open[i].P99us - m.Open[i].BaseP99us, true
	}
	var diffs []float64
	for _, m := range ms {
		a, ok := added(m)
		if !ok {
			continue
		}
		for _, n := range ngx {
			if n.Round != m.Round {
				continue
			}
			if b, ok := added(n); ok {
				diffs = append(diffs, a-b)
			}
		}
	}
	return diffs
}

// diffCell prints round-by-round differences: their median, and their range when there are several.
func diffCell(diffs []float64) string {
	switch len(diffs) {
	case 0:
		return "–"
	case 1:
		return fmtSignedUs(diffs[0])
	}
	return fmt.Sprintf("%s (%s to %s)", fmtSignedUs(median(diffs)), fmtSignedUs(slices.Min(diffs)), fmtSignedUs(slices.Max(diffs)))
}

// ratioCell prints a proxy's CPU per request as a multiple of nginx's.
func ratioCell(cpu, nginxCPU float64) string {
	if cpu <= 0 || nginxCPU <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", cpu/nginxCPU)
}

// runsCell says how many runs the figures are from, and how many were left out.
func runsCell(s summary) string {
	c := fmt.Sprint(s.runs)
	if s.disturbed {
		c += " (all disturbed)"
	} else if s.dropped > 0 {
		c += fmt.Sprintf(" (+%d dropped)", s.dropped)
	}
	return c
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
		return summarize(ms, cfg.MaxForeign), true
	}

	fmt.Fprintf(&b, "Closed loop: %d connections, HTTP/1.1 keep-alive (h2c where named), %s GET responses on loopback.\n\n",
		cfg.Conc, sizeName(cfg.Size))
	// nginx is the reference for the HTTP/1.1 proxies: their CPU per request as a multiple of its, and their
	// p99 added over direct minus its.
	ngx, hasNginx := r.Results["nginx"]
	vsNginx := func(sc scenario) bool { return hasNginx && !sc.h2c && sc.name != sc.baseline && sc.name != "nginx" }
	b.WriteString("| scenario | runs | req/s | spread | p50 | p99 | p99.9 | proxy CPU ms / 1000 req | proxy peak RSS MB | req/s vs direct | CPU vs nginx |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, sc := range ran {
		s := summarize(r.Results[sc.name], cfg.MaxForeign)
		hasProxy := s.cpuPer1k > 0 || s.peakRSSMiB > 0
		ratio := "–"
		if base, ok := baseline(sc); ok && base.rps > 0 {
			ratio = fmt.Sprintf("%.2f", s.rps/base.rps)
		}
		cpuVs := "–"
		if sc.name == "nginx" {
			cpuVs = "1.00"
		} else if vsNginx(sc) {
			cpuVs = ratioCell(s.cpuPer1k, summarize(ngx, cfg.MaxForeign).cpuPer1k)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.1f%% | %s | %s | %s | %s | %s | %s | %s |\n",
			sc.name, runsCell(s), s.rps, s.rpsSpread, fmtUs(s.p50), fmtUs(s.p99), fmtUs(s.p999),
			dash(hasProxy, fmt.Sprintf("%.1f", s.cpuPer1k)), dash(hasProxy, fmt.Sprintf("%.1f", s.peakRSSMiB)), ratio, cpuVs)
	}

	if len(cfg.Rates) > 0 {
		fmt.Fprintf(&b, "\nOpen loop: fixed request rate over up to %d connections; latency counted from each request's scheduled send time. Through a proxy, a direct request to the upstream is scheduled between every two proxied ones, at the same rate; p99 added is the proxied p99 minus that direct p99, per run. Against nginx, the p99 added is compared round by round (median, and range over the rounds).\n\n", cfg.OpenConc)
		b.WriteString("| scenario | target req/s | runs | achieved req/s | p50 | p99 | p99.9 | p99 added over direct | p99 added minus nginx's | proxy CPU ms / 1000 req | CPU vs nginx |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for i, rate := range cfg.Rates {
			for _, sc := range ran {
				s := summarizeOpen(r.Results[sc.name], i, cfg.MaxForeign)
				added := "–"
				switch {
				case s.hasAdded: // direct requests interleaved with the proxied ones, in the same runs
					added = fmtSignedUs(s.p99Added)
				case sc.baseline != sc.name:
					if ms, ok := r.Results[sc.baseline]; ok {
						added = fmtSignedUs(s.p99-summarizeOpen(ms, i, cfg.MaxForeign).p99) + " (separate runs)"
					}
				}
				addedVs, cpuVs := "–", "–"
				if sc.name == "nginx" {
					cpuVs = "1.00"
				} else if vsNginx(sc) {
					addedVs = diffCell(addedVsNginx(r.Results[sc.name], ngx, i, cfg.MaxForeign))
					cpuVs = ratioCell(s.cpuPer1k, summarizeOpen(ngx, i, cfg.MaxForeign).cpuPer1k)
				}
				fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
					sc.name, rate, runsCell(s), s.rps, fmtUs(s.p50), fmtUs(s.p99), fmtUs(s.p999), added, addedVs,
					dash(s.cpuPer1k > 0, fmt.Sprintf("%.1f", s.cpuPer1k)), cpuVs)
			}
		}
	}

	r.writePaired(&b)

	b.WriteString("\n")
	fmt.Fprintf(&b, "Machine: %s. ", r.Machine)
	if cfg.Pin {
		fmt.Fprintf(&b, "Proxy pinned to CPU %s (sidetrace GOMAXPROCS=1, nginx 1 worker); load generator, upstream and receiver on CPU %s. ",
			cfg.ProxyCPUs, cfg.LoadCPUs)
	} else {
		b.WriteString("Processes not pinned to CPUs. ")
	}
	if cfg.Nice != 0 {
		fmt.Fprintf(&b, "Every process of the benchmark ran at niceness %d. ", cfg.Nice)
	}
	fmt.Fprintf(&b, "Each run %s after a %s warm-up; %d interleaved round(s); figures are medians over the runs, spread is (max−min)/median of req/s; proxy CPU is user+system time from /proc/PID/stat, peak RSS is VmHWM.",
		cfg.Duration, cfg.Warmup, r.Rounds)
	var foreign float64
	disturbed := false
	for _, ms := range r.Results {
		s := summarize(ms, cfg.MaxForeign)
		foreign, disturbed = max(foreign, s.foreign), disturbed || s.disturbed
		for i := range cfg.Rates {
			o := summarizeOpen(ms, i, cfg.MaxForeign)
			foreign, disturbed = max(foreign, o.foreign), disturbed || o.disturbed
		}
	}
	fmt.Fprintf(&b, " Other processes used at most %.0f%% of the CPUs in use during the runs kept (runs above %g%% are dropped).", foreign*100, cfg.MaxForeign)
	if disturbed {
		b.WriteString(" **Warning: the machine was busy during every run of some rows (\"all disturbed\"); do not publish these figures.**")
	}
	if cfg.Quick {
		b.WriteString(" BENCH_QUICK=1: smoke run, not for publishing.")
	}
	b.WriteString("\n\n")
	for _, sc := range ran {
		fmt.Fprintf(&b, "- %s: %s", sc.name, sc.about)
		s := summarize(r.Results[sc.name], cfg.MaxForeign)
		if s.exports > 0 || strings.Contains(sc.about, "always_on") {
			fmt.Fprintf(&b, "; the receiver got %d spans in %d exports for the %d requests answered", s.spans, s.exports, s.answered)
			if s.exportErrors > 0 {
				fmt.Fprintf(&b, " (%d exports rejected)", s.exportErrors)
			}
		}
		if s.errors > 0 {
			fmt.Fprintf(&b, "; %d errors, first: %s", s.errors, s.firstErr)
		}
		for i := range cfg.Rates {
			if o := summarizeOpen(r.Results[sc.name], i, cfg.MaxForeign); o.errors > 0 || o.saturated {
				fmt.Fprintf(&b, "; at %.0f req/s: %d errors or drops", cfg.Rates[i], o.errors)
				if o.saturated {
					b.WriteString(", requests waited for a free connection (raise -open-c)")
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

// pairedFigures are a paired run's added latencies: nginx's and the scenario's p99 over the direct p99 of
// their own slices. ok is false for a run disturbed by other processes or without a baseline.
func pairedFigures(p pairedRun, maxForeign float64) (nginx, scenario float64, ok bool) {
	l := p.Load
	if p.Foreign*100 > maxForeign || l.Alt == nil || l.BaseRequests == 0 || l.Alt.BaseRequests == 0 {
		return 0, 0, false
	}
	return l.P99us - l.BaseP99us, l.Alt.P99us - l.Alt.BaseP99us, true
}

// writePaired prints the paired runs: each scenario side by side with nginx, the load alternating.
func (r *report) writePaired(b *strings.Builder) {
	if len(r.Paired) == 0 {
		return
	}
	cfg := r.Config
	d := cfg.PairedD
	if d <= 0 {
		d = cfg.Duration
	}
	fmt.Fprintf(b, "\nSide by side with nginx: both proxies running on the proxy CPU, the open-loop load at %g req/s switching between them every %s for %s (each gets %g req/s in its slices; what is scheduled in the first %s of a slice, when the proxy taking over is cold, is sent but not counted), direct requests interleaved throughout; each proxy's p99 added is over the direct p99 of its own slices. Alternating within one run puts both proxies in the same moments of the machine, which separate runs are not: the difference is the latency target's figure (median over the rounds, and range).\n\n",
		cfg.PairedRate, cfg.Slice, d, cfg.PairedRate, cfg.Settle)
	b.WriteString("| scenario | runs | p99 nginx / scenario | p99 added, nginx | p99 added, scenario | scenario minus nginx |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|\n")
	for _, name := range cfg.Scenarios {
		runs, ok := r.Paired[name]
		if !ok {
			continue
		}
		var ngx, sc, diffs, p99n, p99s []float64
		dropped := 0
		for _, p := range runs {
			n, s, ok := pairedFigures(p, cfg.MaxForeign)
			if !ok {
				dropped++
				continue
			}
			ngx, sc, diffs = append(ngx, n), append(sc, s), append(diffs, s-n)
			p99n, p99s = append(p99n, p.Load.P99us), append(p99s, p.Load.Alt.P99us)
		}
		cells := []string{"–", "–", "–"}
		p99 := "–"
		if len(diffs) > 0 {
			cells = []string{fmtSignedUs(median(ngx)), fmtSignedUs(median(sc)), diffCell(diffs)}
			p99 = fmtUs(median(p99n)) + " / " + fmtUs(median(p99s))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", name, runsCell(summary{runs: len(diffs), dropped: dropped, disturbed: len(diffs) == 0}), p99, cells[0], cells[1], cells[2])
	}
}
