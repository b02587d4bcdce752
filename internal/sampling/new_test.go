package sampling

import (
	"slices"
	"testing"
)

const wantNames = "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, " +
	"parentbased_traceidratio, ratelimited, parentbased_ratelimited, adaptive, parentbased_adaptive"

func TestNew_ConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, sampler, arg, want string
	}{
		{"unknown", "foo", "", `OTEL_TRACES_SAMPLER: unknown sampler "foo" (want ` + wantNames + `)`},
		{"bare prefix", "parentbased_", "", `OTEL_TRACES_SAMPLER: unknown sampler "parentbased_" (want ` + wantNames + `)`},
		{"double prefix", "parentbased_parentbased_always_on", "", `OTEL_TRACES_SAMPLER: unknown sampler "parentbased_parentbased_always_on" (want ` + wantNames + `)`},
		{"jaeger remote is not built in", "jaeger_remote", "", `OTEL_TRACES_SAMPLER: unknown sampler "jaeger_remote" (want ` + wantNames + `)`},
		{"ratio above one", "traceidratio", "1.5", `OTEL_TRACES_SAMPLER_ARG: "1.5" is not a ratio in [0, 1]`},
		{"ratio negative", "parentbased_traceidratio", "-0.1", `OTEL_TRACES_SAMPLER_ARG: "-0.1" is not a ratio in [0, 1]`},
		{"ratio not a number", "traceidratio", "half", `OTEL_TRACES_SAMPLER_ARG: "half" is not a ratio in [0, 1]`},
		{"ratio NaN", "traceidratio", "NaN", `OTEL_TRACES_SAMPLER_ARG: "NaN" is not a ratio in [0, 1]`},
		{"ratio percent", "traceidratio", "10%", `OTEL_TRACES_SAMPLER_ARG: "10%" is not a ratio in [0, 1]`},
		{"rate missing", "ratelimited", "", `OTEL_TRACES_SAMPLER_ARG: ratelimited needs a number of traces per second, e.g. 100`},
		{"rate zero", "parentbased_ratelimited", "0", `OTEL_TRACES_SAMPLER_ARG: "0" is not a number of traces per second > 0 (for parentbased_ratelimited)`},
		{"rate negative", "ratelimited", "-5", `OTEL_TRACES_SAMPLER_ARG: "-5" is not a number of traces per second > 0 (for ratelimited)`},
		{"rate infinite", "ratelimited", "Inf", `OTEL_TRACES_SAMPLER_ARG: "Inf" is not a number of traces per second > 0 (for ratelimited)`},
		{"target missing", "adaptive", " ", `OTEL_TRACES_SAMPLER_ARG: adaptive needs a number of traces per second, e.g. 100`},
		{"target not a number", "parentbased_adaptive", "lots", `OTEL_TRACES_SAMPLER_ARG: "lots" is not a number of traces per second > 0 (for parentbased_adaptive)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.sampler, tc.arg)
			if err == nil {
				t.Fatalf("New(%q, %q) = %s; want error %q", tc.sampler, tc.arg, s.Description(), tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestNew_Descriptions(t *testing.T) {
	for _, tc := range []struct {
		sampler, arg, want string
	}{
		{"", "", "ParentBased{root:AlwaysOnSampler}"},
		{"always_on", "ignored", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler}"},
		{"traceidratio", "", "TraceIdRatioBased{1}"},
		{" TraceIdRatio ", "0.25", "TraceIdRatioBased{0.25}"},
		{"parentbased_traceidratio", "0", "ParentBased{root:TraceIdRatioBased{0}}"},
		{"ratelimited", "50", "RateLimited{50}"},
		{"parentbased_ratelimited", "0.5", "ParentBased{root:RateLimited{0.5}}"},
		{"adaptive", "100", "Adaptive{100}"},
		{"parentbased_adaptive", "1e3", "ParentBased{root:Adaptive{1000}}"},
	} {
		t.Run(tc.sampler+"/"+tc.arg, func(t *testing.T) {
			s, err := New(tc.sampler, tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Description(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestNames_EveryNameBuilds(t *testing.T) {
	got := Names()
	if want := slices.Clone(names); !slices.Equal(got, want) {
		t.Fatalf("got %q; want %q", got, want)
	}
	got[0] = "changed"
	if names[0] != "always_on" {
		t.Fatal("Names returned the package's own slice")
	}
	for _, n := range Names() {
		if _, err := New(n, argFor(n)); err != nil {
			t.Errorf("New(%q): %v", n, err)
		}
	}
}

// argFor returns a valid ARG for name.
func argFor(name string) string {
	switch name {
	case "traceidratio", "parentbased_traceidratio":
		return "0.5"
	case "ratelimited", "parentbased_ratelimited", "adaptive", "parentbased_adaptive":
		return "100"
	}
	return ""
}
