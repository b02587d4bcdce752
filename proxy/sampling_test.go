package proxy_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// End-to-end sampling: real sidecars configured through the environment, a real upstream recording the
// traceparent it is sent, and a real OTLP receiver. Random trace ids come from fixed seeds; counts are checked
// against binomial bounds of 4 standard deviations (a false failure about once in 16000 runs for a fresh seed;
// with a fixed seed the outcome is the same every run). Nothing asserts how fast anything is.

// otlpSampledFlag is the W3C sampled bit in OTLP Span.flags (bits 0-7 hold the trace flags).
const otlpSampledFlag = 0x01

// specSampled is the decision the consistent probability sampling spec gives for ratio p: R, the 56 least
// significant bits of the trace id, is at least the rejection threshold (1 - p) * 2^56. It is exact for the
// ratios used here (0.25, 0.5), whose thresholds need no rounding.
func specSampled(tid trace.TraceID, p float64) bool {
	r := binary.BigEndian.Uint64(tid[8:]) & (1<<56 - 1)
	return r >= uint64((1-p)*(1<<56))
}

// binomialBounds returns mean ± 4 standard deviations of Binomial(n, p).
func binomialBounds(n int, p float64) (lo, hi int) {
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	return int(math.Floor(mean - 4*sd)), int(math.Ceil(mean + 4*sd))
}

func randomIDs(rng *rand.Rand) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() || !sid.IsValid() {
		putRand(rng, tid[:])
		putRand(rng, sid[:])
	}
	return tid, sid
}

func traceparent(tid trace.TraceID, sid trace.SpanID, sampled bool) string {
	flags := "00"
	if sampled {
		flags = "01"
	}
	return "00-" + tid.String() + "-" + sid.String() + "-" + flags
}

// sendAll sends the requests built by req(i), i < n, from a few workers, and returns each response status.
// Transport errors fail the test.
func sendAll(t *testing.T, c *http.Client, n, workers int, req func(i int) *http.Request) []int {
	t.Helper()
	status := make([]int, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				res, err := c.Do(req(i))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					continue
				}
				res.Body.Close()
				status[i] = res.StatusCode
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return status
}

// forwarded is what the upstream saw of one request's trace context, read with the reference W3C propagator.
type forwarded struct {
	sc  trace.SpanContext
	hdr http.Header
}

// forwardedByTrace returns the context of every request the upstream received, by trace id; a trace id seen
// twice fails the test.
func forwardedByTrace(t *testing.T, u *upstream) map[string]forwarded {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]forwarded, len(u.requests))
	for _, r := range u.requests {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
		if !sc.IsValid() {
			t.Fatalf("upstream got no valid traceparent: %v", r.Header)
		}
		id := sc.TraceID().String()
		if _, dup := out[id]; dup {
			t.Fatalf("upstream got trace %s twice", id)
		}
		out[id] = forwarded{sc: sc, hdr: r.Header}
	}
	return out
}

