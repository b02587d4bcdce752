package proxy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// A format as a client or a service speaks it, through the reference implementations (OpenTelemetry-Go and
// its contrib propagators): the test never trusts sidetrace's own parsers to check sidetrace.
type refFormat struct {
	name       string
	prop       propagation.TextMapPropagator
	inject     string // SIDETRACE_INJECT for a service that reads only this format (and baggage)
	setBaggage func(h http.Header, key, value string)
	getBaggage func(h http.Header, key string) string
	headers    []string // the headers of this format, which must not reach a service reading another one
}

func w3cBaggageSet(h http.Header, k, v string) {
	m, _ := baggage.NewMemberRaw(k, v)
	b, _ := baggage.New(m)
	propagation.Baggage{}.Inject(baggage.ContextWithBaggage(context.Background(), b), propagation.HeaderCarrier(h))
}

func w3cBaggageGet(h http.Header, k string) string {
	ctx := propagation.Baggage{}.Extract(context.Background(), propagation.HeaderCarrier(h))
	return baggage.FromContext(ctx).Member(k).Value()
}

var refFormats = []refFormat{
	{"tracecontext", propagation.TraceContext{}, "tracecontext", w3cBaggageSet, w3cBaggageGet, []string{"Traceparent"}},
	{"b3", b3.New(b3.WithInjectEncoding(b3.B3SingleHeader)), "b3,baggage", w3cBaggageSet, w3cBaggageGet, []string{"B3"}},
	{"b3multi", b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)), "b3multi,baggage", w3cBaggageSet, w3cBaggageGet, []string{"X-B3-Traceid", "X-B3-Spanid"}},
	{"jaeger", jaeger.Jaeger{}, "jaeger",
		func(h http.Header, k, v string) { h.Set("uberctx-"+k, v) },
		func(h http.Header, k string) string { return h.Get("uberctx-" + k) },
		[]string{"Uber-Trace-Id"}},
	{"xray", xray.Propagator{}, "xray,baggage", w3cBaggageSet, w3cBaggageGet, []string{"X-Amzn-Trace-Id"}},
}

// For every ordered pair of formats: a client speaking X calls through sidetrace to a service reading only Y.
// The service sees the same trace id, the hop's span as parent, the same sampled flag and the baggage, and
// no header of X.
func TestPropagation_EveryPairOfFormats(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, y := range refFormats {
		t.Run("to_"+y.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "SIDETRACE_INJECT="+y.inject, "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_BSP_SCHEDULE_DELAY=60000")
			c := client(t)
			n := 0
			for _, x := range refFormats {
				for _, sampled := range []bool{true, false} {
					t.Run(fmt.Sprintf("from_%s_sampled_%v", x.name, sampled), func(t *testing.T) {
						var tid trace.TraceID
						var sid trace.SpanID
						for !tid.IsValid() || !sid.IsValid() {
							putRand(rng, tid[:])
							putRand(rng, sid[:])
						}
						if x.name == "xray" {
							tid[0], tid[1], tid[2], tid[3] = 0x65, 0x00, 0x00, 0x01 // X-Ray ids start with an epoch
						}
						flags := trace.TraceFlags(0)
						if sampled {
							flags = trace.FlagsSampled
						}
						in := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
						req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
						x.prop.Inject(trace.ContextWithRemoteSpanContext(context.Background(), in), propagation.HeaderCarrier(req.Header))
						want := fmt.Sprintf("%s-to-%s", x.name, y.name)
						x.setBaggage(req.Header, "user", want)
						corr := fmt.Sprintf("pair-%s-%s-%v", x.name, y.name, sampled)
						req.Header.Set("X-Correlation-Id", corr)
						res, err := c.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						res.Body.Close()
						n++
						fwd := up.last(t)
						got := trace.SpanContextFromContext(y.prop.Extract(context.Background(), propagation.HeaderCarrier(fwd.Header)))
						line := sc.WaitAccessLog(t, n)[n-1]
						if line["correlation_id"] != corr {
							t.Fatalf("access log line %d is for %v; want %s", n, line["correlation_id"], corr)
						}
						if got.TraceID() != tid {
							t.Errorf("trace id the service sees: got %s; want %s (headers %v)", got.TraceID(), tid, fwd.Header)
						}
						if got.SpanID().String() != line["span_id"] {
							t.Errorf("parent the service sees: got %s; want the hop's span %v", got.SpanID(), line["span_id"])
						}
						if got.IsSampled() != sampled {
							t.Errorf("sampled the service sees: got %v; want %v (headers %v)", got.IsSampled(), sampled, fwd.Header)
						}
						if b := y.getBaggage(fwd.Header, "user"); b != want {
							t.Errorf("baggage user the service sees: got %q; want %q (headers %v)", b, want, fwd.Header)
						}
						if x.name != y.name {
							for _, h := range x.headers {
								if v := fwd.Header.Values(h); len(v) > 0 {
									t.Errorf("stale %s header reached a %s service: %q", h, y.name, v)
								}
							}
						}
					})
				}
			}
		})
	}
}

func putRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
