package propagators

// Differential tests against the reference implementations: OpenTelemetry-Go's propagation.TraceContext and
// propagation.Baggage, and contrib's b3, jaeger and aws/xray propagators. For many random contexts (fixed
// seed), what sidetrace injects the reference extracts to the same context, and what the reference injects
// sidetrace extracts to the same context. Random inputs stay in the subset both sides implement; where the
// reference departs from the spec, a named test below shows the spec-following behaviour.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const diffRounds = 2000

func newDiffRand() *rand.Rand { return rand.New(rand.NewPCG(2026, 11)) }

// ctxKey renders what both sides must agree on.
func ctxKey(sc trace.SpanContext) string {
	return fmt.Sprintf("%s-%s-%v", sc.TraceID(), sc.SpanID(), sc.IsSampled())
}

func TestDifferential_SpanContext(t *testing.T) {
	refs := []struct {
		format Format
		ref    propagation.TextMapPropagator
	}{
		{TraceContext, propagation.TraceContext{}},
		{B3, b3.New(b3.WithInjectEncoding(b3.B3SingleHeader))},
		{B3Multi, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader))},
		{Jaeger, jaeger.Jaeger{}},
		{XRay, xray.Propagator{}},
	}
	for _, r := range refs {
		t.Run(r.format.String(), func(t *testing.T) {
			rnd := newDiffRand()
			p := New([]Format{r.format}, InjectSpec{Formats: Set(r.format)})
			for i := range diffRounds {
				sc := randContext(rnd, 0.25)

				// sidetrace injects, the reference extracts. in says the trace id arrived 64 bits wide in this
				// format, so B3 and Jaeger write 16 digits when the high half is zero.
				h := http.Header{}
				p.Inject(h, sc, &Extracted{SpanContext: sc, width64: Set(r.format)})
				got := trace.SpanContextFromContext(r.ref.Extract(context.Background(), propagation.HeaderCarrier(h)))
				if ctxKey(got) != ctxKey(sc) {
					t.Fatalf("#%d sidetrace %v -> reference: got %s; want %s", i, h, ctxKey(got), ctxKey(sc))
				}

				// The reference injects, sidetrace extracts.
				h = http.Header{}
				r.ref.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
				e := p.Extract(h)
				if ctxKey(e.SpanContext) != ctxKey(sc) || e.Format != r.format || !e.SpanContext.IsRemote() {
					t.Fatalf("#%d reference %v -> sidetrace: got %s (%v); want %s", i, h, ctxKey(e.SpanContext), e.Format, ctxKey(sc))
				}
			}
		})
	}
}

// TestDifferential_TraceFlags: the random flag (Level 2) crosses both ways.
func TestDifferential_TraceFlags(t *testing.T) {
	rnd := newDiffRand()
	p := New([]Format{TraceContext}, InjectSpec{Formats: Set(TraceContext)})
	ref := propagation.TraceContext{}
	for i := range diffRounds {
		sc := randContext(rnd, 0)
		sc = sc.WithTraceFlags(sc.TraceFlags().WithRandom(rnd.IntN(2) == 0))
		h := http.Header{}
		p.Inject(h, sc, nil)
		if got := trace.SpanContextFromContext(ref.Extract(context.Background(), propagation.HeaderCarrier(h))); got.TraceFlags() != sc.TraceFlags() {
			t.Fatalf("#%d %v: reference got flags %v; want %v", i, h, got.TraceFlags(), sc.TraceFlags())
		}
		h = http.Header{}
		ref.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
		if got := p.Extract(h).SpanContext.TraceFlags(); got != sc.TraceFlags() {
			t.Fatalf("#%d %v: sidetrace got flags %v; want %v", i, h, got, sc.TraceFlags())
		}
	}
}

