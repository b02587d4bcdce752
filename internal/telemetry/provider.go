package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/config"
)

// ScopeName is the instrumentation scope of every span sidetrace makes.
const ScopeName = "github.com/sidetrace/sidetrace"

// Options configures the pipeline.
type Options struct {
	Telemetry config.Telemetry
	Sampler   sdktrace.Sampler // nil = parent-based always-on
	Hook      SpanHook         // span-end hook (plugin redaction), optional
	Logger    *slog.Logger
	Version   string
}

// Pipeline is the tracer provider with its export processor and, when no OTLP endpoint is configured, the
// embedded store.
type Pipeline struct {
	Provider  *sdktrace.TracerProvider
	Processor *Processor
	Store     *Store // nil when exporting OTLP

	sampler  sdktrace.Sampler
	resource *resource.Resource
	shut     atomic.Bool // Shutdown ended: Tracer's spans are no longer handed to the processor
}

// Tracer returns the tracer for sidetrace's spans: a Tracer (see there) on the provider's pipeline.
func (p *Pipeline) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return newTracer(p, name, opts...)
}

// New builds the pipeline: OTLP/HTTP export when an endpoint is configured, the embedded store otherwise.
func New(ctx context.Context, opts Options) (*Pipeline, error) {
	t := opts.Telemetry
	res, err := Resource(ctx, t, opts.Version)
	if err != nil {
		return nil, err
	}
	var exporter sdktrace.SpanExporter
	var store *Store
	if u := t.TracesURL(); u != "" {
		tlsCfg, err := t.ExportTLS()
		if err != nil {
			return nil, err
		}
		exporter = NewOTLPExporter(OTLPOptions{
			URL:     u,
			Headers: t.ExportHeaders(),
			Timeout: time.Duration(t.TimeoutMillis) * time.Millisecond,
			Gzip:    t.ExportGzip(),
			TLS:     tlsCfg,
			// No retries: the processor's queue is the buffer, and a retry loop would only hold the export
			// goroutine while the queue fills. A failed batch is counted and the next one goes out on time.
			UserAgent: "sidetrace/" + opts.Version,
		})
	} else {
		store = NewStore(t.StoreTraces)
		exporter = store
	}
	proc := NewProcessor(exporter, ProcessorOptions{
		QueueSize:     t.QueueSize,
		BatchSize:     t.BatchSize,
		ScheduleDelay: time.Duration(t.ScheduleDelayMillis) * time.Millisecond,
		ExportTimeout: time.Duration(t.TimeoutMillis) * time.Millisecond,
		Hook:          opts.Hook,
		Logger:        opts.Logger,
		Recycle:       true, // both exporters copy what they need: the OTLP one into its encoding, the store into its own spans
	})
	sampler := opts.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithIDGenerator(IDGenerator{}),
	)
	return &Pipeline{Provider: tp, Processor: proc, Store: store, sampler: sampler, resource: res}, nil
}

// Shutdown ends the provider, exporting what is queued within ctx.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	err := p.Provider.Shutdown(ctx)
	p.shut.Store(true) // as the provider unregisters its processors once they are shut down
	return err
}

// Resource builds the resource from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, as the SDKs do:
// OTEL_SERVICE_NAME wins over a service.name in the attributes; the default is unknown_service:sidetrace.
func Resource(ctx context.Context, t config.Telemetry, version string) (*resource.Resource, error) {
	kv, err := config.ParseKeyValues(t.ResourceAttributes)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	attrs := []attribute.KeyValue{semconv.ServiceName("unknown_service:sidetrace")}
	for k, v := range kv {
		attrs = append(attrs, attribute.String(k, v))
	}
	if t.ServiceName != "" {
		attrs = append(attrs, semconv.ServiceName(t.ServiceName))
	}
	if version != "" {
		attrs = append(attrs, attribute.String("sidetrace.version", version))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attrs...), // later entries win, so the precedence above holds
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