// settle waits until the sidecar has ended the span of each of its n requests (the access-log line is written
// after span.End) and flushes the export queue, so the receiver holds every exported span.
func settle(t *testing.T, sc *sidecartest.Sidecar, n int) {
	t.Helper()
	sc.WaitAccessLog(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := sc.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if st := sc.ExportStats(); st.Dropped != 0 || st.Failed != 0 || st.Exported != st.Enqueued {
		t.Fatalf("export stats: got %+v; want every queued span exported", st)
	}
}

// exportedByTrace indexes spans by trace id; a trace with two spans fails the test (one hop, one span).
func exportedByTrace(t *testing.T, spans []otlptest.Span) map[string]otlptest.Span {
	t.Helper()
	out := make(map[string]otlptest.Span, len(spans))
	for _, s := range spans {
		if _, dup := out[s.TraceID]; dup {
			t.Fatalf("two spans exported for trace %s:%s", s.TraceID, otlptest.Summary(spans))
		}
		out[s.TraceID] = s
	}
	return out
}

// An incoming request as a client sends it.
type incoming func(req *http.Request, tid trace.TraceID, sid trace.SpanID)

var (
	w3cUnsampled incoming = func(req *http.Request, tid trace.TraceID, sid trace.SpanID) {
		req.Header.Set("traceparent", traceparent(tid, sid, false))
	}
	// B3 without sampling state defers the decision to the receiver (https://github.com/openzipkin/b3-propagation#sampling-state).
	b3Deferred incoming = func(req *http.Request, tid trace.TraceID, sid trace.SpanID) {
		req.Header.Set("b3", tid.String()+"-"+sid.String())
	}
	b3MultiDeferred incoming = func(req *http.Request, tid trace.TraceID, sid trace.SpanID) {
		req.Header.Set("X-B3-TraceId", tid.String())
		req.Header.Set("X-B3-SpanId", sid.String())
	}
	// X-Ray "Sampled=?" asks the receiver to decide; an AWS load balancer sends a Root without Parent or Sampled.
	xrayDeferred incoming = func(req *http.Request, tid trace.TraceID, sid trace.SpanID) {
		req.Header.Set("X-Amzn-Trace-Id", xrayRoot(tid)+";Parent="+sid.String()+";Sampled=?")
	}
	xrayRootOnly incoming = func(req *http.Request, tid trace.TraceID, sid trace.SpanID) {
		req.Header.Set("X-Amzn-Trace-Id", xrayRoot(tid))
	}
)

func xrayRoot(tid trace.TraceID) string {
	h := tid.String()
	return "Root=1-" + h[:8] + "-" + h[8:]
}

// xrayID makes tid a valid X-Ray trace id (its first 4 bytes are an epoch) without touching the 56 low bits
// the ratio decision reads.
func xrayID(tid trace.TraceID) trace.TraceID {
	tid[0], tid[1], tid[2], tid[3] = 0x65, 0x00, 0x00, 0x01
	return tid
}

// ratioRun is one sidecar's outcome for a list of incoming trace ids.
type ratioRun struct {
	exported map[string]otlptest.Span
	fwd      map[string]forwarded
}

func runRatio(t *testing.T, sampler string, p float64, in incoming, tids []trace.TraceID, sids []trace.SpanID) ratioRun {
	t.Helper()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"OTEL_TRACES_SAMPLER="+sampler, fmt.Sprint("OTEL_TRACES_SAMPLER_ARG=", p))
	c := client(t)
	for i, st := range sendAll(t, c, len(tids), 8, func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
		if in != nil {
			in(req, tids[i], sids[i])
		}
		return req
	}) {
		if st != http.StatusOK {
			t.Fatalf("request %d: got %d; want 200", i, st)
		}
	}
	settle(t, sc, len(tids))
	return ratioRun{exported: exportedByTrace(t, rcv.Spans()), fwd: forwardedByTrace(t, up)}
}

// check verifies, for every request, that the flag the upstream saw, the export and the spec's decision for
// the trace id agree, and that exported spans carry the probability; it returns the ids sampled.
func (r ratioRun) check(t *testing.T, p float64, tids []trace.TraceID) map[string]bool {
	t.Helper()
	th := map[float64]string{0.25: "ot=th:c", 0.5: "ot=th:8"}[p]
	if len(r.fwd) != len(tids) {
		t.Fatalf("upstream saw %d traces; want %d", len(r.fwd), len(tids))
	}
	sampled := map[string]bool{}
	mismatched := 0
	for _, tid := range tids {
		id := tid.String()
		f, ok := r.fwd[id]
		if !ok {
			t.Fatalf("upstream never saw trace %s", id)
		}
		s, exp := r.exported[id]
		want := specSampled(tid, p)
		if f.sc.IsSampled() != want || exp != want {
			if mismatched++; mismatched <= 5 {
				t.Errorf("trace %s: upstream sampled flag %v, exported %v; want both %v (the spec's decision at p=%v)", id, f.sc.IsSampled(), exp, want, p)
			}
			continue
		}
		if !want {
			continue
		}
		sampled[id] = true
		if s.SpanID != f.sc.SpanID().String() {
			t.Errorf("trace %s: upstream parent %s; want the exported span %s", id, f.sc.SpanID(), s.SpanID)
		}
		if s.Flags&otlpSampledFlag == 0 {
			t.Errorf("trace %s: exported span flags %#x; want sampled", id, s.Flags)
		}
		if s.TraceState != th || f.hdr.Get("tracestate") != th {
			t.Errorf("trace %s: tracestate exported %q, forwarded %q; want %q", id, s.TraceState, f.hdr.Get("tracestate"), th)
		}
		checkAttrs(t, s, map[string]any{"sidetrace.sampling.probability": p})
		if _, ok := s.Attrs["sidetrace.sampling.reason"]; ok {
			t.Errorf("trace %s: a head-sampled span has sidetrace.sampling.reason %v", id, s.Attrs["sidetrace.sampling.reason"])
		}
	}
	if mismatched > 5 {
		t.Errorf("... %d traces in all where the flag or the export differs from the spec's decision", mismatched)
	}
	for id := range r.exported {
		if _, ok := r.fwd[id]; !ok {
			t.Errorf("exported trace %s was never sent", id)
		}
	}
	return sampled
}