// TestDifferential_DebugAndDeferred: B3 and Jaeger sampling states survive sidetrace -> reference ->
// sidetrace, and reference -> sidetrace -> reference.
func TestDifferential_DebugAndDeferred(t *testing.T) {
	type state struct{ sampled, debug, deferred bool }
	cases := []struct {
		format Format
		ref    propagation.TextMapPropagator
		header func(tid, sid string, s state) http.Header
	}{
		{B3, b3.New(b3.WithInjectEncoding(b3.B3SingleHeader)), func(tid, sid string, s state) http.Header {
			v := tid + "-" + sid
			switch {
			case s.debug:
				v += "-d"
			case s.deferred:
			case s.sampled:
				v += "-1"
			default:
				v += "-0"
			}
			return http.Header{hdrB3: {v}}
		}},
		{B3Multi, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)), func(tid, sid string, s state) http.Header {
			h := http.Header{hdrB3TraceID: {tid}, hdrB3SpanID: {sid}}
			switch {
			case s.debug:
				h[hdrB3Flags] = []string{"1"}
			case s.deferred:
			case s.sampled:
				h[hdrB3Sampled] = []string{"1"}
			default:
				h[hdrB3Sampled] = []string{"0"}
			}
			return h
		}},
		{Jaeger, jaeger.Jaeger{}, func(tid, sid string, s state) http.Header {
			flags := "0"
			switch {
			case s.debug:
				flags = "3"
			case s.sampled:
				flags = "1"
			}
			return http.Header{hdrUberTraceID: {tid + ":" + sid + ":0:" + flags}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.format.String(), func(t *testing.T) {
			rnd := newDiffRand()
			p := New([]Format{tc.format}, InjectSpec{Preserve: true})
			for i := range diffRounds / 4 {
				sc := randContext(rnd, 0)
				s := state{sampled: rnd.IntN(2) == 0, debug: rnd.IntN(4) == 0}
				s.deferred = tc.format != Jaeger && !s.debug && rnd.IntN(4) == 0
				s.sampled = (s.sampled || s.debug) && !s.deferred
				in := tc.header(sc.TraceID().String(), sc.SpanID().String(), s)

				// reference -> sidetrace
				ctx := tc.ref.Extract(context.Background(), propagation.HeaderCarrier(in))
				refOut := http.Header{}
				tc.ref.Inject(ctx, propagation.HeaderCarrier(refOut))
				e := p.Extract(refOut)
				if got := (state{e.SpanContext.IsSampled(), e.Debug, e.Deferred}); got != s {
					t.Fatalf("#%d reference %v -> sidetrace: got %+v; want %+v", i, refOut, got, s)
				}

				// sidetrace -> reference -> reference's own injection equals its injection of the original.
				e = p.Extract(in)
				ours := http.Header{}
				p.Inject(ours, e.SpanContext, &e)
				back := http.Header{}
				tc.ref.Inject(tc.ref.Extract(context.Background(), propagation.HeaderCarrier(ours)), propagation.HeaderCarrier(back))
				if s.deferred {
					continue // sidetrace always writes its decision; the reference only re-sends deferral
				}
				if headerString(back) != headerString(refOut) {
					t.Fatalf("#%d sidetrace %v -> reference:\ngot\n%swant\n%s", i, ours, headerString(back), headerString(refOut))
				}
			}
		})
	}
}

// randTracestate returns a random tracestate in the subset OTel's Level 1 key grammar accepts.
func randTracestate(rnd *rand.Rand) trace.TraceState {
	const (
		lc   = "abcdefghijklmnopqrstuvwxyz"
		rest = lc + "0123456789_-*/"
	)
	word := func(first string, max int) string {
		b := []byte{first[rnd.IntN(len(first))]}
		for range rnd.IntN(max) {
			b = append(b, rest[rnd.IntN(len(rest))])
		}
		return string(b)
	}
	var ts trace.TraceState
	for range rnd.IntN(tsMaxMembers + 1) {
		key := word(lc, 12)
		if rnd.IntN(4) == 0 {
			key = word(lc+"0123456789", 8) + "@" + word(lc, 13)
		}
		var v []byte
		for n := 1 + rnd.IntN(20); len(v) < n; {
			c := byte(0x20 + rnd.IntN(0x5f))
			if c != ',' && c != '=' {
				v = append(v, c)
			}
		}
		if v[len(v)-1] == ' ' {
			v[len(v)-1] = 'x'
		}
		if t, err := ts.Insert(key, string(v)); err == nil {
			ts = t
		}
	}
	return ts
}

