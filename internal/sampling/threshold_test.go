package sampling

import (
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// The 1-in-N table of "Converting floating-point probability to threshold value" in
// https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/#algorithms , with the
// th values at precision 3, 4 (the SDK default) and 5.
var specThresholds = []struct {
	name       string
	p          float64
	p3, p4, p5 string
}{
	{"1", 1, "0", "0", "0"},
	{"2", 0.5, "8", "8", "8"},
	{"3", 1.0 / 3, "aab", "aaab", "aaaab"},
	{"4", 0.25, "c", "c", "c"},
	{"5", 0.2, "ccd", "cccd", "ccccd"},
	{"8", 0.125, "e", "e", "e"},
	{"10", 0.1, "e66", "e666", "e6666"},
	{"16", 0.0625, "f", "f", "f"},
	{"100", 0.01, "fd71", "fd70a", "fd70a4"},
	{"1000", 0.001, "ffbe7", "ffbe77", "ffbe76d"},
	{"10000", 0.0001, "fff972", "fff9724", "fff97247"},
	{"100000", 0.00001, "ffff584", "ffff583a", "ffff583a5"},
	{"1000000", 0.000001, "ffffef4", "ffffef39", "ffffef391"},
}

func TestProbabilityToThreshold_SpecTable(t *testing.T) {
	for _, tc := range specThresholds {
		t.Run("1-in-"+tc.name, func(t *testing.T) {
			for _, c := range []struct {
				precision int
				want      string
			}{{3, tc.p3}, {4, tc.p4}, {5, tc.p5}} {
				if got := encodeThreshold(probabilityToThreshold(tc.p, c.precision)); got != c.want {
					t.Errorf("precision %d: got th:%s; want th:%s", c.precision, got, c.want)
				}
			}
		})
	}
}

func TestProbabilityToThreshold_Edges(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    float64
		want uint64
	}{
		{"one", 1, 0},
		{"above one", 2, 0},
		{"zero", 0, neverThreshold},
		{"negative", -1, neverThreshold},
		{"below 2^-56", 1e-30, neverThreshold},
		{"2^-56 full precision", 1.0 / (1 << 56), maxAdjustedCount - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := probabilityToThreshold(tc.p, thresholdDigits); got != tc.want {
				t.Errorf("got %#x; want %#x", got, tc.want)
			}
		})
	}
}

func TestThreshold_RoundTrip(t *testing.T) {
	// The spec's definition example: 1% at 5 digits is 0xfd70a400000000, written fd70a4.
	const want = uint64(0xfd70a400000000)
	if got := probabilityToThreshold(0.01, 5); got != want {
		t.Fatalf("got %#x; want %#x", got, want)
	}
	got, ok := decodeThreshold("fd70a4")
	if !ok || got != want {
		t.Fatalf("decodeThreshold(fd70a4) = %#x, %v; want %#x, true", got, ok, want)
	}
	if p := thresholdToProbability(want); p < 0.0099999 || p > 0.0100001 {
		t.Errorf("probability %v; want about 0.01", p)
	}
}

func TestDecodeThreshold(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"8", 0x80000000000000, true},
		{"C", 0xc0000000000000, true},
		{"ffffffffffffff", 0xffffffffffffff, true},
		{"", 0, false},
		{"fffffffffffffff", 0, false}, // 15 digits
		{"g", 0, false},
		{"-1", 0, false},
	} {
		got, ok := decodeThreshold(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("decodeThreshold(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDecodeRandomness(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"00000000000000", 0, true},
		{"ffffffffffffff", 0xffffffffffffff, true},
		{"1234567890abcd", 0x1234567890abcd, true},
		{"8", 0, false}, // rv is exactly 14 digits, unlike th
		{"ffffffffffffff0", 0, false},
		{"1234567890abcz", 0, false},
	} {
		got, ok := decodeRandomness(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("decodeRandomness(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTraceIDRandomness_Least56Bits(t *testing.T) {
	id := trace.TraceID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde}
	if got, want := traceIDRandomness(id), uint64(0x123456789abcde); got != want {
		t.Errorf("got %#x; want %#x", got, want)
	}
}