// ratioCase is one sampler fed one kind of incoming context; ids, when set, makes the random trace ids valid
// for the format.
type ratioCase struct {
	name, sampler string
	in            incoming
	ids           func(trace.TraceID) trace.TraceID
	rootOnly      bool // the incoming context names no parent span
}

// testRatio sends n requests with random trace ids (fixed seed) and checks, for every request, that the flag
// the upstream saw, the export and the spec's decision for the trace id agree; that the sampled count is within
// binomial bounds; and that a second, independent sidecar given the same ids decides alike.
func testRatio(t *testing.T, tc ratioCase, n int, p float64) {
	lo, hi := binomialBounds(n, p)
	rng := rand.New(rand.NewPCG(2026, 25))
	tids, sids := make([]trace.TraceID, n), make([]trace.SpanID, n)
	for i := range n {
		tids[i], sids[i] = randomIDs(rng)
		if tc.ids != nil {
			tids[i] = tc.ids(tids[i])
		}
	}
	a := runRatio(t, tc.sampler, p, tc.in, tids, sids)
	if tc.in == nil {
		// sidetrace chose the ids: check what it sent.
		tids = tids[:0]
		for _, f := range a.fwd {
			tids = append(tids, f.sc.TraceID())
		}
	}
	sampledA := a.check(t, p, tids)
	for i, tid := range tids {
		s, ok := a.exported[tid.String()]
		if !ok || tc.in == nil {
			continue
		}
		want := sids[i].String()
		if tc.rootOnly {
			want = hex.EncodeToString(tid[8:]) // X-Ray root without parent: the parent span id is synthesized from the root
		}
		if s.ParentSpanID != want {
			t.Errorf("trace %s: exported span's parent %q; want the incoming %s", tid, s.ParentSpanID, want)
		}
	}
	if got := len(sampledA); got < lo || got > hi {
		t.Errorf("sampled %d of %d; want %d..%d (p=%v, 4 sigma)", got, n, lo, hi, p)
	}
	t.Logf("%s: sampled %d of %d (%.3f; bounds %d..%d)", tc.name, len(sampledA), n, float64(len(sampledA))/float64(n), lo, hi)
	if tc.in == nil {
		return // the ids are sidetrace's own: another sidecar cannot be given them as roots
	}
	sampledB := runRatio(t, tc.sampler, p, tc.in, tids, sids).check(t, p, tids)
	var differ []string
	for _, tid := range tids {
		if id := tid.String(); sampledA[id] != sampledB[id] {
			differ = append(differ, fmt.Sprintf("%s: %v vs %v", id, sampledA[id], sampledB[id]))
		}
	}
	if len(differ) > 0 {
		t.Errorf("two sidecars disagree on %d traces: %s", len(differ), strings.Join(differ[:min(5, len(differ))], "; "))
	}
}

// traceidratio 0.25 over 2000 random trace ids. traceidratio ignores the incoming (unsampled) W3C flag and
// decides on the trace id; parentbased_traceidratio decides the roots, here requests without any context
// (sidetrace picks the ids; the spec's decision for each id is checked, which is what any other sidecar would
// decide). An incoming W3C flag 00 is a decision, which parent-based samplers follow: see
// TestSampling_ParentBased_HonoursIncomingFlag.
func TestSampling_TraceIDRatio_FractionFlagsAndAgreement(t *testing.T) {
	for _, tc := range []ratioCase{
		{name: "traceidratio/w3c_unsampled", sampler: "traceidratio", in: w3cUnsampled},
		{name: "parentbased_traceidratio/no_context", sampler: "parentbased_traceidratio"},
	} {
		t.Run(tc.name, func(t *testing.T) { testRatio(t, tc, 2000, 0.25) })
	}
}

