package propagators

import (
	"fmt"
	"testing"
)

func TestParseExtract(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"", "[tracecontext baggage b3 b3multi jaeger xray]", ""},
		{"none", "[]", ""},
		{"b3, tracecontext", "[b3 tracecontext]", ""},
		{"XRay,jaeger,xray", "[xray jaeger]", ""},
		{"tracecontext,zipkin", "", `unknown propagator "zipkin" (want tracecontext, baggage, b3, b3multi, jaeger, xray or none)`},
		{"tracecontext,,b3", "", `unknown propagator "" (want tracecontext, baggage, b3, b3multi, jaeger, xray or none)`},
		{"none,b3", "", `propagator "none" cannot be combined with other propagators`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseExtract(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got error %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("got %s; want %s", s, tc.want)
			}
		})
	}
}

func TestParseInject(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"", "preserve,tracecontext", ""},
		{"preserve", "preserve", ""},
		{"none", "none", ""},
		{"tracecontext,preserve", "preserve,tracecontext", ""},
		{"xray, b3multi,B3", "b3,b3multi,xray", ""},
		{"w3c", "", `unknown propagator "w3c" (want tracecontext, baggage, b3, b3multi, jaeger, xray, preserve or none)`},
		{"none,preserve", "", `propagator "none" cannot be combined with other propagators`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseInject(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got error %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := got.String(); s != tc.want {
				t.Errorf("got %q; want %q", s, tc.want)
			}
			if again, err := ParseInject(got.String()); err != nil || again != got {
				t.Errorf("round trip: got %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestFormat_String(t *testing.T) {
	for _, f := range defaultExtract {
		got, ok := parseName(f.String())
		if !ok || got != f {
			t.Errorf("parseName(%q) = %v, %v; want %v", f.String(), got, ok, f)
		}
	}
	if got := Format(0x80).String(); got != "Format(0x80)" {
		t.Errorf("got %q", got)
	}
}

func TestNew_IgnoresUnknownAndRepeatedFormats(t *testing.T) {
	p := New([]Format{B3, 0, Format(0x80), B3, TraceContext | B3, Jaeger}, InjectSpec{})
	if got, want := fmt.Sprint(p.extract), "[b3 jaeger]"; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	q := p.WithInject(DefaultInject)
	if q == p || q.inject != DefaultInject || p.inject != (InjectSpec{}) {
		t.Errorf("WithInject: got %+v from %+v", q.inject, p.inject)
	}
}
