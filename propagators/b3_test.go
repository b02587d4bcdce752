package propagators

import (
	"net/http"
	"strings"
	"testing"
)

// b3SingleVectors follow https://github.com/openzipkin/b3-propagation#single-header.
var b3SingleVectors = []struct {
	name string
	in   string
	want view // Format/Present filled in by the test when TraceID is set
}{
	{"128-bit sampled", tidHex + "-" + sidHex + "-1", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"128-bit not sampled", tidHex + "-" + sidHex + "-0", view{TraceID: tidHex, SpanID: sidHex}},
	{"128-bit debug", tidHex + "-" + sidHex + "-d", view{TraceID: tidHex, SpanID: sidHex, Flags: 1, Debug: true}},
	{"deferred", tidHex + "-" + sidHex, view{TraceID: tidHex, SpanID: sidHex, Deferred: true}},
	{"with parent", tidHex + "-" + sidHex + "-1-" + tid64Hex, view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"64-bit padded", tid64Hex + "-" + sidHex + "-1", view{TraceID: tidPad, SpanID: sidHex, Flags: 1, Width64: "b3"}},
	{"64-bit deferred", tid64Hex + "-" + sidHex, view{TraceID: tidPad, SpanID: sidHex, Deferred: true, Width64: "b3"}},
	{"sampling only 0", "0", view{}},
	{"sampling only d", "d", view{}},
	{"trace id only", tidHex, view{}},
	{"trailing dash", tidHex + "-" + sidHex + "-", view{}},
	{"parent without sampling", tidHex + "-" + sidHex + "-" + tid64Hex, view{}},
	{"bad sampling state", tidHex + "-" + sidHex + "-x", view{}},
	{"sampling state true", tidHex + "-" + sidHex + "-true", view{}},
	{"bad parent", tidHex + "-" + sidHex + "-1-xyz", view{}},
	{"upper-case trace id", strings.ToUpper(tidHex) + "-" + sidHex + "-1", view{}},
	{"48-bit trace id", tidHex[:12] + "-" + sidHex + "-1", view{}},
	{"short span id", tidHex + "-" + sidHex[1:] + "-1", view{}},
	{"all-zero trace id", "00000000000000000000000000000000-" + sidHex + "-1", view{}},
	{"all-zero span id", tidHex + "-0000000000000000-1", view{}},
	{"empty", "", view{}},
}

func TestB3Single_SpecVectors(t *testing.T) {
	for _, tc := range b3SingleVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.TraceID != "" {
				want.Format, want.Present = "b3", "b3"
			}
			checkView(t, viewOf(extractOnly(http.Header{hdrB3: {tc.in}}, B3)), want)
		})
	}
}

// b3MultiVectors follow https://github.com/openzipkin/b3-propagation#multiple-headers. Headers are given as
// "Key: value" lines.
var b3MultiVectors = []struct {
	name string
	in   string
	want view
}{
	{"sampled", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"not sampled", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 0",
		view{TraceID: tidHex, SpanID: sidHex}},
	{"sampled true (legacy)", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: true",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"sampled false (legacy)", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: false",
		view{TraceID: tidHex, SpanID: sidHex}},
	{"debug flag", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Flags: 1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1, Debug: true}},
	{"debug flag overrides sampled 0", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 0\nX-B3-Flags: 1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1, Debug: true}},
	{"other flags ignored", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Flags: 0",
		view{TraceID: tidHex, SpanID: sidHex, Deferred: true}},
	{"deferred", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex,
		view{TraceID: tidHex, SpanID: sidHex, Deferred: true}},
	{"with parent", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-ParentSpanId: " + tid64Hex + "\nX-B3-Sampled: 1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"64-bit", "X-B3-TraceId: " + tid64Hex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 1",
		view{TraceID: tidPad, SpanID: sidHex, Flags: 1, Width64: "b3multi"}},
	{"lower-case header names", "x-b3-traceid: " + tidHex + "\nx-b3-spanid: " + sidHex + "\nx-b3-sampled: 1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"bad parent", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-ParentSpanId: xyz", view{}},
	{"bad sampled", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: " + sidHex + "\nX-B3-Sampled: 2", view{}},
	{"trace id only", "X-B3-TraceId: " + tidHex + "\nX-B3-Sampled: 1", view{}},
	{"span id only", "X-B3-SpanId: " + sidHex, view{}},
	{"sampled only", "X-B3-Sampled: 1", view{}},
	{"upper-case trace id", "X-B3-TraceId: " + strings.ToUpper(tidHex) + "\nX-B3-SpanId: " + sidHex, view{}},
	{"all-zero span id", "X-B3-TraceId: " + tidHex + "\nX-B3-SpanId: 0000000000000000", view{}},
}