// A sender that leaves the sampling decision to the receiver (B3 without sampling state, X-Ray Sampled=? or
// a Root alone, as AWS load balancers send) gets a root decision from parent-based samplers, on the incoming
// trace id, with the incoming span as parent: the propagators report it as Extracted.Deferred ("the proxy's
// sampler decides", propagators/doc.go).
func TestSampling_DeferredIncoming_DecidedByRootSampler(t *testing.T) {
	for _, tc := range []ratioCase{
		{name: "b3_deferred", sampler: "parentbased_traceidratio", in: b3Deferred},
		{name: "b3multi_deferred", sampler: "parentbased_traceidratio", in: b3MultiDeferred},
		{name: "xray_deferred", sampler: "parentbased_traceidratio", in: xrayDeferred, ids: xrayID},
		{name: "xray_root_only", sampler: "parentbased_traceidratio", in: xrayRootOnly, ids: xrayID, rootOnly: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testRatio(t, tc, 600, 0.25) })
	}
	// The default sampler behind an AWS load balancer: every request is a root, every span is sampled.
	t.Run("default_sampler/xray_root_only", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
		rcv := otlptest.NewReceiver(t)
		sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
		tid, sid := randomIDs(rand.New(rand.NewPCG(1, 2)))
		tid = xrayID(tid)
		req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
		xrayRootOnly(req, tid, sid)
		res, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		settle(t, sc, 1)
		fsc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(up.last(t).Header)))
		if fsc.TraceID() != tid || !fsc.IsSampled() {
			t.Errorf("upstream traceparent %q; want trace %s sampled (parentbased_always_on, no decision received)", up.last(t).Header.Get("traceparent"), tid)
		}
		if spans := rcv.Spans(); len(spans) != 1 || spans[0].TraceID != tid.String() {
			t.Errorf("exported:%s; want the one span of trace %s", otlptest.Summary(spans), tid)
		}
	})
}

// An explicit randomness in the incoming tracestate (ot=rv:<14 hex digits>) replaces the trace id's: each trace
// id here would get the opposite decision from its rv. A sampled span's tracestate gets th in front of rv, the
// ot member first, the other vendor's member kept; an unsampled one forwards the incoming tracestate as is.
func TestSampling_TraceIDRatio_ExplicitRandomnessFromTracestate(t *testing.T) {
	const n, p = 60, 0.5
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"OTEL_TRACES_SAMPLER=traceidratio", fmt.Sprint("OTEL_TRACES_SAMPLER_ARG=", p))
	rng := rand.New(rand.NewPCG(17, 19))
	tids, sids, rvs := make([]trace.TraceID, n), make([]trace.SpanID, n), make([]string, n)
	wantSampled := make([]bool, n)
	for i := range n {
		rv := rng.Uint64() & (1<<56 - 1)
		rvs[i], wantSampled[i] = fmt.Sprintf("%014x", rv), rv >= 1<<55
		for tids[i], sids[i] = randomIDs(rng); specSampled(tids[i], p) == wantSampled[i]; tids[i], sids[i] = randomIDs(rng) {
		}
	}
	c := client(t)
	sendAll(t, c, n, 4, func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
		req.Header.Set("traceparent", traceparent(tids[i], sids[i], false))
		req.Header.Set("tracestate", "vendor=x,ot=rv:"+rvs[i])
		return req
	})
	settle(t, sc, n)
	exported, fwd := exportedByTrace(t, rcv.Spans()), forwardedByTrace(t, up)
	sampled := 0
	for i, tid := range tids {
		id := tid.String()
		s, exp := exported[id]
		f := fwd[id]
		if exp != wantSampled[i] || f.sc.IsSampled() != wantSampled[i] {
			t.Errorf("trace %s rv %s: exported %v, downstream sampled %v; want both %v (decided on rv, not the trace id)", id, rvs[i], exp, f.sc.IsSampled(), wantSampled[i])
			continue
		}
		want := "vendor=x,ot=rv:" + rvs[i]
		if exp {
			sampled++
			want = "ot=th:8;rv:" + rvs[i] + ",vendor=x"
			if s.TraceState != want {
				t.Errorf("trace %s: exported tracestate %q; want %q", id, s.TraceState, want)
			}
		}
		if got := f.hdr.Get("tracestate"); got != want {
			t.Errorf("trace %s: forwarded tracestate %q; want %q", id, got, want)
		}
	}
	t.Logf("sampled %d of %d on their rv, each against its trace id's decision", sampled, n)
}

