package propagators

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// baggageVectors follow https://www.w3.org/TR/baggage/#header-content. raw is the header Inject writes
// ("" = absent), members the decoded entries.
var baggageVectors = []struct {
	name    string
	in      []string
	raw     string
	members string
}{
	{"one member", []string{"userId=alice"}, "userId=alice", "userId=alice"},
	{"ows", []string{" userId = alice , serverNode=DF%2028 "}, " userId = alice , serverNode=DF%2028 ", "serverNode=DF 28,userId=alice"},
	{"properties", []string{"k=v;p1;p2=x"}, "k=v;p1;p2=x", "k=v"},
	{"empty value", []string{"k="}, "k=", "k="},
	{"percent-encoded utf-8", []string{"k=%E2%9C%93"}, "k=%E2%9C%93", "k=✓"},
	{"invalid utf-8 replaced", []string{"k=%FF"}, "k=%FF", "k=\uFFFD"},
	{"two header lines", []string{"a=1", "b=2"}, "a=1,b=2", "a=1,b=2"},
	{"duplicate key last wins", []string{"k=1,k=2"}, "k=1,k=2", "k=2"},
	{"invalid member dropped", []string{"a=1,b c=2,d=3"}, "a=1,d=3", "a=1,d=3"},
	{"no equals dropped", []string{"a=1,b"}, "a=1", "a=1"},
	{"quote in value dropped", []string{"a=1,b=\"x\""}, "a=1", "a=1"},
	{"bad percent escape dropped", []string{"a=%zz,b=1"}, "b=1", "b=1"},
	{"bad property dropped", []string{"a=1;p=\"q\",b=1"}, "b=1", "b=1"},
	{"all invalid", []string{"a b=1"}, "", ""},
	{"180 members", []string{bagMembers(180)}, bagMembers(180), ""},
	{"181 members cut to 180", []string{bagMembers(181)}, bagMembers(180), ""},
	{"over 8192 bytes cut", []string{"a=" + strings.Repeat("x", 8000) + ",b=" + strings.Repeat("y", 500)}, "a=" + strings.Repeat("x", 8000), ""},
}

func bagMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "k%d=v", i)
	}
	return b.String()
}

func TestBaggage_SpecVectors(t *testing.T) {
	for _, tc := range baggageVectors {
		t.Run(tc.name, func(t *testing.T) {
			p := New([]Format{Baggage}, InjectSpec{Formats: Set(Baggage)})
			e := p.Extract(http.Header{hdrBaggage: tc.in})
			if tc.members != "" {
				if got := viewOf(e).Baggage; got != tc.members {
					t.Errorf("members: got %q; want %q", got, tc.members)
				}
			}
			if got, want := e.Present.Has(Baggage), tc.raw != ""; got != want {
				t.Errorf("Present.Has(Baggage): got %v; want %v", got, want)
			}
			out := http.Header{}
			p.Inject(out, childOf(randContext(fixedRand(), 0)), &e)
			if got := strings.Join(out[hdrBaggage], ","); got != tc.raw {
				t.Errorf("header: got %q; want %q", got, tc.raw)
			}
		})
	}
}

func TestBaggage_Accessors(t *testing.T) {
	e := extractOnly(http.Header{hdrBaggage: {"a=1,b=%20x"}, "Uberctx-C": {"3"}, "Uberctx-A": {"jaeger"}}, Baggage, Jaeger)
	if got := e.BaggageLen(); got != 3 {
		t.Errorf("BaggageLen: got %d; want 3", got)
	}
	for key, want := range map[string]string{"a": "1", "b": " x", "c": "3"} {
		if got, ok := e.BaggageMember(key); !ok || got != want {
			t.Errorf("BaggageMember(%q): got %q, %v; want %q", key, got, ok, want)
		}
	}
	if _, ok := e.BaggageMember("z"); ok {
		t.Errorf("BaggageMember(z) found")
	}
	// jaeger first in the extraction order: its value wins.
	e = extractOnly(http.Header{hdrBaggage: {"a=1"}, "Uberctx-A": {"jaeger"}}, Jaeger, Baggage)
	if got, _ := e.BaggageMember("a"); got != "jaeger" {
		t.Errorf("jaeger first: got %q; want %q", got, "jaeger")
	}
}

