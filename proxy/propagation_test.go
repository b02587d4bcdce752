package proxy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/internal/otlptest"
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

// Several formats naming different traces: the first in OTEL_PROPAGATORS order wins, the others become span
// links, so nothing is lost silently.
func TestPropagation_ConflictingFormats_FirstWinsOthersLinked(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	get(t, client(t), sc.URL("inbound")+"/", map[string]string{
		"traceparent":   "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1111111111111111-01",
		"b3":            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-2222222222222222-1",
		"uber-trace-id": "cccccccccccccccccccccccccccccccc:3333333333333333:0:1",
	})
	s := rcv.WaitSpans(t, 1, wait)[0]
	if s.TraceID != "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" || s.ParentSpanID != "1111111111111111" {
		t.Errorf("winner: got trace %s parent %s; want the W3C context", s.TraceID, s.ParentSpanID)
	}
	var got []string
	for _, l := range s.Links {
		got = append(got, l.TraceID+"/"+l.SpanID+"/"+fmt.Sprint(l.Attrs["sidetrace.link.reason"]))
	}
	want := []string{
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/2222222222222222/other_format",
		"cccccccccccccccccccccccccccccccc/3333333333333333/other_format",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("links: got %v; want %v", got, want)
	}
	checkAttrs(t, s, map[string]any{"sidetrace.propagation.format": "tracecontext"})
	// preserve,tracecontext: every format that arrived is written again, now naming the hop's span.
	fwd := up.last(t)
	if !strings.Contains(fwd.Header.Get("b3"), s.SpanID) || !strings.Contains(fwd.Header.Get("uber-trace-id"), s.SpanID) {
		t.Errorf("preserved formats do not name the hop's span %s: b3 %q uber-trace-id %q", s.SpanID, fwd.Header.Get("b3"), fwd.Header.Get("uber-trace-id"))
	}
}

// B3's debug flag means sampled, and is recorded on the span.
func TestPropagation_B3Debug_SampledAndRecorded(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_TRACES_SAMPLER=parentbased_always_off")
	get(t, client(t), sc.URL("inbound")+"/", map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d"})
	s := rcv.WaitSpans(t, 1, wait)[0]
	checkAttrs(t, s, map[string]any{"sidetrace.debug": true})
	if tp := up.last(t).Header.Get("traceparent"); !strings.HasSuffix(tp, "-01") {
		t.Errorf("downstream traceparent %q: want sampled", tp)
	}
	if b := up.last(t).Header.Get("b3"); !strings.HasSuffix(b, "-d") {
		t.Errorf("downstream b3 %q: want the debug flag kept", b)
	}
}

// An X-Ray header with Root and no Parent (what AWS load balancers send) joins that trace.
func TestPropagation_XRayRootOnly_JoinsTheTrace(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	get(t, client(t), sc.URL("inbound")+"/", map[string]string{"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"})
	s := rcv.WaitSpans(t, 1, wait)[0]
	if s.TraceID != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("trace id: got %s; want the load balancer's root", s.TraceID)
	}
	if x := up.last(t).Header.Get("X-Amzn-Trace-Id"); !strings.Contains(x, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent="+s.SpanID) {
		t.Errorf("downstream X-Amzn-Trace-Id %q: want the root with the hop's span as parent", x)
	}
}

// A per-route injection override: a route to a legacy Zipkin service writes B3 multi-header only.
func TestPropagation_RouteInjectOverride(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	route := ln.Addr().String()
	ln.Close()
	sc := sidecartest.Start(t, "SIDETRACE_INBOUND_ADDR=off", "SIDETRACE_EGRESS_ROUTES="+route+"="+up.URL+";inject=b3multi")
	get(t, client(t), sc.URL("route "+route)+"/", map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	fwd := up.last(t).Header
	if fwd.Get("X-B3-TraceId") != "0af7651916cd43dd8448eb211c80319c" || fwd.Get("X-B3-Sampled") != "1" {
		t.Errorf("route forwarded X-B3-*: %v", fwd)
	}
	if v := fwd.Get("traceparent"); v != "" {
		t.Errorf("route forwarded traceparent %q; want only b3multi", v)
	}
}

// B3 without a sampling state, and X-Ray's Sampled=?, leave the decision to the receiver: under the default
// parentbased_always_on the trace is sampled, keeping its parent.
func TestPropagation_DeferredDecision_DecidedHere(t *testing.T) {
	for name, hdr := range map[string]map[string]string{
		"b3multi": {"X-B3-TraceId": "463ac35c9f6413ad48485a3953bb6124", "X-B3-SpanId": "a2fb4a1d1a96d312"},
		"b3":      {"b3": "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312"},
		"xray":    {"X-Amzn-Trace-Id": "Root=1-463ac35c-9f6413ad48485a3953bb6124;Parent=a2fb4a1d1a96d312;Sampled=?"},
	} {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			rcv := otlptest.NewReceiver(t)
			sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
			get(t, client(t), sc.URL("inbound")+"/", hdr)
			s := rcv.WaitSpans(t, 1, wait)[0]
			if s.TraceID != "463ac35c9f6413ad48485a3953bb6124" || s.ParentSpanID != "a2fb4a1d1a96d312" {
				t.Errorf("span: trace %s parent %s; want the sender's context", s.TraceID, s.ParentSpanID)
			}
			if tp := up.last(t).Header.Get("traceparent"); !strings.HasSuffix(tp, "-01") {
				t.Errorf("downstream traceparent %q; want sampled", tp)
			}
		})
	}
}