// Parent-based samplers follow the incoming sampled flag both ways, whatever their root decision would be: a
// sampled parent gives a sampled, exported child and 01 downstream; an unsampled one a span not exported and
// 00 downstream.
func TestSampling_ParentBased_HonoursIncomingFlag(t *testing.T) {
	for _, tc := range []struct{ sampler, arg string }{
		{"parentbased_traceidratio", "0.5"},
		{"parentbased_always_off", ""},
	} {
		t.Run(tc.sampler, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			rcv := otlptest.NewReceiver(t)
			sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
				"OTEL_TRACES_SAMPLER="+tc.sampler, "OTEL_TRACES_SAMPLER_ARG="+tc.arg)
			const n = 80
			rng := rand.New(rand.NewPCG(5, 8))
			tids, sids := make([]trace.TraceID, n), make([]trace.SpanID, n)
			flag := func(i int) bool { return i%2 == 0 }
			against := 0 // incoming flags the ratio alone would have decided the other way
			for i := range n {
				tids[i], sids[i] = randomIDs(rng)
				if specSampled(tids[i], 0.5) != flag(i) {
					against++
				}
			}
			if tc.arg != "" && (against < 10 || against > n-10) {
				t.Fatalf("the seed gives %d of %d flags against the ratio's decision; want a mix", against, n)
			}
			sendAll(t, client(t), n, 4, func(i int) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
				req.Header.Set("traceparent", traceparent(tids[i], sids[i], flag(i)))
				return req
			})
			settle(t, sc, n)
			exported := exportedByTrace(t, rcv.Spans())
			fwd := forwardedByTrace(t, up)
			for i, tid := range tids {
				id := tid.String()
				s, exp := exported[id]
				f := fwd[id]
				if exp != flag(i) || f.sc.IsSampled() != flag(i) {
					t.Errorf("trace %s incoming sampled=%v: exported %v, downstream sampled %v; want both %v", id, flag(i), exp, f.sc.IsSampled(), flag(i))
					continue
				}
				if exp && (s.ParentSpanID != sids[i].String() || f.sc.SpanID().String() != s.SpanID) {
					t.Errorf("trace %s: span parent %s, downstream parent %s; want %s and the hop's span %s", id, s.ParentSpanID, f.sc.SpanID(), sids[i], s.SpanID)
				}
				if _, ok := s.Attrs["sidetrace.sampling.probability"]; ok {
					t.Errorf("trace %s: a child following its parent has sidetrace.sampling.probability", id)
				}
			}
			t.Logf("%s: %d exported of %d (%d flags against the ratio's own decision)", tc.sampler, len(exported), n, against)
		})
	}
}

