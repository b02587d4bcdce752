package propagators

import (
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// The cache of one-member tracestate strings gives what TraceState.String gives, whichever tracestates come
// in turn, and is used for a repeated one.
func TestTracestateCache(t *testing.T) {
	var c tsCache
	for _, v := range []string{"ot=th:8", "ot=th:8", "ot=th:4", "vendor=ot", "ot=th:8", "a=1,ot=th:8", "ot=th:8,a=1", "a=1", "ot=th:8"} {
		ts, err := trace.ParseTraceState(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.string(ts); got != ts.String() {
			t.Errorf("%q: got %q; want %q", v, got, ts.String())
		}
	}
	ts, _ := trace.ParseTraceState("ot=th:8")
	c.string(ts)
	if n := testing.AllocsPerRun(100, func() { c.string(ts) }); n != 0 {
		t.Errorf("a repeated tracestate cost %v allocations; want 0", n)
	}
	if got := (*tsCache)(nil).string(ts); got != "ot=th:8" {
		t.Errorf("without a cache: got %q", got)
	}
}
