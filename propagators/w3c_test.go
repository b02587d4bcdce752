package propagators

import (
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// traceparentVectors follow https://www.w3.org/TR/trace-context-2/#traceparent-header and the cases of the
// W3C trace-context test suite (test/test.py).
var traceparentVectors = []struct {
	name  string
	value string
	ok    bool
	flags byte
}{
	{"sampled", "00-" + tidHex + "-" + sidHex + "-01", true, 0x01},
	{"not sampled", "00-" + tidHex + "-" + sidHex + "-00", true, 0x00},
	{"random and sampled", "00-" + tidHex + "-" + sidHex + "-03", true, 0x03},
	{"reserved flag bits ignored", "00-" + tidHex + "-" + sidHex + "-09", true, 0x01},
	{"all flag bits", "00-" + tidHex + "-" + sidHex + "-ff", true, 0x03},
	{"future version same length", "01-" + tidHex + "-" + sidHex + "-01", true, 0x01},
	{"future version extra fields", "cc-" + tidHex + "-" + sidHex + "-01-what-the-future-will-be-like", true, 0x01},
	{"future version extra dash only", "01-" + tidHex + "-" + sidHex + "-01-", true, 0x01},
	{"version ff", "ff-" + tidHex + "-" + sidHex + "-01", false, 0},
	{"version 00 trailing field", "00-" + tidHex + "-" + sidHex + "-01-extra", false, 0},
	{"version 00 trailing char", "00-" + tidHex + "-" + sidHex + "-01x", false, 0},
	{"future version trailing char", "01-" + tidHex + "-" + sidHex + "-01x", false, 0},
	{"future version dot instead of dash", "cc-" + tidHex + "-" + sidHex + "-01.what-the-future-will-not-be-like", false, 0},
	{"upper-case version", "0A-" + tidHex + "-" + sidHex + "-01", false, 0},
	{"upper-case trace id", "00-" + strings.ToUpper(tidHex) + "-" + sidHex + "-01", false, 0},
	{"upper-case span id", "00-" + tidHex + "-00F067AA0BA902B7-01", false, 0},
	{"upper-case flags", "00-" + tidHex + "-" + sidHex + "-0A", false, 0},
	{"all-zero trace id", "00-00000000000000000000000000000000-" + sidHex + "-01", false, 0},
	{"all-zero span id", "00-" + tidHex + "-0000000000000000-01", false, 0},
	{"short trace id", "00-" + tidHex[1:] + "-" + sidHex + "-01", false, 0},
	{"long trace id", "00-" + tidHex + "0-" + sidHex + "-01", false, 0},
	{"short span id", "00-" + tidHex + "-" + sidHex[1:] + "-01", false, 0},
	{"long span id", "00-" + tidHex + "-" + sidHex + "0-01", false, 0},
	{"short version", "0-" + tidHex + "-" + sidHex + "-01", false, 0},
	{"one char flags", "00-" + tidHex + "-" + sidHex + "-1", false, 0},
	{"illegal flags chars", "00-" + tidHex + "-" + sidHex + "-.0", false, 0},
	{"illegal flags hex", "00-" + tidHex + "-" + sidHex + "-0g", false, 0},
	{"illegal trace id char", "00-4bf92f3577b34da6a3ce929d0e0e473.-" + sidHex + "-01", false, 0},
	{"wrong delimiter", "00_" + tidHex + "-" + sidHex + "-01", false, 0},
	{"future version wrong delimiter", "01-" + tidHex + "_" + sidHex + "-01", false, 0},
	{"empty", "", false, 0},
	{"ows around value", " \t00-" + tidHex + "-" + sidHex + "-01 \t", true, 0x01},
}

func TestTraceparent_SpecVectors(t *testing.T) {
	for _, tc := range traceparentVectors {
		t.Run(tc.name, func(t *testing.T) {
			e := extractOnly(http.Header{hdrTraceparent: {tc.value}}, TraceContext)
			var want view
			if tc.ok {
				want = view{Format: "tracecontext", Present: "tracecontext", TraceID: tidHex, SpanID: sidHex, Flags: tc.flags}
			}
			checkView(t, viewOf(e), want)
		})
	}
}

// TestTraceparent_HeaderNameCase: header names are case-insensitive (W3C test suite test_traceparent_header_name).
func TestTraceparent_HeaderNameCase(t *testing.T) {
	for _, name := range []string{"traceparent", "TRACEPARENT", "TraceParent"} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{name: {"00-" + tidHex + "-" + sidHex + "-01"}, "TraceState": {"foo=1"}}
			want := view{Format: "tracecontext", Present: "tracecontext", TraceID: tidHex, SpanID: sidHex, Flags: 1,
				Tracestate: "foo=1", OTelTS: "foo=1"}
			checkView(t, viewOf(extractOnly(h, TraceContext)), want)
		})
	}
}

