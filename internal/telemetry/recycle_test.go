package telemetry

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/internal/otlptest"
)

// recyclingPipeline is New's OTLP pipeline, exporting to rcv in batches of batch spans.
func recyclingPipeline(t *testing.T, exp sdktrace.SpanExporter, batch int, recycle bool) (*Pipeline, *Tracer) {
	t.Helper()
	proc := NewProcessor(exp, ProcessorOptions{QueueSize: 1 << 14, BatchSize: batch, ScheduleDelay: time.Millisecond, Recycle: recycle})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc), sdktrace.WithIDGenerator(IDGenerator{}))
	pipe := &Pipeline{Provider: tp, Processor: proc, sampler: sdktrace.AlwaysSample(), resource: resource.Empty()}
	tr, ok := pipe.Tracer(ScopeName).(*Tracer)
	if !ok {
		t.Fatal("Pipeline.Tracer is not sidetrace's (are OTEL_SPAN_* limits set in the environment?)")
	}
	return pipe, tr
}

// Spans started, ended and exported from several goroutines at once, while the processor recycles the exported
// ones into the next: every span reaches the collector with its own name, attributes (past the inline array
// too), events and links, and none of another's. Under -race this also checks that nothing reads a span after
// the export handed it back.
func TestProcessor_RecycledSpansExportIntact(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	pipe, tr := recyclingPipeline(t, NewOTLPExporter(OTLPOptions{URL: rcv.Endpoint() + "/v1/traces", Timeout: 10 * time.Second}), 16, true)
	const workers, each = 4, 150
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for k := range each {
				_, s := tr.Start(context.Background(), fmt.Sprintf("span-%d-%d", g, k))
				s.SetAttributes(attribute.Int("g", g), attribute.Int("k", k))
				if k%3 == 0 { // past the 24 attributes kept inline
					for i := range 30 {
						s.SetAttributes(attribute.String(fmt.Sprintf("extra.%d", i), fmt.Sprintf("%d-%d", g, k)))
					}
				}
				if k%5 == 0 {
					s.AddEvent(fmt.Sprintf("event-%d-%d", g, k))
				}
				if k%7 == 0 {
					s.AddLink(trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{byte(g + 1)}, SpanID: trace.SpanID{byte(k + 1)}})})
				}
				s.End()
			}
		})
	}
	wg.Wait()
	if err := pipe.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.WaitSpans(t, workers*each, 10*time.Second)
	seen := map[string]bool{}
	for _, s := range spans {
		var g, k int
		if _, err := fmt.Sscanf(s.Name, "span-%d-%d", &g, &k); err != nil {
			t.Fatalf("span name %q", s.Name)
		}
		if seen[s.Name] {
			t.Errorf("%s exported twice", s.Name)
		}
		seen[s.Name] = true
		wantAttrs := 2
		if k%3 == 0 {
			wantAttrs = 32
		}
		if len(s.Attrs) != wantAttrs || s.Attrs["g"] != int64(g) || s.Attrs["k"] != int64(k) {
			t.Errorf("%s: %d attributes, g=%v k=%v; want %d, g=%d k=%d", s.Name, len(s.Attrs), s.Attrs["g"], s.Attrs["k"], wantAttrs, g, k)
		}
		for key, v := range s.Attrs {
			if key != "g" && key != "k" && v != fmt.Sprintf("%d-%d", g, k) {
				t.Errorf("%s: attribute %s=%v, another span's", s.Name, key, v)
			}
		}
		if wantEvents := k%5 == 0; wantEvents != (len(s.Events) == 1) || wantEvents && s.Events[0].Name != fmt.Sprintf("event-%d-%d", g, k) {
			t.Errorf("%s: events %v; want one (event-%d-%d): %v", s.Name, s.Events, g, k, wantEvents)
		}
		if wantLinks := k%7 == 0; wantLinks != (len(s.Links) == 1) {
			t.Errorf("%s: links %v; want one: %v", s.Name, s.Links, wantLinks)
		}
	}
}

// With Recycle, the next span reuses an exported one, cleared; without it (an exporter that keeps spans), an
// exported span is left as it was.
func TestProcessor_RecycleReusesExportedSpans(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a collection empties sync.Pools
	for _, recycle := range []bool{true, false} {
		t.Run(fmt.Sprint("recycle=", recycle), func(t *testing.T) {
			keep := new(keeper)
			pipe, tr := recyclingPipeline(t, keep, 1, recycle)
			defer pipe.Shutdown(context.Background())
			_, a := tr.Start(context.Background(), "a")
			a.SetAttributes(attribute.String("a", "1"))
			a.AddEvent("a-event")
			a.End()
			if err := pipe.Processor.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, b := tr.Start(context.Background(), "b")
			first, second := a.(*span), b.(*span)
			if reused := first == second; reused != recycle {
				t.Fatalf("the next span reused the exported one: %v; want %v", reused, recycle)
			}
			if recycle {
				if second.Name() != "b" || len(second.Attributes()) != 0 || len(second.Events()) != 0 || !second.IsRecording() {
					t.Errorf("reused span: name %q, attributes %v, events %v, recording %v; want a new span's", second.Name(), second.Attributes(), second.Events(), second.IsRecording())
				}
			} else if first.Name() != "a" || len(first.Attributes()) != 1 || len(first.Events()) != 1 {
				t.Errorf("exported span kept by the exporter: name %q, attributes %v, events %v; want it as it ended", first.Name(), first.Attributes(), first.Events())
			}
			b.End()
			if len(keep.spans) != 1 || keep.spans[0].Name != "a" || len(keep.spans[0].Attributes) != 1 {
				t.Errorf("exported: %+v; want span a with its attribute", keep.spans)
			}
		})
	}
}