// parseHeaderLines turns "Key: value" lines into a header map, keeping the key spelling.
func parseHeaderLines(s string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}

func TestB3Multi_SpecVectors(t *testing.T) {
	for _, tc := range b3MultiVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.TraceID != "" {
				want.Format, want.Present = "b3multi", "b3multi"
			}
			h := http.Header{}
			for k, v := range parseHeaderLines(tc.in) {
				h[http.CanonicalHeaderKey(k)] = v
			}
			if strings.HasPrefix(tc.name, "lower-case") {
				h = parseHeaderLines(tc.in)
			}
			checkView(t, viewOf(extractOnly(h, B3Multi)), want)
		})
	}
}

func TestInjectB3_WidthAndDebug(t *testing.T) {
	cases := []struct {
		name string
		in   http.Header
		want string
	}{
		{"64-bit single written back 64-bit", http.Header{hdrB3: {tid64Hex + "-" + sidHex + "-1"}},
			"B3: " + tid64Hex + "-c0ffee0000000001-1\n"},
		{"128-bit single with zero high half stays 128-bit", http.Header{hdrB3: {tidPad + "-" + sidHex + "-1"}},
			"B3: " + tidPad + "-c0ffee0000000001-1\n"},
		{"debug single written back", http.Header{hdrB3: {tidHex + "-" + sidHex + "-d"}},
			"B3: " + tidHex + "-c0ffee0000000001-d\n"},
		{"64-bit multi debug", http.Header{hdrB3TraceID: {tid64Hex}, hdrB3SpanID: {sidHex}, hdrB3Flags: {"1"}},
			"X-B3-Flags: 1\nX-B3-Spanid: c0ffee0000000001\nX-B3-Traceid: " + tid64Hex + "\n"},
		{"multi not sampled", http.Header{hdrB3TraceID: {tidHex}, hdrB3SpanID: {sidHex}, hdrB3Sampled: {"0"}},
			"X-B3-Sampled: 0\nX-B3-Spanid: c0ffee0000000001\nX-B3-Traceid: " + tidHex + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New([]Format{B3, B3Multi}, InjectSpec{Preserve: true})
			e := p.Extract(tc.in)
			p.Inject(tc.in, childOf(e.SpanContext), &e)
			if got := headerString(tc.in); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// FuzzB3Single: no panic; a parsed b3 header re-injects (same width, state) and re-parses to the same context.
func FuzzB3Single(f *testing.F) {
	for _, tc := range b3SingleVectors {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var r remote
		if !parseB3Single(v, &r) {
			return
		}
		e := Extracted{SpanContext: r.spanContext(), Debug: r.debug}
		if r.width64 {
			e.width64 = Set(B3)
		}
		h := http.Header{}
		injectB3Single(h, e.SpanContext, &e, true)
		var r2 remote
		if !parseB3Single(h[hdrB3][0], &r2) {
			t.Fatalf("%q -> %q does not parse", v, h[hdrB3][0])
		}
		r.deferred, r2.deferred = false, false // an injected header always carries our decision
		if r2 != r {
			t.Fatalf("%q -> %q: got %+v; want %+v", v, h[hdrB3][0], r2, r)
		}
	})
}

// FuzzB3Multi: no panic; parsed X-B3-* headers re-inject and re-parse to the same context.
func FuzzB3Multi(f *testing.F) {
	for _, tc := range b3MultiVectors {
		h := parseHeaderLines(tc.in)
		get := func(k string) string {
			for hk, v := range h {
				if strings.EqualFold(hk, k) {
					return v[0]
				}
			}
			return "\x00"
		}
		f.Add(get(hdrB3TraceID), get(hdrB3SpanID), get(hdrB3ParentID), get(hdrB3Sampled), get(hdrB3Flags))
	}
	f.Fuzz(func(t *testing.T, traceID, spanID, parent, sampled, flags string) {
		// "\x00" stands for an absent header.
		var r remote
		if !parseB3Multi(traceID, spanID, parent, sampled, flags, parent != "\x00", sampled != "\x00", flags != "\x00", &r) {
			return
		}
		e := Extracted{SpanContext: r.spanContext(), Debug: r.debug}
		if r.width64 {
			e.width64 = Set(B3Multi)
		}
		h := http.Header{}
		injectB3Multi(h, e.SpanContext, &e, true)
		var hv headerValues
		hv.scan(h, Set(B3Multi))
		var r2 remote
		if !extractB3Multi(&hv, &r2) {
			t.Fatalf("%v does not parse", h)
		}
		r.deferred, r2.deferred = false, false
		if r2 != r {
			t.Fatalf("%v: got %+v; want %+v", h, r2, r)
		}
	})
}
