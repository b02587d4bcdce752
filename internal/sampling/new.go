package sampling

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Environment variables New reads its arguments from; they name the variable in errors.
const (
	EnvSampler    = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
)

// DefaultName is the sampler used when OTEL_TRACES_SAMPLER is empty, as in the OpenTelemetry SDKs.
const DefaultName = "parentbased_always_on"

// parentBasedPrefix turns a root sampler name into its parent-based form.
const parentBasedPrefix = "parentbased_"

// names lists the accepted names: the OpenTelemetry values of OTEL_TRACES_SAMPLER
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#general-sdk-configuration)
// then sidetrace's rate-based samplers.
var names = []string{
	"always_on",
	"always_off",
	"traceidratio",
	"parentbased_always_on",
	"parentbased_always_off",
	"parentbased_traceidratio",
	"ratelimited",
	"parentbased_ratelimited",
	"adaptive",
	"parentbased_adaptive",
}

// Names lists the accepted sampler names for help text.
func Names() []string {
	return append([]string(nil), names...)
}

// New builds the sampler named by OTEL_TRACES_SAMPLER with OTEL_TRACES_SAMPLER_ARG:
//
//   - always_on, always_off: ARG is ignored.
//   - traceidratio: ARG is the ratio in [0, 1], default 1.0.
//   - ratelimited: ARG (required) is the maximum number of new traces sampled per second.
//   - adaptive: ARG (required) is the target number of sampled traces per second; the ratio follows
//     the traffic.
//
// Each has a parentbased_ form that follows the parent's sampled flag and decides roots only. An empty
// name means parentbased_always_on. Every sampler honours ContextWithDecision first.
func New(name, arg string, opts ...Option) (sdktrace.Sampler, error) {
	o := newOptions(opts)
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		n = DefaultName
	}
	base, parentBased := strings.CutPrefix(n, parentBasedPrefix)
	s := &sampler{parentBased: parentBased, recordUnsampled: o.recordUnsampled}
	var v float64
	switch base {
	case "always_on":
		s.kind = kindAlwaysOn
		s.fixed = newRatioState(1, false)
	case "always_off":
		s.kind = kindAlwaysOff
	case "traceidratio":
		r, err := parseRatio(arg)
		if err != nil {
			return nil, err
		}
		v = r
		s.kind = kindRatio
		s.fixed = newRatioState(r, true)
	case "ratelimited":
		r, err := parseRate(arg, n)
		if err != nil {
			return nil, err
		}
		v = r
		s.kind = kindRateLimited
		s.limiter = newTokenBucket(r, o.now)
	case "adaptive":
		r, err := parseRate(arg, n)
		if err != nil {
			return nil, err
		}
		v = r
		s.kind = kindAdaptive
		s.adaptive = newAdaptive(r, o.now)
	default:
		return nil, fmt.Errorf("%s: unknown sampler %q (want %s)", EnvSampler, name, strings.Join(names, ", "))
	}
	s.description = describe(s.kind, v, parentBased)
	return s, nil
}

// parseRatio reads a traceidratio ARG; empty means 1.0 as in the SDKs.
func parseRatio(arg string) (float64, error) {
	a := strings.TrimSpace(arg)
	if a == "" {
		return 1, nil
	}
	r, err := strconv.ParseFloat(a, 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
		return 0, fmt.Errorf("%s: %q is not a ratio in [0, 1]", EnvSamplerArg, arg)
	}
	return r, nil
}

// parseRate reads the traces-per-second ARG of ratelimited and adaptive; there is no sensible default.
func parseRate(arg, name string) (float64, error) {
	a := strings.TrimSpace(arg)
	if a == "" {
		return 0, fmt.Errorf("%s: %s needs a number of traces per second, e.g. 100", EnvSamplerArg, name)
	}
	r, err := strconv.ParseFloat(a, 64)
	if err != nil || math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		return 0, fmt.Errorf("%s: %q is not a number of traces per second > 0 (for %s)", EnvSamplerArg, arg, name)
	}
	return r, nil
}