func TestUberctx_Translation(t *testing.T) {
	cases := []struct {
		name   string
		in     http.Header
		inject InjectSpec
		want   string
	}{
		{"uberctx to w3c baggage", http.Header{"Uberctx-User-Id": {"alice%20b"}, "Uberctx-Tier": {"gold"}},
			InjectSpec{Formats: Set(TraceContext)}, "Baggage: tier=gold,user-id=alice%20b\n"},
		{"w3c baggage to uberctx", http.Header{hdrBaggage: {"userId=alice%20b;prop,tier=gold"}},
			InjectSpec{Formats: Set(Jaeger)}, "Uberctx-Tier: gold\nUberctx-Userid: alice+b\n"},
		{"uberctx preserved", http.Header{"uberctx-k": {"v"}},
			InjectSpec{Preserve: true}, "Uberctx-K: v\n"},
		{"both merged into w3c", http.Header{hdrBaggage: {"a=1"}, "Uberctx-B": {"2"}},
			InjectSpec{Formats: Set(Baggage)}, "Baggage: a=1,b=2\n"},
		{"dropped when no baggage format injected", http.Header{hdrBaggage: {"a=1"}, "Uberctx-B": {"2"}},
			InjectSpec{Formats: Set(B3)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New(defaultExtract, tc.inject)
			e := p.Extract(tc.in)
			p.Inject(tc.in, randContext(fixedRand(), 0), &e)
			delete(tc.in, hdrTraceparent)
			delete(tc.in, hdrB3)
			delete(tc.in, hdrUberTraceID)
			if got := headerString(tc.in); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestUberctx_LimitsApplyToW3C(t *testing.T) {
	h := http.Header{}
	for i := range 200 {
		h[fmt.Sprintf("Uberctx-K%03d", i)] = []string{"v"}
	}
	p := New(defaultExtract, InjectSpec{Formats: Set(Baggage)})
	e := p.Extract(h)
	out := http.Header{}
	p.Inject(out, randContext(fixedRand(), 0), &e)
	if got := strings.Count(out.Get(hdrBaggage), ",") + 1; got != bagMaxMembers {
		t.Errorf("got %d members; want %d", got, bagMaxMembers)
	}
}

// FuzzBaggage: no panic; a parsed baggage value is within the limits, re-parses to itself, and the members
// re-encoded (the translation path) parse to the same members.
func FuzzBaggage(f *testing.F) {
	for _, tc := range baggageVectors {
		f.Add(strings.Join(tc.in, ","))
	}
	f.Fuzz(func(t *testing.T, v string) {
		raw, ok := parseBaggage(v)
		if !ok {
			return
		}
		if len(raw) > bagMaxBytes {
			t.Fatalf("%q: %d bytes", raw, len(raw))
		}
		raw2, ok := parseBaggage(raw)
		if !ok || raw2 != raw {
			t.Fatalf("%q -> %q -> %q", v, raw, raw2)
		}
		e := Extracted{baggage: raw, uberctx: []bagMember{{key: "zz-fuzz", value: "x y"}}}
		re := e.w3cBaggage()
		e2 := Extracted{baggage: re}
		if _, ok := parseBaggage(re); !ok {
			t.Fatalf("%q re-encoded %q invalid", raw, re)
		}
		want, got := fmt.Sprint(e.baggageMembers()), fmt.Sprint(e2.baggageMembers())
		if len(re) < bagMaxBytes-300 && len(e.baggageMembers()) < bagMaxMembers && got != want {
			t.Fatalf("%q re-encoded %q: got %s; want %s", raw, re, got, want)
		}
	})
}
