package plugins

import (
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Decision is a plugin's sampling decision, returned by the request hook.
// The numbers are the ABI's (wasm-sdk/ABI.md, "Decision").
type Decision uint8

const (
	NoOpinion       Decision = iota // the plugin leaves sampling to the sampler
	Drop                            // neither record nor sample
	RecordOnly                      // record the span, do not sample it
	RecordAndSample                 // record and sample
)

// String returns the decision's name, as used in logs.
func (d Decision) String() string {
	switch d {
	case NoOpinion:
		return "no_opinion"
	case Drop:
		return "drop"
	case RecordOnly:
		return "record_only"
	case RecordAndSample:
		return "record_and_sample"
	}
	return "decision(" + itoa(int(d)) + ")"
}

// ErrRefused is wrapped by the errors OnRequest and OnResponse return when a
// fail-closed plugin failed: the proxy answers 503.
var ErrRefused = errors.New("plugins: refused")

// ErrorAttribute is the span attribute key under which fail-open failures are
// recorded, as "NAME: problem".
const ErrorAttribute = "sidetrace.plugin.error"

// Request is what the request hook sees.
type Request struct {
	Kind                              trace.SpanKind // trace.SpanKindServer or trace.SpanKindClient
	Method, Scheme, Host, Path, Query string
	Header                            http.Header
	PeerAddr                          string
	TraceID                           trace.TraceID
}

// Response is what the response hook sees.
type Response struct {
	Status   int
	Header   http.Header
	Duration time.Duration
}

// Exchange carries one request through the chain: OnRequest, then OnResponse.
// The proxy keeps one per request and may pool them (call Reset before
// reuse). It pins the chain seen at OnRequest, so a hot reload never splits a
// request across two generations of a plugin; the pin is released by
// OnResponse or Reset, whichever comes first.
type Exchange struct {
	Attributes []attribute.KeyValue // added by plugins (request and response hooks), in order
	Tenant     string
	Decision   Decision // last non-NoOpinion decision in chain order
	MarkError  bool     // a response hook marked the span as an error
	ErrorDesc  string   // description given by the last response hook that marked the error
	Keep       bool     // a response hook asked to keep the span whatever the sampler said
	Errors     []string // fail-open failures, "NAME: problem"; the proxy records them as sidetrace.plugin.error

	chain *chain // pinned at OnRequest; nil before and after release
	kind  trace.SpanKind
	trace trace.TraceID
}

// Reset clears x for reuse and releases its pin on the chain.
func (x *Exchange) Reset() {
	x.release()
	attrs, errs := x.Attributes[:0], x.Errors[:0]
	*x = Exchange{Attributes: attrs, Errors: errs}
}

func (x *Exchange) release() {
	if c := x.chain; c != nil {
		x.chain = nil
		c.unpin()
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