// ratelimited ARG=20: the bucket starts full with a burst of 20 and refills 20 per second, so N requests in a
// loop sample at least min(N, 20) and at most 20 + 20 * (seconds since the sidecar started). Under
// parentbased_ratelimited, children of sampled parents are all sampled and take no tokens.
func TestSampling_RateLimited_CountWithinBucket(t *testing.T) {
	const rate, burst, n = 20, 20, 300
	for _, sampler := range []string{"ratelimited", "parentbased_ratelimited"} {
		t.Run(sampler, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			rcv := otlptest.NewReceiver(t)
			start := time.Now() // before the sampler exists: an upper bound of the time it had to refill
			sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
				"OTEL_TRACES_SAMPLER="+sampler, fmt.Sprint("OTEL_TRACES_SAMPLER_ARG=", rate))
			c := client(t)
			parented := 0
			rng := rand.New(rand.NewPCG(3, 4))
			var parents []trace.TraceID
			if sampler == "parentbased_ratelimited" {
				parented = 100
				sendAll(t, c, parented, 1, func(int) *http.Request {
					tid, sid := randomIDs(rng)
					parents = append(parents, tid)
					req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
					req.Header.Set("traceparent", traceparent(tid, sid, true))
					return req
				})
			}
			sendAll(t, c, n, 1, func(int) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, sc.URL("inbound")+"/", nil)
				return req
			})
			elapsed := time.Since(start)
			settle(t, sc, parented+n)
			exported := exportedByTrace(t, rcv.Spans())
			fwd := forwardedByTrace(t, up)
			for _, tid := range parents {
				if _, ok := exported[tid.String()]; !ok {
					t.Errorf("trace %s with a sampled parent: not exported; want every child of a sampled parent", tid)
				}
			}
			roots := 0
			for id, f := range fwd {
				s, exp := exported[id]
				if f.sc.IsSampled() != exp {
					t.Errorf("trace %s: downstream sampled %v; exported %v", id, f.sc.IsSampled(), exp)
				}
				if exp && s.ParentSpanID == "" {
					roots++
					if s.TraceState != "" || f.hdr.Get("tracestate") != "" {
						t.Errorf("trace %s: rate-limited span tracestate %q (forwarded %q); want none (no known probability)", id, s.TraceState, f.hdr.Get("tracestate"))
					}
					if _, ok := s.Attrs["sidetrace.sampling.probability"]; ok {
						t.Errorf("trace %s: rate-limited span has sidetrace.sampling.probability", id)
					}
				}
			}
			hi := burst + int(math.Ceil(rate*elapsed.Seconds()))
			if roots < min(n, burst) || roots > hi {
				t.Errorf("sampled %d of %d new traces in %v; want %d..%d (burst %d, %d/s)", roots, n, elapsed.Round(time.Millisecond), burst, hi, burst, rate)
			}
			t.Logf("%s: sampled %d of %d new traces in %v (bound %d..%d); %d children of sampled parents exported", sampler, roots, n, elapsed.Round(time.Millisecond), burst, hi, len(parents))
		})
	}
}

// Under always_off, a failed hop's span is exported anyway with sidetrace.sampling.reason=error, a slow one
// with reason=slow when SIDETRACE_KEEP_SLOWER_THAN is set, and the downstream still sees 00: only the hop's
// own span is kept, the trace stays unsampled. A successful fast request is not exported, and
// SIDETRACE_KEEP_ERRORS=false keeps no error.
func TestSampling_KeepErrorsAndSlow_UnderAlwaysOff(t *testing.T) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			time.Sleep(80 * time.Millisecond) // a duration floor, not a ceiling: 80 ms is always > 50 ms
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()
	type want struct {
		status int
		reason string // "" = not exported
	}
	for _, tc := range []struct {
		name     string
		env      []string
		upDown   bool
		requests map[string]want
	}{
		{"defaults", nil, false, map[string]want{
			"/fail": {503, "error"},
			"/ok":   {200, ""},
			"/slow": {200, ""}, // SIDETRACE_KEEP_SLOWER_THAN is off by default
		}},
		{"upstream_down", nil, true, map[string]want{"/": {502, "error"}}},
		{"keep_slower_than_50ms", []string{"SIDETRACE_KEEP_SLOWER_THAN=50ms"}, false, map[string]want{
			"/fail": {503, "error"},
			"/slow": {200, "slow"},
		}},
		{"keep_errors_false", []string{"SIDETRACE_KEEP_ERRORS=false"}, false, map[string]want{
			"/fail": {503, ""},
			"/ok":   {200, ""},
		}},
		{"keep_errors_false_slow_kept", []string{"SIDETRACE_KEEP_ERRORS=false", "SIDETRACE_KEEP_SLOWER_THAN=50ms"}, false, map[string]want{
			"/slow": {200, "slow"},
		}},
		{"keep_errors_false_upstream_down", []string{"SIDETRACE_KEEP_ERRORS=false"}, true, map[string]want{"/": {502, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, handler)
			target := up.URL
			if tc.upDown {
				target = down
			}
			rcv := otlptest.NewReceiver(t)
			env := append([]string{"SIDETRACE_UPSTREAM=" + target, "OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.Endpoint(),
				"OTEL_TRACES_SAMPLER=always_off"}, tc.env...)
			sc := sidecartest.Start(t, env...)
			c := client(t)
			paths := slices.Sorted(func(yield func(string) bool) {
				for p := range tc.requests {
					if !yield(p) {
						return
					}
				}
			})
			tids := map[string]string{}
			for i, path := range paths {
				tid, sid := randomIDs(rand.New(rand.NewPCG(uint64(i), 9)))
				tids[path] = tid.String()
				// An incoming sampled parent is ignored by always_off: keeping the span is the only way out.
				res, body := get(t, c, sc.URL("inbound")+path, map[string]string{"traceparent": traceparent(tid, sid, true)})
				if res.StatusCode != tc.requests[path].status {
					t.Fatalf("%s: got %d %q; want %d", path, res.StatusCode, body, tc.requests[path].status)
				}
			}
			settle(t, sc, len(paths))
			exported := exportedByTrace(t, rcv.Spans())
			var fwd map[string]forwarded
			if !tc.upDown {
				fwd = forwardedByTrace(t, up)
			}
			for _, path := range paths {
				w, id := tc.requests[path], tids[path]
				if f, ok := fwd[id]; ok && f.sc.IsSampled() {
					t.Errorf("%s: downstream traceparent sampled; want 00 (always_off)", path)
				}
				s, exp := exported[id]
				if exp != (w.reason != "") {
					t.Errorf("%s (%d): exported %v; want %v", path, w.status, exp, w.reason != "")
					continue
				}
				if !exp {
					continue
				}
				checkAttrs(t, s, map[string]any{"sidetrace.sampling.reason": w.reason, "http.response.status_code": w.status})
				if s.Flags&otlpSampledFlag != 0 || strings.Contains(s.TraceState, "th:") {
					t.Errorf("%s: kept span flags %#x tracestate %q; want unsampled without th", path, s.Flags, s.TraceState)
				}
				if w.reason == "error" {
					checkAttrs(t, s, map[string]any{"error.type": fmt.Sprint(w.status)})
				}
			}
			if len(exported) != func() (k int) {
				for _, w := range tc.requests {
					if w.reason != "" {
						k++
					}
				}
				return k
			}() {
				t.Errorf("exported:%s; want only the kept requests'", otlptest.Summary(rcv.Spans()))
			}
		})
	}
}

