// Package telemetry builds sidetrace's span pipeline: the OpenTelemetry SDK tracer provider, a bounded
// export processor that never blocks a request, the span-end hooks (plugin redaction) that run before any
// exporter sees a span, the OTLP/HTTP exporter (its own protobuf encoder, see OTLPExporter; the format is
// https://opentelemetry.io/docs/specs/otlp/) and the embedded trace store.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// AttrSamplingReason is set on a span the hop exports although its trace was not sampled (an error, a slow
// request, a plugin's request): the processor exports unsampled spans only when they carry it.
const AttrSamplingReason = attribute.Key("sidetrace.sampling.reason")

// SpanHook edits or filters a batch of finished spans before export (plugin redaction). It runs on the export
// goroutine, off the request path.
type SpanHook func(ctx context.Context, spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan

// ProcessorOptions configures a Processor.
type ProcessorOptions struct {
	QueueSize     int           // finished spans waiting for export; beyond it spans are dropped and counted
	BatchSize     int           // spans per export call
	ScheduleDelay time.Duration // longest wait before a partial batch is exported
	ExportTimeout time.Duration // time allowed for one export call
	Hook          SpanHook      // optional
	Logger        *slog.Logger
}

// Processor is an sdktrace.SpanProcessor with a bounded queue: OnEnd never blocks, and when the queue is full
// the span is dropped and counted, so a slow or dead collector costs neither latency nor memory growth.
type Processor struct {
	exporter sdktrace.SpanExporter
	opts     ProcessorOptions
	queue    chan sdktrace.ReadOnlySpan
	flush    chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	base     context.Context // parent of every export call; cancelled when Shutdown runs out of time
	cancel   context.CancelFunc

	enqueued, dropped, exported, failed atomic.Uint64
}

// Stats are the processor's counters since start.
type Stats struct {
	Enqueued uint64 // spans accepted for export
	Dropped  uint64 // spans dropped because the queue was full
	Exported uint64 // spans handed to the exporter successfully
	Failed   uint64 // spans in batches the exporter failed
}

// NewProcessor starts a processor exporting to exporter.
func NewProcessor(exporter sdktrace.SpanExporter, opts ProcessorOptions) *Processor {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 2048
	}
	if opts.BatchSize <= 0 || opts.BatchSize > opts.QueueSize {
		opts.BatchSize = min(512, opts.QueueSize)
	}
	if opts.ScheduleDelay <= 0 {
		opts.ScheduleDelay = time.Second
	}
	if opts.ExportTimeout <= 0 {
		opts.ExportTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Processor{
		exporter: exporter,
		opts:     opts,
		queue:    make(chan sdktrace.ReadOnlySpan, opts.QueueSize),
		flush:    make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.base, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p
}

// OnStart implements sdktrace.SpanProcessor.
func (p *Processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a finished span for export: sampled spans, and unsampled (record-only) spans the hop marked
// with AttrSamplingReason. It never blocks.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() && !hasReason(s) {
		return
	}
	select {
	case <-p.stop:
		p.dropped.Add(1)
		return
	default:
	}
	select {
	case p.queue <- s:
		p.enqueued.Add(1)
	default:
		p.dropped.Add(1)
	}
}

func hasReason(s sdktrace.ReadOnlySpan) bool {
	for _, kv := range s.Attributes() {
		if kv.Key == AttrSamplingReason {
			return true
		}
	}
	return false
}

// Stats returns the counters.
func (p *Processor) Stats() Stats {
	return Stats{Enqueued: p.enqueued.Load(), Dropped: p.dropped.Load(), Exported: p.exported.Load(), Failed: p.failed.Load()}
}

// ForceFlush exports everything queued so far.
func (p *Processor) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case p.flush <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, within ctx, and shuts the exporter down.
func (p *Processor) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			err = ctx.Err()
			p.cancel() // abandon the export in flight
			<-p.done
		}
		p.cancel()
		err = errors.Join(err, p.exporter.Shutdown(ctx))
	})
	return err
}

func (p *Processor) run() {
	defer close(p.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, p.opts.BatchSize)
	timer := time.NewTimer(p.opts.ScheduleDelay)
	defer timer.Stop()
	export := func() {
		if len(batch) > 0 {
			p.export(batch)
			clear(batch)
			batch = batch[:0]
		}
		timer.Reset(p.opts.ScheduleDelay)
	}
	add := func(s sdktrace.ReadOnlySpan) {
		batch = append(batch, s)
		if len(batch) == p.opts.BatchSize {
			export()
		}
	}
	drain := func() {
		for {
			select {
			case s := <-p.queue:
				add(s)
			default:
				export()
				return
			}
		}
	}
	for {
		select {
		case s := <-p.queue:
			add(s)
		case <-timer.C:
			export()
		case ack := <-p.flush:
			drain()
			close(ack)
		case <-p.stop:
			drain()
			return
		}
	}
}

func (p *Processor) export(batch []sdktrace.ReadOnlySpan) {
	ctx, cancel := context.WithTimeout(p.base, p.opts.ExportTimeout)
	defer cancel()
	spans := batch
	if p.opts.Hook != nil {
		spans = p.opts.Hook(ctx, spans)
	}
	if len(spans) == 0 {
		return
	}
	if err := p.exporter.ExportSpans(ctx, spans); err != nil {
		p.failed.Add(uint64(len(spans)))
		p.opts.Logger.Warn("span export failed", "spans", len(spans), "error", err)
		return
	}
	p.exported.Add(uint64(len(spans)))
}
