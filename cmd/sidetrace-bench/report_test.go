package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarizeRuns_MediansAndDisturbedRuns(t *testing.T) {
	run := func(rps, p99, foreign float64) sampleRun {
		return sampleRun{res: loadResult{RPS: rps, P50us: p99 / 2, P99us: p99, Requests: 1000}, cpu: 50 * time.Millisecond, foreign: foreign}
	}
	for _, tc := range []struct {
		name      string
		runs      []sampleRun
		wantRuns  int
		dropped   int
		disturbed bool
		rps, p99  float64
		spread    float64
	}{
		{"quiet", []sampleRun{run(100, 10, 0), run(90, 30, 0.01), run(110, 20, 0.02)}, 3, 0, false, 100, 20, 20},
		{"one disturbed dropped", []sampleRun{run(100, 10, 0), run(10, 900, 0.5), run(110, 20, 0)}, 2, 1, false, 105, 15, 100.0 * 10 / 105},
		{"all disturbed kept", []sampleRun{run(10, 900, 0.5), run(20, 800, 0.3)}, 2, 0, true, 15, 850, 100.0 * 10 / 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summarizeRuns(tc.runs, 10)
			got := []any{s.runs, s.dropped, s.disturbed, s.rps, s.p99, s.cpuPer1k}
			want := []any{tc.wantRuns, tc.dropped, tc.disturbed, tc.rps, tc.p99, 50.0}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("runs, dropped, disturbed, rps, p99, cpu ms/1k: got %v; want %v", got, want)
				}
			}
			if diff := s.rpsSpread - tc.spread; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("spread: got %g; want %g", s.rpsSpread, tc.spread)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0-3,8", []int{0, 1, 2, 3, 8}, false},
		{"1, 4-5", []int{1, 4, 5}, false},
		{"", nil, true},
		{"3-1", nil, true},
		{"a", nil, true},
	} {
		got, err := parseCPUList(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parseCPUList(%q): got %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// The tables compare each HTTP/1.1 proxy with nginx: CPU per request as a multiple of nginx's, and the p99
// added over direct minus nginx's in the same round (median and range), leaving out disturbed rounds.
func TestReport_VsNginx(t *testing.T) {
	// One measurement: closed-loop CPU, and at 1000 req/s the given p99 over a direct p99 of 1000µs.
	m := func(round int, closedCPUms, openCPUms, p99 float64, foreign float64) measurement {
		closed := loadResult{RPS: 1000, P99us: 2000, Requests: 10000}
		open := loadResult{RPS: 1000, P99us: p99, Requests: 5000, BaseRequests: 5000, BaseP99us: 1000}
		return measurement{Round: round, Closed: closed, CPU: time.Duration(closedCPUms * float64(time.Millisecond)),
			Open: []loadResult{open}, OpenCPU: []time.Duration{time.Duration(openCPUms * float64(time.Millisecond))},
			OpenForeign: []float64{foreign}}
	}
	r := &report{
		Config: runConfig{Scenarios: []string{"direct", "nginx", "sidetrace", "sidetrace-h2c"}, Rates: []float64{1000}, MaxForeign: 10},
		Results: map[string][]measurement{
			"direct": {m(1, 0, 0, 1000, 0), m(2, 0, 0, 1000, 0), m(3, 0, 0, 1000, 0)},
			// CPU 100 ms per 10000 requests closed (10 per 1000), 250 per 5000 open (50 per 1000).
			"nginx": {m(1, 100, 250, 1800, 0), m(2, 100, 250, 2500, 0), m(3, 100, 250, 1900, 0)},
			// Round by round its p99 added minus nginx's: +300, −400, and round 3 disturbed (left out).
			"sidetrace":     {m(1, 240, 375, 2100, 0), m(2, 240, 375, 2100, 0), m(3, 240, 375, 9900, 0.5)},
			"sidetrace-h2c": {m(1, 500, 500, 3000, 0), m(2, 500, 500, 3000, 0), m(3, 500, 500, 3000, 0)},
		},
		Rounds: 3,
	}
	var b strings.Builder
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	row := func(prefix string) []string {
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, prefix) {
				cells := strings.Split(strings.Trim(line, "| "), " | ")
				return cells
			}
		}
		t.Fatalf("no row %q in:\n%s", prefix, b.String())
		return nil
	}
	for _, tc := range []struct {
		prefix string
		cell   int
		want   string
	}{
		{"| nginx | 3 | 1000 |", 10, "1.00"},      // closed loop
		{"| sidetrace | 3 | 1000 |", 10, "2.40"},  // 24 / 10
		{"| sidetrace-h2c | 3 | 1000 |", 10, "–"}, // not an HTTP/1.1 proxy
		{"| nginx | 1000 |", 8, "–"},              // open loop: p99 added minus nginx's
		{"| nginx | 1000 |", 10, "1.00"},
		{"| sidetrace | 1000 | 2 (+1 dropped)", 7, "+1.10ms"},                  // its own p99 added, median of the kept rounds
		{"| sidetrace | 1000 | 2 (+1 dropped)", 8, "−50µs (−400µs to +300µs)"}, // paired with nginx's rounds 1 and 2
		{"| sidetrace | 1000 | 2 (+1 dropped)", 10, "1.50"},                    // 75 / 50
		{"| sidetrace-h2c | 1000 |", 8, "–"},
		{"| sidetrace-h2c | 1000 |", 10, "–"},
	} {
		if got := row(tc.prefix)[tc.cell]; got != tc.want {
			t.Errorf("row %q, cell %d: %q; want %q", tc.prefix, tc.cell, got, tc.want)
		}
	}
}

// The paired table gives, per scenario run side by side with nginx, both added latencies and their
// difference round by round, leaving out disturbed runs.
func TestReport_Paired(t *testing.T) {
	// One paired run: nginx's p99 and the scenario's, over direct p99s of 300µs and 320µs in their slices.
	p := func(round int, ngxP99, scP99, foreign float64) pairedRun {
		l := loadResult{Mode: "open", Rate: 1000, Requests: 5000, P99us: ngxP99, BaseRequests: 5000, BaseP99us: 300,
			Alt: &altResult{Requests: 5000, P99us: scP99, BaseRequests: 5000, BaseP99us: 320}}
		return pairedRun{Round: round, Load: l, Foreign: foreign}
	}
	r := &report{
		Config: runConfig{Scenarios: []string{"nginx", "sidetrace", "sidetrace-plugins"}, MaxForeign: 10,
			PairedRate: 1000, Slice: time.Second, Settle: 100 * time.Millisecond, Duration: 20 * time.Second},
		Results: map[string][]measurement{},
		Paired: map[string][]pairedRun{
			// Added: nginx +500, +400, +600; sidetrace +480, +500, +400: differences −20, +100, −200.
			"sidetrace": {p(1, 800, 800, 0), p(2, 700, 820, 0), p(3, 900, 720, 0.02)},
			// The third round disturbed: left out.
			"sidetrace-plugins": {p(1, 800, 900, 0), p(2, 700, 700, 0), p(3, 800, 5000, 0.5)},
		},
		Rounds: 3,
	}
	var b strings.Builder
	if err := r.writeMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"switching between them every 1s for 20s",
		"in the first 100ms of a slice",
		"| sidetrace | 3 | 800µs / 800µs | +500µs | +480µs | −20µs (−200µs to +100µs) |",
		"| sidetrace-plugins | 2 (+1 dropped) | 750µs / 800µs | +450µs | +480µs | +30µs (−20µs to +80µs) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| nginx | ") {
		t.Errorf("nginx has no paired row of its own, in:\n%s", out)
	}
}