// At an untrusted edge the incoming context is neither parent nor sampling input: the span starts a new trace
// with no parent and one link to the incoming context, and the upstream sees the new trace. The decision is
// the root sampler's: parentbased_always_on samples an incoming 00, parentbased_always_off drops an incoming 01.
func TestSampling_UntrustedEdge_NewTraceLinkedToIncoming(t *testing.T) {
	for _, tc := range []struct {
		sampler      string
		inSampled    bool
		wantSampled  bool
		wantExported bool
	}{
		{"parentbased_always_on", true, true, true},
		{"parentbased_always_on", false, true, true},
		{"parentbased_always_off", true, false, false},
	} {
		t.Run(fmt.Sprintf("%s/incoming_sampled_%v", tc.sampler, tc.inSampled), func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			rcv := otlptest.NewReceiver(t)
			sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
				"SIDETRACE_TRUST_INCOMING=false", "OTEL_TRACES_SAMPLER="+tc.sampler)
			in, inSpan := randomIDs(rand.New(rand.NewPCG(11, 13)))
			res, _ := get(t, client(t), sc.URL("inbound")+"/", map[string]string{
				"traceparent": traceparent(in, inSpan, tc.inSampled),
				"tracestate":  "vendor=untrusted",
			})
			if res.StatusCode != 200 {
				t.Fatalf("status: got %d; want 200", res.StatusCode)
			}
			settle(t, sc, 1)
			f := up.last(t)
			fsc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(f.Header)))
			if !fsc.IsValid() || fsc.TraceID() == in {
				t.Errorf("upstream traceparent %q; want a new trace, not the incoming %s", f.Header.Get("traceparent"), in)
			}
			if fsc.IsSampled() != tc.wantSampled {
				t.Errorf("upstream sampled: got %v; want %v (the root sampler's decision)", fsc.IsSampled(), tc.wantSampled)
			}
			if strings.Contains(f.Header.Get("tracestate"), "vendor=untrusted") {
				t.Errorf("upstream tracestate %q carries the untrusted trace's entries", f.Header.Get("tracestate"))
			}
			spans := rcv.Spans()
			if !tc.wantExported {
				if len(spans) != 0 {
					t.Errorf("exported:%s; want nothing", otlptest.Summary(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("exported %d spans; want 1:%s", len(spans), otlptest.Summary(spans))
			}
			s := spans[0]
			if s.TraceID != fsc.TraceID().String() || s.SpanID != fsc.SpanID().String() {
				t.Errorf("span %s/%s; want the trace and parent the upstream saw, %s/%s", s.TraceID, s.SpanID, fsc.TraceID(), fsc.SpanID())
			}
			if s.ParentSpanID != "" {
				t.Errorf("span parent: got %s; want none", s.ParentSpanID)
			}
			if len(s.Links) != 1 || s.Links[0].TraceID != in.String() || s.Links[0].SpanID != inSpan.String() ||
				s.Links[0].Attrs["sidetrace.link.reason"] != "untrusted_parent" {
				t.Errorf("links: got %+v; want one to %s/%s with sidetrace.link.reason=untrusted_parent", s.Links, in, inSpan)
			}
		})
	}
}

