// Package sampling builds the head sampler of sidetrace from OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG: the OpenTelemetry samplers (always_on, always_off, traceidratio and their
// parentbased_ forms, https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// plus ratelimited and adaptive for high-traffic services.
//
// Ratio decisions follow consistent probability sampling
// (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/): the randomness is
// the explicit rv of the tracestate's ot entry when present, else the 56 least-significant bits of the
// trace id, and a span is sampled when it is at least the rejection threshold (1 - p) * 2^56. Every
// sidecar of a trace configured with the same ratio therefore takes the same decision. A sampled ratio
// decision writes ot=th:<hex> (4 significant hex digits, trailing zeros removed) in the span's
// tracestate, keeping the other ot sub-keys and the other members; non-probabilistic outcomes (rate
// limited, plugin, not sampled) erase th, as the specification requires for unknown probabilities.
//
// Precedence, highest first: a plugin decision put in the context with ContextWithDecision; the
// parent's sampled flag for parentbased_ samplers; the sampler's own head decision. With
// WithRecordUnsampled, head decisions that do not sample return RecordOnly instead of Drop so the proxy
// can still export error and slow spans; a plugin's Drop stays Drop.
package sampling
