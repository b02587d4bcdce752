package propagators

import (
	"net/http"
	"testing"
)

const xrayRoot = "1-4bf92f35-77b34da6a3ce929d0e0e4736" // the 128-bit tidHex

// xrayVectors follow https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader.
var xrayVectors = []struct {
	name string
	in   string
	want view
}{
	{"sampled", "Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=1", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"not sampled", "Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=0", view{TraceID: tidHex, SpanID: sidHex}},
	{"sampling requested", "Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=?", view{TraceID: tidHex, SpanID: sidHex, Deferred: true}},
	{"no sampled field", "Root=" + xrayRoot + ";Parent=" + sidHex, view{TraceID: tidHex, SpanID: sidHex, Deferred: true}},
	{"fields in any order", "Sampled=1;Parent=" + sidHex + ";Root=" + xrayRoot, view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"spaces and trailing separator", "Root=" + xrayRoot + "; Parent=" + sidHex + "; Sampled=1;", view{TraceID: tidHex, SpanID: sidHex, Flags: 1}},
	{"extra fields kept", "Self=1-67891234-12456789abcdef012345678;Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=1;Lineage=a87bd80c:1|68fd508a:5",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1, XRayExtra: "Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1|68fd508a:5"}},
	{"load balancer root only", "Root=" + xrayRoot, view{TraceID: tidHex, SpanID: "0000000000000000", Deferred: true, RootOnly: true}},
	{"root only sampled", "Root=" + xrayRoot + ";Sampled=1", view{TraceID: tidHex, SpanID: "0000000000000000", Flags: 1, RootOnly: true}},
	{"no root", "Parent=" + sidHex + ";Sampled=1", view{}},
	{"bad root version", "Root=2-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + sidHex, view{}},
	{"short root", "Root=1-4bf92f35-77b34da6a3ce929d0e0e473;Parent=" + sidHex, view{}},
	{"root missing dash", "Root=1-4bf92f35077b34da6a3ce929d0e0e4736;Parent=" + sidHex, view{}},
	{"upper-case root", "Root=1-4BF92F35-77b34da6a3ce929d0e0e4736;Parent=" + sidHex, view{}},
	{"zero root", "Root=1-00000000-000000000000000000000000;Parent=" + sidHex, view{}},
	{"bad parent", "Root=" + xrayRoot + ";Parent=xyz", view{}},
	{"zero parent", "Root=" + xrayRoot + ";Parent=0000000000000000", view{}},
	{"bad sampled", "Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=2", view{}},
	{"duplicate root", "Root=" + xrayRoot + ";Root=" + xrayRoot, view{}},
	{"field without =", "Root=" + xrayRoot + ";Parent", view{}},
	{"prefixed key is an extra", "Root=" + xrayRoot + ";Parentx=1;Parent=" + sidHex + ";Sampled=1",
		view{TraceID: tidHex, SpanID: sidHex, Flags: 1, XRayExtra: "Parentx=1"}},
	{"empty", "", view{}},
}

func TestXRay_SpecVectors(t *testing.T) {
	for _, tc := range xrayVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.TraceID != "" {
				want.Format, want.Present = "xray", "xray"
			}
			checkView(t, viewOf(extractOnly(http.Header{hdrXRay: {tc.in}}, XRay)), want)
		})
	}
}

func TestXRay_RootOnly_ParentForSpan(t *testing.T) {
	e := extractOnly(http.Header{hdrXRay: {"Root=" + xrayRoot}}, XRay)
	if e.SpanContext.IsValid() {
		t.Errorf("SpanContext %v is valid; want trace id only", e.SpanContext)
	}
	p := e.ParentForSpan()
	if got, want := p.TraceID().String()+"/"+p.SpanID().String()+"/"+boolStr(p.IsRemote()),
		tidHex+"/a3ce929d0e0e4736/remote"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	// A root whose low 64 bits are zero takes the high 64 bits.
	e = extractOnly(http.Header{hdrXRay: {"Root=1-4bf92f35-77b34da60000000000000000"}}, XRay)
	if got, want := e.ParentForSpan().SpanID().String(), "4bf92f3577b34da6"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func boolStr(remote bool) string {
	if remote {
		return "remote"
	}
	return "local"
}

func TestInjectXRay_ExtrasWrittenBack(t *testing.T) {
	p := New([]Format{XRay}, InjectSpec{Preserve: true})
	h := http.Header{hdrXRay: {"Self=1-67891234-12456789abcdef012345678;Root=" + xrayRoot + ";Sampled=?;Lineage=a87bd80c:1"}}
	e := p.Extract(h)
	parent := e.ParentForSpan()
	p.Inject(h, childOf(parent.WithTraceFlags(parent.TraceFlags()|1)), &e)
	want := "Root=" + xrayRoot + ";Parent=c0ffee0000000001;Sampled=1;Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1"
	if got := h[hdrXRay]; !equalStrings(got, []string{want}) {
		t.Errorf("got %q; want %q", got, want)
	}
}

// FuzzXRay: no panic; a parsed X-Amzn-Trace-Id re-injects and re-parses to the same context and extras.
func FuzzXRay(f *testing.F) {
	for _, tc := range xrayVectors {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var r remote
		extra, ok := parseXRay(v, &r)
		if !ok {
			return
		}
		sc := r.spanContext()
		if r.rootOnly {
			sc = rootOnlyParent(sc)
		}
		e := Extracted{SpanContext: sc, xrayExtra: extra}
		h := http.Header{}
		injectXRay(h, sc, &e, true)
		var r2 remote
		extra2, ok := parseXRay(h[hdrXRay][0], &r2)
		if !ok {
			t.Fatalf("%q -> %q does not parse", v, h[hdrXRay][0])
		}
		if r2.tid != r.tid || r2.sid != sc.SpanID() || r2.sampled != r.sampled || extra2 != extra {
			t.Fatalf("%q -> %q: got %+v %q; want %+v %q", v, h[hdrXRay][0], r2, extra2, r, extra)
		}
	})
}
