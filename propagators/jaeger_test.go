package propagators

import (
	"net/http"
	"testing"
)

// jaegerVectors follow https://www.jaegertracing.io/docs/1.21/client-libraries/#trace-span-identity.
var jaegerVectors = []struct {
	name string
	in   string
	want view
}{
	{"128-bit sampled", tidHex + ":" + sidHex + ":0:1", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"not sampled", tidHex + ":" + sidHex + ":0:0", view{TraceID: tidHex, SpanID: sidHex}},
	{"debug", tidHex + ":" + sidHex + ":0:3", view{TraceID: tidHex, SpanID: sidHex, Flags: 1, Debug: true}},
	{"debug without sampled ignored", tidHex + ":" + sidHex + ":0:2", view{TraceID: tidHex, SpanID: sidHex}},
	{"firehose ignored", tidHex + ":" + sidHex + ":0:9", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"two digit flags", tidHex + ":" + sidHex + ":0:01", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"64-bit", tid64Hex + ":" + sidHex + ":0:1", view{TraceID: tidPad, SpanID: sidHex, Flags: 1, Width64: "jaeger"}},
	{"short ids left-padded", "abc:def:0:1", view{TraceID: "00000000000000000000000000000abc", SpanID: "0000000000000def", Flags: 1, Width64: "jaeger"}},
	{"parent span id", tidHex + ":" + sidHex + ":" + tid64Hex + ":1", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"upper-case hex", "ABC:DEF:0:1", view{TraceID: "00000000000000000000000000000abc", SpanID: "0000000000000def", Flags: 1, Width64: "jaeger"}},
	{"url-encoded", tidHex + "%3A" + sidHex + "%3A0%3A1", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"three parts", tidHex + ":" + sidHex + ":1", view{}},
	{"five parts", tidHex + ":" + sidHex + ":0:1:1", view{}},
	{"empty trace id", ":" + sidHex + ":0:1", view{}},
	{"zero trace id", "0:" + sidHex + ":0:1", view{}},
	{"zero span id", tidHex + ":0:0:1", view{}},
	{"33 digit trace id", "0" + tidHex + ":" + sidHex + ":0:1", view{}},
	{"17 digit span id", tidHex + ":0" + sidHex + ":0:1", view{}},
	{"empty parent", tidHex + ":" + sidHex + "::1", view{}},
	{"three digit flags", tidHex + ":" + sidHex + ":0:001", view{}},
	{"empty flags", tidHex + ":" + sidHex + ":0:", view{}},
	{"non-hex flags", tidHex + ":" + sidHex + ":0:x", view{}},
	{"signed flags", tidHex + ":" + sidHex + ":0:+1", view{}},
	{"bad escape", tidHex + "%3" + sidHex + ":0:1", view{}},
	{"empty", "", view{}},
}

func TestJaeger_SpecVectors(t *testing.T) {
	for _, tc := range jaegerVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.TraceID != "" {
				want.Format, want.Present = "jaeger", "jaeger"
			}
			checkView(t, viewOf(extractOnly(http.Header{hdrUberTraceID: {tc.in}}, Jaeger)), want)
		})
	}
}

func TestInjectJaeger_WidthAndDebug(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"64-bit written back 64-bit", tid64Hex + ":" + sidHex + ":0:1", tid64Hex + ":c0ffee0000000001:0:1"},
		{"short id written back 16 digits", "abc:def:0:0", "0000000000000abc:c0ffee0000000001:0:0"},
		{"128-bit", tidHex + ":" + sidHex + ":0:1", tidHex + ":c0ffee0000000001:0:1"},
		{"debug", tidHex + ":" + sidHex + ":0:3", tidHex + ":c0ffee0000000001:0:3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New([]Format{Jaeger}, InjectSpec{Formats: Set(Jaeger)})
			h := http.Header{hdrUberTraceID: {tc.in}}
			e := p.Extract(h)
			p.Inject(h, childOf(e.SpanContext), &e)
			if got := h[hdrUberTraceID]; !equalStrings(got, []string{tc.want}) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// FuzzJaeger: no panic; a parsed uber-trace-id re-injects and re-parses to the same context.
func FuzzJaeger(f *testing.F) {
	for _, tc := range jaegerVectors {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var r remote
		if !parseJaeger(v, &r) {
			return
		}
		e := Extracted{SpanContext: r.spanContext(), Debug: r.debug}
		if r.width64 {
			e.width64 = Set(Jaeger)
		}
		h := http.Header{}
		injectJaeger(h, e.SpanContext, &e, true)
		var r2 remote
		if !parseJaeger(h[hdrUberTraceID][0], &r2) {
			t.Fatalf("%q -> %q does not parse", v, h[hdrUberTraceID][0])
		}
		if r2 != r {
			t.Fatalf("%q -> %q: got %+v; want %+v", v, h[hdrUberTraceID][0], r2, r)
		}
	})
}
