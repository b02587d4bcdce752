package propagators

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const (
	tid2Hex = "11111111111111112222222222222222"
	child   = "c0ffee0000000001" // the span id childOf gives the hop's span
)

// TestTranslation runs one hop: Extract the incoming headers, start the hop's span as a child of
// ParentForSpan (sampled unless the sender decided), Inject into the same header map, and compare every
// header that leaves.
func TestTranslation(t *testing.T) {
	cases := []struct {
		name    string
		in      string // "Key: value" lines
		extract string // OTEL_PROPAGATORS
		inject  string // SIDETRACE_INJECT
		want    string // sorted "Key: value" lines
		others  string // Extracted.Others, for span links
	}{
		{name: "b3 64-bit to w3c left-padded",
			in:     "B3: " + tid64Hex + "-" + sidHex + "-1",
			inject: "tracecontext",
			want:   "Traceparent: 00-" + tidPad + "-" + child + "-01\n"},
		{name: "b3 64-bit preserved written back 64-bit",
			in:   "B3: " + tid64Hex + "-" + sidHex + "-1",
			want: "B3: " + tid64Hex + "-" + child + "-1\nTraceparent: 00-" + tidPad + "-" + child + "-01\n"},
		{name: "b3 multi 64-bit to b3 single stays 128-bit (other format)",
			in:     "X-B3-TraceId: " + tid64Hex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 1",
			inject: "b3",
			want:   "B3: " + tidPad + "-" + child + "-1\n"},
		{name: "jaeger with uberctx to w3c baggage",
			in:     "Uber-Trace-Id: " + tidHex + ":" + sidHex + ":0:1\nUberctx-Tenant: acme%20corp",
			inject: "tracecontext",
			want:   "Baggage: tenant=acme%20corp\nTraceparent: 00-" + tidHex + "-" + child + "-01\n"},
		{name: "w3c baggage to jaeger uberctx",
			in:     "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nBaggage: tenant=acme%20corp",
			inject: "jaeger",
			want:   "Uber-Trace-Id: " + tidHex + ":" + child + ":0:1\nUberctx-Tenant: acme+corp\n"},
		{name: "xray root only joins the root's trace",
			in:     "X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Sampled=1",
			inject: "tracecontext,xray",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n" +
				"X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + child + ";Sampled=1\n"},
		{name: "xray root only first, w3c of the same trace names the parent",
			in:      "X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Self=x\nTraceparent: 00-" + tidHex + "-" + sidHex + "-01",
			extract: "xray,tracecontext",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n" +
				"X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + child + ";Sampled=1;Self=x\n"},
		{name: "xray deferred decided by the proxy, extras kept",
			in: "X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + sidHex + ";Sampled=?;Lineage=a:1",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n" +
				"X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + child + ";Sampled=1;Lineage=a:1\n"},
		{name: "b3 and w3c with different trace ids: w3c wins, b3 linked",
			in:     "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nB3: " + tid2Hex + "-" + sidHex + "-1",
			want:   "B3: " + tidHex + "-" + child + "-1\nTraceparent: 00-" + tidHex + "-" + child + "-01\n",
			others: tid2Hex + "-" + sidHex + "-01"},
		{name: "64-bit b3 of another trace does not narrow the winner's b3",
			in:     "Traceparent: 00-" + tidPad + "-" + sidHex + "-01\nB3: 1111111111111111-" + sidHex + "-1",
			want:   "B3: " + tidPad + "-" + child + "-1\nTraceparent: 00-" + tidPad + "-" + child + "-01\n",
			others: "00000000000000001111111111111111-" + sidHex + "-01"},
		{name: "b3 first in order wins over w3c",
			in:      "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nB3: " + tid2Hex + "-" + sidHex + "-0",
			extract: "b3,tracecontext",
			inject:  "tracecontext",
			want:    "Traceparent: 00-" + tid2Hex + "-" + child + "-00\n",
			others:  tidHex + "-" + sidHex + "-01"},
		{name: "tracestate carried when b3 won the same trace",
			in:      "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nTracestate: 1vendor=x,foo=1\nB3: " + tidHex + "-" + sidHex + "-1",
			extract: "b3,tracecontext",
			inject:  "tracecontext",
			want:    "Traceparent: 00-" + tidHex + "-" + child + "-01\nTracestate: 1vendor=x,foo=1\n"},
		{name: "tracestate of another trace not carried",
			in:      "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nTracestate: foo=1\nB3: " + tid2Hex + "-" + sidHex + "-1",
			extract: "b3,tracecontext",
			inject:  "tracecontext",
			want:    "Traceparent: 00-" + tid2Hex + "-" + child + "-01\n",
			others:  tidHex + "-" + sidHex + "-01"},
		{name: "b3 debug to w3c and jaeger",
			in:     "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Flags: 1",
			inject: "tracecontext,jaeger,b3multi",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\nUber-Trace-Id: " + tidHex + ":" + child + ":0:3\n" +
				"X-B3-Flags: 1\nX-B3-Spanid: " + child + "\nX-B3-Traceid: " + tidHex + "\n"},
		{name: "stale headers of formats not injected removed",
			in: "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nTracestate: foo=1\nBaggage: a=1\nB3: " + tidHex + "-" + sidHex + "-1\n" +
				"X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-ParentSpanId: " + sidHex + "\nX-B3-Sampled: 1\nX-B3-Flags: 0\n" +
				"Uber-Trace-Id: " + tidHex + ":" + sidHex + ":0:1\nUberctx-A: 1\n" +
				"X-Amzn-Trace-Id: Root=1-4bf92f35-77b34da6a3ce929d0e0e4736\nUser-Agent: test",
			inject: "b3",
			want:   "B3: " + tidHex + "-" + child + "-1\nUser-Agent: test\n"},
		{name: "invalid headers removed too",
			in:   "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nB3: garbage\nX-B3-Sampled: 1\nUber-Trace-Id: x",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n"},
		{name: "non-canonical keys read and replaced",
			in:   "traceparent: 00-" + tidHex + "-" + sidHex + "-01\nx-b3-sampled: 1",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n"},
		{name: "extraction off: headers ignored and removed",
			in:      "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nBaggage: a=1",
			extract: "none",
			want:    "Traceparent: 00-" + tid2Hex + "-" + child + "-01\n"},
		{name: "inject none removes everything",
			in:     "Traceparent: 00-" + tidHex + "-" + sidHex + "-01\nBaggage: a=1\nUberctx-A: 1",
			inject: "none",
			want:   ""},
		{name: "random flag kept w3c to w3c",
			in:   "Traceparent: 00-" + tidHex + "-" + sidHex + "-03",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-03\n"},
		{name: "future version written as 00",
			in:   "Traceparent: 01-" + tidHex + "-" + sidHex + "-01-future",
			want: "Traceparent: 00-" + tidHex + "-" + child + "-01\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extract, err := ParseExtract(tc.extract)
			if err != nil {
				t.Fatal(err)
			}
			inject, err := ParseInject(tc.inject)
			if err != nil {
				t.Fatal(err)
			}
			p := New(extract, inject)
			h := parseHeaderLines(tc.in)
			e := p.Extract(h)
			p.Inject(h, hopSpan(&e), &e)
			if got := headerString(h); got != tc.want {
				t.Errorf("headers out:\ngot\n%swant\n%s", got, tc.want)
			}
			if got := viewOf(e).Others; got != tc.others {
				t.Errorf("Others: got %q; want %q", got, tc.others)
			}
		})
	}
}

// hopSpan is the proxy's span for one hop: a child of e.ParentForSpan(), or a new trace (tid2Hex) when
// nothing was extracted; sampled unless the sender decided otherwise.
func hopSpan(e *Extracted) trace.SpanContext {
	parent := e.ParentForSpan()
	if !parent.IsValid() {
		tid, _ := trace.TraceIDFromHex(tid2Hex)
		parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	}
	if e.Deferred {
		parent = parent.WithTraceFlags(parent.TraceFlags() | trace.FlagsSampled)
	}
	return childOf(parent)
}

func TestInject_NilExtracted_NewTrace(t *testing.T) {
	p := New(defaultExtract, DefaultInject)
	h := http.Header{"B3": {"1"}, "Uberctx-A": {"1"}}
	p.Inject(h, hopSpan(&Extracted{}), nil)
	if got, want := headerString(h), "Traceparent: 00-"+tid2Hex+"-"+child+"-01\n"; got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestInject_InvalidSpanContext_WritesNoParent(t *testing.T) {
	p := New(defaultExtract, InjectSpec{Formats: Set(TraceContext | B3 | Jaeger | XRay | B3Multi)})
	h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}}
	p.Inject(h, trace.SpanContext{}, nil)
	if got := headerString(h); strings.TrimSpace(got) != "" {
		t.Errorf("got\n%swant nothing", got)
	}
}

func TestExtract_RootOnlyGivesWayToSameTraceParent(t *testing.T) {
	h := http.Header{hdrXRay: {"Root=" + xrayRoot + ";Sampled=1"}, hdrB3: {tidHex + "-" + sidHex}}
	e := extractOnly(h, XRay, B3)
	// B3 deferred the decision, the X-Ray root made it: sampled.
	want := view{Format: "b3", Present: "b3,xray", TraceID: tidHex, SpanID: sidHex, Flags: 1}
	checkView(t, viewOf(e), want)
	if got := e.ParentForSpan().SpanID().String(); got != sidHex {
		t.Errorf("ParentForSpan: got %s; want %s", got, sidHex)
	}
}

// TestPropagator_ConcurrentUse: a Propagator and an Extracted are read-only once built (run with -race).
func TestPropagator_ConcurrentUse(t *testing.T) {
	p := New(defaultExtract, DefaultInject)
	in := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}, hdrTracestate: {"foo=1"},
		hdrBaggage: {"a=1"}, "Uberctx-B": {"2"}}
	e := p.Extract(in)
	done := make(chan string)
	for range 8 {
		go func() {
			q := p.WithInject(InjectSpec{Formats: Set(allFormats)})
			out := in.Clone()
			q.Inject(out, hopSpan(&e), &e)
			_, _ = e.BaggageMember("b")
			done <- headerString(out)
		}()
	}
	first := <-done
	for range 7 {
		if got := <-done; got != first {
			t.Errorf("got\n%swant\n%s", got, first)
		}
	}
}
