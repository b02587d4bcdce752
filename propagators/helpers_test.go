package propagators

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// Ids used by the spec vector tables.
const (
	tidHex   = "4bf92f3577b34da6a3ce929d0e0e4736"
	sidHex   = "00f067aa0ba902b7"
	tid64Hex = "a3ce929d0e0e4736"
	tidPad   = "0000000000000000" + tid64Hex
)

// view is the comparable summary of an Extracted the tables check.
type view struct {
	Format     string
	Present    string
	TraceID    string
	SpanID     string
	Flags      byte
	Debug      bool
	Deferred   bool
	RootOnly   bool
	Tracestate string // raw tracestate carried
	OTelTS     string // SpanContext.TraceState()
	Others     string // tid-sid-flags of Others, space separated
	Width64    string
	XRayExtra  string
	Baggage    string // sorted k=v members, comma separated
}

func viewOf(e Extracted) view {
	v := view{
		Debug: e.Debug, Deferred: e.Deferred, RootOnly: e.RootOnly,
		Tracestate: e.tracestate, XRayExtra: e.xrayExtra,
	}
	if e.Format != 0 {
		v.Format = e.Format.String()
		v.TraceID = e.SpanContext.TraceID().String()
		v.SpanID = e.SpanContext.SpanID().String()
		v.Flags = byte(e.SpanContext.TraceFlags())
		v.OTelTS = e.SpanContext.TraceState().String()
		if !e.SpanContext.IsRemote() {
			v.Format += " (not remote!)"
		}
	}
	if e.Present != 0 {
		v.Present = e.Present.String()
	}
	if e.width64 != 0 {
		v.Width64 = e.width64.String()
	}
	var others []string
	for _, o := range e.Others {
		others = append(others, fmt.Sprintf("%s-%s-%02x", o.TraceID(), o.SpanID(), byte(o.TraceFlags())))
	}
	v.Others = strings.Join(others, " ")
	var bag []string
	for _, m := range e.baggageMembers() {
		bag = append(bag, m.key+"="+m.value)
	}
	sort.Strings(bag)
	v.Baggage = strings.Join(bag, ",")
	return v
}

// checkView fails t with a got/want diff of the fields that differ.
func checkView(t *testing.T, got, want view) {
	t.Helper()
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func extractOnly(h http.Header, formats ...Format) Extracted {
	return New(formats, InjectSpec{}).Extract(h)
}

// randContext returns a random valid span context; with p64 probability its trace id has a zero high half.
func randContext(r *rand.Rand, p64 float64) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() {
		for i := range tid {
			tid[i] = byte(r.UintN(256))
		}
		if r.Float64() < p64 {
			clear(tid[:8])
		}
	}
	for !sid.IsValid() {
		for i := range sid {
			sid[i] = byte(r.UintN(256))
		}
	}
	var flags trace.TraceFlags
	if r.IntN(2) == 1 {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
}

// childOf returns a child span context of parent (same trace, new span id, same flags and tracestate).
func childOf(parent trace.SpanContext) trace.SpanContext {
	sid := trace.SpanID{0xc0, 0xff, 0xee, 0, 0, 0, 0, 1}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: parent.TraceID(), SpanID: sid, TraceFlags: parent.TraceFlags(), TraceState: parent.TraceState(),
	})
}

// headerString renders h sorted, one "Key: v1 | v2" per line, for got/want diffs.
func headerString(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(h[k], " | "))
	}
	return b.String()
}

// fixedRand returns a fixed-seed source for tests that need one random context.
func fixedRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
