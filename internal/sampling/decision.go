package sampling

import "context"

// Decision is a per-request sampling decision made outside the configured sampler, typically by a
// per-tenant plugin. It uses the same numbering as plugins.Decision so the proxy can convert with a cast.
type Decision uint8

// Decisions a plugin can return. Any value above RecordAndSample is treated as NoOpinion.
const (
	// NoOpinion leaves the decision to the configured sampler.
	NoOpinion Decision = iota
	// Drop neither records nor samples the span, even when WithRecordUnsampled is on.
	Drop
	// RecordOnly records the span without setting the sampled flag.
	RecordOnly
	// RecordAndSample records the span and sets the sampled flag.
	RecordAndSample
)

// AttrReason is the span attribute that says why a span was kept outside head sampling. Values used
// across sidetrace: "plugin" (set here), "error" and "slow" (set by the proxy's export processor).
const AttrReason = "sidetrace.sampling.reason"

// ReasonPlugin is the AttrReason value for spans sampled because a plugin said so.
const ReasonPlugin = "plugin"

// DecisionKey is the context key of a Decision (ContextWithDecision), for a context type of the caller's
// own that answers it without a context.WithValue.
type DecisionKey struct{}

// ContextWithDecision returns a copy of ctx carrying d. Pass it to tracer.Start: every sampler built by
// New honours it before its own logic, so a plugin decision always wins over the configured sampler.
func ContextWithDecision(ctx context.Context, d Decision) context.Context {
	return context.WithValue(ctx, DecisionKey{}, d)
}

// decisionFromContext returns the decision stored by ContextWithDecision, or NoOpinion.
func decisionFromContext(ctx context.Context) Decision {
	if ctx == nil {
		return NoOpinion
	}
	d, _ := ctx.Value(DecisionKey{}).(Decision)
	if d > RecordAndSample {
		return NoOpinion
	}
	return d
}

type deferredKey struct{}

// ContextWithDeferredParent marks the remote parent in ctx as having left the sampling decision to us (B3
// without a sampling state, X-Ray "Sampled=?"): parent-based samplers then decide as they would for a root,
// while the span keeps that parent.
func ContextWithDeferredParent(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferredKey{}, true)
}

func deferredFromContext(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	d, _ := ctx.Value(deferredKey{}).(bool)
	return d
}