func TestTraceparent_TwoHeaders_Invalid(t *testing.T) {
	tp := "00-" + tidHex + "-" + sidHex + "-01"
	e := extractOnly(http.Header{hdrTraceparent: {tp, tp}}, TraceContext)
	checkView(t, viewOf(e), view{})
}

// tracestateVectors follow https://www.w3.org/TR/trace-context-2/#tracestate-header. raw is what is carried
// ("" = dropped), otel what OpenTelemetry's TraceState holds.
var tracestateVectors = []struct {
	name   string
	values []string
	raw    string
	otel   string
}{
	{"one member", []string{"foo=1"}, "foo=1", "foo=1"},
	{"two members", []string{"foo=1,bar=2"}, "foo=1,bar=2", "foo=1,bar=2"},
	{"ows", []string{"foo=1 ,\t bar=2"}, "foo=1 ,\t bar=2", "foo=1,bar=2"},
	{"empty members", []string{"foo=1,, ,bar=2,"}, "foo=1,, ,bar=2,", "foo=1,bar=2"},
	{"two header lines", []string{"foo=1", "bar=2"}, "foo=1,bar=2", "foo=1,bar=2"},
	{"multi-tenant key", []string{"tenant@vendor=x"}, "tenant@vendor=x", "tenant@vendor=x"},
	// Level 2 key grammar; OpenTelemetry-Go's Level 1 grammar rejects these keys, so its TraceState holds only
	// the others while the raw value is carried whole.
	{"L2 key starting with digit", []string{"1vendor=x,foo=1"}, "1vendor=x,foo=1", "foo=1"},
	{"L2 key with two @", []string{"a@b@c=x"}, "a@b@c=x", ""},
	{"L2 key with long system id", []string{"t@abcdefghijklmnop=x"}, "t@abcdefghijklmnop=x", ""},
	{"value with inner space", []string{"foo=a b"}, "foo=a b", "foo=a b"},
	{"key of 256 chars", []string{"k" + strings.Repeat("a", 255) + "=1"}, "k" + strings.Repeat("a", 255) + "=1", "k" + strings.Repeat("a", 255) + "=1"},
	{"value of 256 chars", []string{"foo=" + strings.Repeat("v", 256)}, "foo=" + strings.Repeat("v", 256), "foo=" + strings.Repeat("v", 256)},
	{"key of 257 chars", []string{"k" + strings.Repeat("a", 256) + "=1"}, "", ""},
	{"value of 257 chars", []string{"foo=" + strings.Repeat("v", 257)}, "", ""},
	{"upper-case key", []string{"FOO=1"}, "", ""},
	{"key starting with _", []string{"_foo=1"}, "", ""},
	{"empty value", []string{"foo="}, "", ""},
	{"no equals", []string{"foo"}, "", ""},
	{"empty key", []string{"=1"}, "", ""},
	{"equals in value", []string{"foo=a=b"}, "", ""},
	{"comma-free invalid char in value", []string{"foo=a\x7fb"}, "", ""},
	{"duplicate key", []string{"foo=1,bar=2,foo=3"}, "", ""},
	{"only empty members", []string{" , "}, "", ""},
	{"32 members", []string{members(32)}, members(32), members(32)},
	// More than 32 list-members: the list is truncated to its first 32, removing entries from the end as
	// Level 2 §tracestate-limits prescribes for truncation (the W3C test suite's
	// test_tracestate_member_count_limit discards such a list instead; both keep the traceparent).
	{"33 members truncated", []string{members(33)}, members(32), members(32)},
	{"33 members with ows truncated", []string{members(32) + " , m32=x"}, members(32), members(32)},
}

func members(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("m" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "=v")
	}
	return b.String()
}

func TestTracestate_SpecVectors(t *testing.T) {
	for _, tc := range tracestateVectors {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}, hdrTracestate: tc.values}
			e := extractOnly(h, TraceContext)
			want := view{Format: "tracecontext", Present: "tracecontext", TraceID: tidHex, SpanID: sidHex, Flags: 1,
				Tracestate: tc.raw, OTelTS: tc.otel}
			checkView(t, viewOf(e), want)
		})
	}
}

