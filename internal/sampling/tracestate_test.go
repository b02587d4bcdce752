package sampling

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func mustTraceState(t testing.TB, s string) trace.TraceState {
	t.Helper()
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		t.Fatalf("ParseTraceState(%q): %v", s, err)
	}
	return ts
}

func TestOTWithThreshold(t *testing.T) {
	for _, tc := range []struct {
		name, in, th, want string
	}{
		{"set on empty", "", "th:8", "th:8"},
		{"replace", "th:c", "th:8", "th:8"},
		{"keep rv", "rv:0123456789abcd", "th:8", "th:8;rv:0123456789abcd"},
		{"replace in the middle", "p:8;th:c;r:62", "th:0", "th:0;p:8;r:62"},
		{"erase", "th:c;rv:0123456789abcd", "", "rv:0123456789abcd"},
		{"erase only", "th:c", "", ""},
		{"key with th prefix kept", "thx:1", "th:8", "th:8;thx:1"},
		{"empty members kept", "a:1;;b:2;", "th:8", "th:8;a:1;;b:2;"},
		{"malformed members kept", "0   ;x", "th:8", "th:8;0   ;x"},
		{"erase first", "th:c;a:1", "", "a:1"},
		{"erase last", "a:1;th:c", "", "a:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := otWithThreshold(tc.in, tc.th); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestWithThreshold_KeepsOtherMembers(t *testing.T) {
	root := mustTraceState(t, "ot=th:8")
	for _, tc := range []struct {
		name, parent, th, want string
	}{
		{"no parent state uses the prebuilt one", "", "th:8", "ot=th:8"},
		{"adds ot first", "vendor=a,other=b", "th:8", "ot=th:8,vendor=a,other=b"},
		{"moves updated ot first", "vendor=a,ot=th:c;rv:0123456789abcd", "th:8", "ot=th:8;rv:0123456789abcd,vendor=a"},
		{"same value untouched", "vendor=a,ot=th:8", "th:8", "vendor=a,ot=th:8"},
		{"erase keeps rv", "vendor=a,ot=th:c;rv:0123456789abcd", "", "ot=rv:0123456789abcd,vendor=a"},
		{"erase removes empty ot", "vendor=a,ot=th:c", "", "vendor=a"},
		{"erase without th untouched", "vendor=a,ot=rv:0123456789abcd", "", "vendor=a,ot=rv:0123456789abcd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onEmpty := root
			if tc.th == "" {
				onEmpty = trace.TraceState{}
			}
			got := withThreshold(mustTraceState(t, tc.parent), tc.th, onEmpty).String()
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestCheckedParentState_ErasesInconsistentThreshold(t *testing.T) {
	hi := trace.TraceID{8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	lo := trace.TraceID{0: 0xff}
	for _, tc := range []struct {
		name, parent string
		id           trace.TraceID
		want         string
	}{
		{"consistent kept", "ot=th:8,v=1", hi, "ot=th:8,v=1"},
		{"inconsistent erased", "ot=th:8,v=1", lo, "v=1"},
		{"rv consistent kept", "ot=th:8;rv:90000000000000", lo, "ot=th:8;rv:90000000000000"},
		{"rv inconsistent erased", "ot=th:8;rv:70000000000000", hi, "ot=rv:70000000000000"},
		{"invalid th erased", "ot=th:xyz;rv:70000000000000", hi, "ot=rv:70000000000000"},
		{"no th untouched", "v=1", lo, "v=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkedParentState(mustTraceState(t, tc.parent), tc.id).String(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestWithThreshold_TooLongForTracestateErasesStaleThreshold(t *testing.T) {
	// The ot value may not exceed 256 characters: when the new th does not fit, it is not written, and
	// the old one must not stay behind.
	long := "k:" + strings.Repeat("a", 249)
	parent := mustTraceState(t, "v=1,ot=th:8;"+long)
	if got, want := withThreshold(parent, "th:aaab", trace.TraceState{}).String(), "ot="+long+",v=1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
