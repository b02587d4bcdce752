package propagators

import (
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// Temporary: formats still being written.

type bagMember struct{ key, value, props string }

func parseBaggage(s string) (string, bool)                   { return "", false }
func extractUberctx(h http.Header) []bagMember               { return nil }
func (e *Extracted) w3cBaggage() string                      { return e.baggage }
func (e *Extracted) injectUberctx(h http.Header)             {}
func (e *Extracted) BaggageLen() int                         { return 0 }
func (e *Extracted) BaggageMember(key string) (string, bool) { return "", false }

func extractB3Single(hv *headerValues, r *remote) bool           { return false }
func extractB3Multi(hv *headerValues, r *remote) bool            { return false }
func extractJaeger(hv *headerValues, r *remote) bool             { return false }
func extractXRay(hv *headerValues, r *remote, e *Extracted) bool { return false }

func injectB3Single(h http.Header, sc trace.SpanContext, in *Extracted, same bool) {}
func injectB3Multi(h http.Header, sc trace.SpanContext, in *Extracted, same bool)  {}
func injectJaeger(h http.Header, sc trace.SpanContext, in *Extracted, same bool)   {}
func injectXRay(h http.Header, sc trace.SpanContext, in *Extracted, same bool)     {}