func TestDifferential_Tracestate(t *testing.T) {
	rnd := newDiffRand()
	p := New([]Format{TraceContext}, InjectSpec{Formats: Set(TraceContext)})
	ref := propagation.TraceContext{}
	for i := range diffRounds {
		sc := randContext(rnd, 0).WithTraceState(randTracestate(rnd))
		h := http.Header{}
		p.Inject(h, sc, nil)
		got := trace.SpanContextFromContext(ref.Extract(context.Background(), propagation.HeaderCarrier(h)))
		if got.TraceState().String() != sc.TraceState().String() {
			t.Fatalf("#%d %v: reference got %q; want %q", i, h, got.TraceState(), sc.TraceState())
		}
		h = http.Header{}
		ref.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
		e := p.Extract(h)
		if e.SpanContext.TraceState().String() != sc.TraceState().String() || e.tracestate != sc.TraceState().String() {
			t.Fatalf("#%d %v: sidetrace got %q (raw %q); want %q", i, h, e.SpanContext.TraceState(), e.tracestate, sc.TraceState())
		}
	}
}

// randBaggage returns random members within OTel's limits (64 members, 8192 bytes), keys tokens, values any
// UTF-8.
func randBaggage(rnd *rand.Rand) []bagMember {
	const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	valueRunes := []rune("abcXYZ019 %,;=\"\\+/?&é✓🙂\t")
	var ms []bagMember
	for range rnd.IntN(20) {
		k := make([]byte, 1+rnd.IntN(10))
		for j := range k {
			k[j] = tchar[rnd.IntN(len(tchar))]
		}
		v := make([]rune, rnd.IntN(15))
		for j := range v {
			v[j] = valueRunes[rnd.IntN(len(valueRunes))]
		}
		ms = setMember(ms, bagMember{key: string(k), value: string(v)}, true)
	}
	return ms
}

func membersString(ms map[string]string) string {
	var s []string
	for k, v := range ms {
		s = append(s, fmt.Sprintf("%q=%q", k, v))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func TestDifferential_Baggage(t *testing.T) {
	rnd := newDiffRand()
	p := New([]Format{Baggage, Jaeger}, InjectSpec{Formats: Set(Baggage)})
	ref := propagation.Baggage{}
	for i := range diffRounds {
		ms := randBaggage(rnd)
		want := map[string]string{}
		var refMembers []baggage.Member
		for _, m := range ms {
			want[m.key] = m.value
			rm, err := baggage.NewMemberRaw(m.key, m.value)
			if err != nil {
				t.Fatal(err)
			}
			refMembers = append(refMembers, rm)
		}
		refBag, err := baggage.New(refMembers...)
		if err != nil {
			t.Fatal(err)
		}

		// sidetrace (translating members, e.g. from uberctx-*) injects, the reference extracts.
		h := http.Header{}
		p.Inject(h, randContext(rnd, 0), &Extracted{uberctx: ms})
		got := map[string]string{}
		for _, m := range baggage.FromContext(ref.Extract(context.Background(), propagation.HeaderCarrier(h))).Members() {
			got[m.Key()] = m.Value()
		}
		if membersString(got) != membersString(want) {
			t.Fatalf("#%d %v: reference got %s; want %s", i, h, membersString(got), membersString(want))
		}

		// The reference injects, sidetrace extracts.
		h = http.Header{}
		ref.Inject(baggage.ContextWithBaggage(context.Background(), refBag), propagation.HeaderCarrier(h))
		e := p.Extract(h)
		got = map[string]string{}
		for _, m := range e.baggageMembers() {
			got[m.key] = m.value
		}
		if membersString(got) != membersString(want) || e.BaggageLen() != len(want) {
			t.Fatalf("#%d %v: sidetrace got %s; want %s", i, h, membersString(got), membersString(want))
		}
	}
}

// The reference implementations predate or depart from the specs in these cases; sidetrace follows the spec.

// TestSpec_TracestateLevel2Keys: Trace Context Level 2 §key allows a key to start with a digit and to hold
// several "@" (key = ( lcalpha / DIGIT ) 0*255( keychar )); OpenTelemetry-Go's ParseTraceState implements
// Level 1 and rejects the whole header.
func TestSpec_TracestateLevel2Keys(t *testing.T) {
	const ts = "1vendor=x,a@b@c=y,foo=1"
	if _, err := trace.ParseTraceState(ts); err == nil {
		t.Log("OpenTelemetry-Go now accepts Level 2 keys; otelTraceState's fallback is no longer needed")
	}
	e := extractOnly(http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}, hdrTracestate: {ts}}, TraceContext)
	if e.tracestate != ts || e.SpanContext.TraceState().String() != "foo=1" {
		t.Errorf("got raw %q, otel %q; want raw %q, otel %q", e.tracestate, e.SpanContext.TraceState(), ts, "foo=1")
	}
}

