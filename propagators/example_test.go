package propagators_test

import (
	"fmt"
	"net/http"

	"github.com/sidetrace/sidetrace/propagators"
	"go.opentelemetry.io/otel/trace"
)

// One hop: a request arrives from an AWS load balancer (X-Ray root, no parent) with W3C baggage; the proxy
// forwards it with W3C Trace Context and X-Ray.
func Example() {
	extract, _ := propagators.ParseExtract("")                    // OTEL_PROPAGATORS
	inject, _ := propagators.ParseInject("preserve,tracecontext") // SIDETRACE_INJECT
	p := propagators.New(extract, inject)

	incoming := http.Header{}
	incoming.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
	incoming.Set("Baggage", "tenant=acme")

	in := p.Extract(incoming)
	parent := in.ParentForSpan()
	fmt.Println(in.Format, in.RootOnly, parent.TraceID(), parent.SpanID())
	tenant, _ := in.BaggageMember("tenant")
	fmt.Println("tenant:", tenant)

	// The proxy's span, a child of parent (an SDK tracer would make it).
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: parent.TraceID(), SpanID: trace.SpanID{0, 0, 0, 0, 0, 0, 0, 0x2a}, TraceFlags: parent.TraceFlags(),
	})
	out := incoming.Clone()
	p.Inject(out, span, &in)
	fmt.Println(out.Get("Traceparent"))
	fmt.Println(out.Get("X-Amzn-Trace-Id"))
	fmt.Println(out.Get("Baggage"))
	// Output:
	// xray true 5759e988bd862e3fe1be46a994272793 e1be46a994272793
	// tenant: acme
	// 00-5759e988bd862e3fe1be46a994272793-000000000000002a-01
	// Root=1-5759e988-bd862e3fe1be46a994272793;Parent=000000000000002a;Sampled=1
	// tenant=acme
}
