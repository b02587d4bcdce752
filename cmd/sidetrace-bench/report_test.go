package main

import (
	"slices"
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