// TestSpec_TraceparentReservedFlags: Level 2 §other-flags reserves the other trace-flags bits ("vendors MUST
// set those to zero"), it does not make a header carrying them invalid; OpenTelemetry-Go rejects a version 00
// header with reserved bits. sidetrace accepts it and drops the bits.
func TestSpec_TraceparentReservedFlags(t *testing.T) {
	h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-09"}}
	if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h))); sc.IsValid() {
		t.Log("OpenTelemetry-Go now accepts reserved flag bits")
	}
	if got := extractOnly(h, TraceContext).SpanContext; !got.IsValid() || got.TraceFlags() != trace.FlagsSampled {
		t.Errorf("got %v; want valid and flags 01", got)
	}
}

// TestSpec_XRayDeferredAndRootOnly: the X-Ray header's Sampled may be "?" or missing (the decision is left to
// the receiver), and a load balancer sends Root without Parent; contrib's xray maps the first to "not sampled"
// and drops the second.
func TestSpec_XRayDeferredAndRootOnly(t *testing.T) {
	for _, v := range []string{"Root=" + xrayRoot + ";Parent=" + sidHex + ";Sampled=?", "Root=" + xrayRoot} {
		e := extractOnly(http.Header{hdrXRay: {v}}, XRay)
		if !e.Deferred || e.SpanContext.TraceID().String() != tidHex {
			t.Errorf("%q: got %+v; want deferred with the root's trace id", v, viewOf(e))
		}
	}
}

// TestSpec_JaegerUpperCaseHex: Jaeger clients parse ids with strconv.ParseUint (either case) and accept a
// URL-encoded value; contrib's jaeger accepts neither.
func TestSpec_JaegerUpperCaseHex(t *testing.T) {
	for _, v := range []string{strings.ToUpper(tidHex) + ":" + sidHex + ":0:1", tidHex + "%3A" + sidHex + "%3A0%3A1"} {
		e := extractOnly(http.Header{hdrUberTraceID: {v}}, Jaeger)
		if e.SpanContext.TraceID().String() != tidHex {
			t.Errorf("%q: got %+v", v, viewOf(e))
		}
	}
}

// TestSpec_BaggageLimits: W3C Baggage allows 180 list-members; OpenTelemetry-Go keeps 64.
func TestSpec_BaggageLimits(t *testing.T) {
	e := extractOnly(http.Header{hdrBaggage: {bagMembers(180)}}, Baggage)
	if got := e.BaggageLen(); got != 180 {
		t.Errorf("got %d members; want 180", got)
	}
}