// adaptive ARG=50, a smoke test end to end (internal/sampling checks convergence with a fake clock). The
// ratio starts at 1, so the first request is sampled whatever the speed. Requests then go in one loop, without
// a pause (a lull makes the next window's rate collapse and the ratio go back to 1 for a window, by design):
// after a warm-up longer than one counting window (1 s), the next 2000 are sampled at about 50 per second of
// their duration, however fast or slow the machine. The count is checked against 2 * 50 * (seconds + 1) plus
// one early-closing window at ratio 1 (at most max(100, rate / 10) decisions) plus 4 sigma: the 2 covers the
// moving average lagging a rise of at most 2x, beyond which it is replaced.
func TestSampling_Adaptive_FollowsTarget(t *testing.T) {
	const target, n = 50, 2000
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
		"OTEL_TRACES_SAMPLER=parentbased_adaptive", fmt.Sprint("OTEL_TRACES_SAMPLER_ARG=", target))
	c := client(t)
	get(t, c, sc.URL("inbound")+"/", nil)
	if tp := up.last(t).Header.Get("traceparent"); !strings.HasSuffix(tp, "-01") {
		t.Fatalf("first request: traceparent %q; want sampled (the ratio starts at 1)", tp)
	}
	warm, warmStart := 1, time.Now()
	for time.Since(warmStart) < 1100*time.Millisecond {
		get(t, c, sc.URL("inbound")+"/", nil)
		warm++
	}
	start := time.Now()
	for range n {
		get(t, c, sc.URL("inbound")+"/", nil)
	}
	elapsed := time.Since(start)
	settle(t, sc, warm+n)

	// One connection, one request at a time: the upstream saw them in order.
	measured := map[string]bool{}
	up.mu.Lock()
	for _, r := range up.requests[warm:] {
		tp := r.Header.Get("traceparent")
		measured[strings.Split(tp, "-")[1]] = true
	}
	up.mu.Unlock()
	got, below1 := 0, 0
	for _, s := range rcv.Spans() {
		if !measured[s.TraceID] {
			continue
		}
		got++
		if p, ok := s.Attrs["sidetrace.sampling.probability"].(float64); ok && p < 1 {
			below1++
		}
	}
	rate := float64(n) / elapsed.Seconds()
	mean := 2*target*(elapsed.Seconds()+1) + max(100, rate/10)
	hi := int(math.Ceil(mean + 4*math.Sqrt(mean)))
	t.Logf("adaptive %d/s: warm-up %d requests in %v; then %d requests at %.0f/s: %d sampled (%.1f/s; bound 1..%d), %d at a ratio below 1",
		target, warm, start.Sub(warmStart).Round(time.Millisecond), n, rate, got, float64(got)/elapsed.Seconds(), min(n, hi), below1)
	if got < 1 || got > min(n, hi) {
		t.Errorf("sampled %d of %d in %v; want 1..%d (about %d/s)", got, n, elapsed.Round(time.Millisecond), min(n, hi), target)
	}
	if rate > 4*target && below1 == 0 {
		t.Errorf("traffic at %.0f/s, %d times the target, and no span sampled at a ratio below 1", rate, int(rate/target))
	}
}