func TestTracestate_WithoutValidTraceparent_Ignored(t *testing.T) {
	for name, h := range map[string]http.Header{
		"no traceparent":      {hdrTracestate: {"foo=1"}},
		"invalid traceparent": {hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-1"}, hdrTracestate: {"foo=1"}},
	} {
		t.Run(name, func(t *testing.T) {
			checkView(t, viewOf(extractOnly(h, TraceContext)), view{})
		})
	}
}

func TestInjectTraceparent_RandomFlagPreservedOnW3CHop(t *testing.T) {
	p := New([]Format{TraceContext}, DefaultInject)
	e := p.Extract(http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-03"}})
	// The SDK's child may or may not carry the random flag; the hop keeps it as received.
	child := childOf(e.SpanContext).WithTraceFlags(trace.FlagsSampled)
	out := http.Header{}
	p.Inject(out, child, &e)
	if got, want := out[hdrTraceparent], []string{"00-" + tidHex + "-c0ffee0000000001-03"}; !equalStrings(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestInjectTracestate(t *testing.T) {
	tp := "00-" + tidHex + "-" + sidHex + "-01"
	cases := []struct {
		name   string
		in     string
		modify func(trace.TraceState) trace.TraceState
		want   string
	}{
		{"unchanged passes raw bytes", "foo=1 ,, bar=2", nil, "foo=1 ,, bar=2"},
		{"unchanged with L2-only keys", "1vendor=x,foo=1", nil, "1vendor=x,foo=1"},
		{"sampler inserts ot", "foo=1,bar=2", func(ts trace.TraceState) trace.TraceState {
			ts, _ = ts.Insert("ot", "th:8")
			return ts
		}, "ot=th:8,foo=1,bar=2"},
		{"sampler inserts, L2-only member kept after", "1vendor=x,foo=1", func(ts trace.TraceState) trace.TraceState {
			ts, _ = ts.Insert("ot", "th:8")
			return ts
		}, "ot=th:8,foo=1,1vendor=x"},
		{"sampler deletes a member", "foo=1,bar=2", func(ts trace.TraceState) trace.TraceState {
			return ts.Delete("bar")
		}, "foo=1"},
		{"32 members plus insert stays at 32", members(32), func(ts trace.TraceState) trace.TraceState {
			ts, _ = ts.Insert("ot", "th:8")
			return ts
		}, "ot=th:8," + members(31)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New([]Format{TraceContext}, DefaultInject)
			e := p.Extract(http.Header{hdrTraceparent: {tp}, hdrTracestate: {tc.in}})
			child := childOf(e.SpanContext)
			if tc.modify != nil {
				child = child.WithTraceState(tc.modify(child.TraceState()))
			}
			out := http.Header{}
			p.Inject(out, child, &e)
			if got := strings.Join(out[hdrTracestate], ","); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// FuzzTraceparent: no panic; a parsed traceparent re-injects and re-parses to the same context.
func FuzzTraceparent(f *testing.F) {
	for _, tc := range traceparentVectors {
		f.Add(tc.value)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tid, sid, flags, ok := parseTraceparent(v)
		if !ok {
			return
		}
		out := formatTraceparent(tid, sid, flags)
		tid2, sid2, flags2, ok2 := parseTraceparent(out)
		if !ok2 || tid2 != tid || sid2 != sid || flags2 != flags {
			t.Fatalf("%q -> %q -> %v %v %v %v", v, out, tid2, sid2, flags2, ok2)
		}
	})
}

// FuzzTracestate: no panic; a valid tracestate re-parses to itself, has at most 32 members, and what OTel
// holds of it is a subset in order.
func FuzzTracestate(f *testing.F) {
	for _, tc := range tracestateVectors {
		f.Add(strings.Join(tc.values, ","))
	}
	f.Fuzz(func(t *testing.T, v string) {
		raw, ok := parseTracestate(v)
		if !ok {
			return
		}
		raw2, ok2 := parseTracestate(raw)
		if !ok2 || raw2 != raw {
			t.Fatalf("%q -> %q -> %q %v", v, raw, raw2, ok2)
		}
		n := 0
		tracestateMembers(raw, func(k, v string) bool { n++; return true })
		if n > tsMaxMembers || n == 0 {
			t.Fatalf("%q: %d members", raw, n)
		}
		ts := otelTraceState(raw)
		if ts.Len() > n {
			t.Fatalf("%q: otel holds %d of %d", raw, ts.Len(), n)
		}
		merged := mergeTracestate(ts, ts, raw)
		if _, ok := parseTracestate(merged); !ok {
			t.Fatalf("%q: merged %q invalid", raw, merged)
		}
	})
}
