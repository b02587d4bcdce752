// Package telemetry builds sidetrace's span pipeline: the OpenTelemetry SDK tracer provider and a tracer
// of its own for the hops' spans that behaves as the SDK's (Tracer), a bounded export processor that never
// blocks a request, the span-end hooks (plugin redaction) that run before any
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

// SpanHook edits or filters finished spans before export (plugin redaction). The processor calls it in OnEnd,
// on the goroutine that ended the span, with that one span: while the span's data is still in the CPU's
// caches, and without the batches of hook calls a background goroutine would run between requests (on one
// core those held up requests arriving meanwhile, see the README's Benchmarks section). The proxy ends a
// span after the client has its response.
type SpanHook func(ctx context.Context, spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan

// ProcessorOptions configures a Processor.
type ProcessorOptions struct {
	QueueSize     int           // finished spans waiting for export; beyond it spans are dropped and counted
	BatchSize     int           // spans per export call
	ScheduleDelay time.Duration // longest wait before a partial batch is exported
	ExportTimeout time.Duration // time allowed for one export call
	Hook          SpanHook      // optional
	Logger        *slog.Logger
	// Recycle: the exporter keeps nothing of a span once ExportSpans returns (the OTLP exporter encodes the
	// batch before sending it, the store converts each span into one of its own), so the exported spans of
	// sidetrace's tracer are handed back to it for reuse. Not for an exporter that keeps the spans it is
	// given (a test's in-memory one, say).
	Recycle bool
}

// Processor is an sdktrace.SpanProcessor with a bounded queue: OnEnd never waits for it, and when the queue is
// full the span is dropped and counted, so a slow or dead collector costs neither latency nor memory growth.
//
// The queue is a slice under a mutex rather than a channel: the export goroutine is woken once per full
// batch (or by the schedule), not once per span, which on a busy proxy was a goroutine switch per request.
type Processor struct {
	exporter sdktrace.SpanExporter
	opts     ProcessorOptions

	mu      sync.Mutex
	pending []sdktrace.ReadOnlySpan // cap QueueSize
	batch   []sdktrace.ReadOnlySpan // the batch in hand, owned by the export goroutine
	stopped bool
	ready   chan struct{} // a full batch is pending

	flush  chan chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	base   context.Context // parent of every export call; cancelled when Shutdown runs out of time
	cancel context.CancelFunc

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
		pending:  make([]sdktrace.ReadOnlySpan, 0, opts.QueueSize),
		batch:    make([]sdktrace.ReadOnlySpan, 0, opts.BatchSize),
		ready:    make(chan struct{}, 1),
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

// OnEnd runs the hook on a finished span and queues what it returns for export: sampled spans, and unsampled
// (record-only) spans the hop marked with AttrSamplingReason. Only the hook can make it wait (a plugin's
// deadline bounds that); the queue never does: when it is full the span is dropped and counted.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() && !hasReason(s) {
		return
	}
	if p.opts.Hook != nil {
		one := [1]sdktrace.ReadOnlySpan{s}
		for _, s := range p.opts.Hook(p.base, one[:]) {
			p.enqueue(s)
		}
		return
	}
	p.enqueue(s)
}

func (p *Processor) enqueue(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	if p.stopped || len(p.pending) == cap(p.pending) {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	p.pending = append(p.pending, s)
	full := len(p.pending) == p.opts.BatchSize
	p.mu.Unlock()
	p.enqueued.Add(1)
	if full {
		select {
		case p.ready <- struct{}{}:
		default:
		}
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
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
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
	timer := time.NewTimer(p.opts.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-p.ready:
			p.exportPending(false)
		case <-timer.C:
			p.exportPending(true)
		case ack := <-p.flush:
			p.exportPending(true)
			close(ack)
		case <-p.stop:
			p.exportPending(true)
			return
		}
		timer.Reset(p.opts.ScheduleDelay)
	}
}

// exportPending exports the queue a batch at a time: full batches only, or everything when all is set. The
// batch in hand is copied out of the queue, so at most QueueSize + BatchSize spans are held.
func (p *Processor) exportPending(all bool) {
	for {
		p.mu.Lock()
		n := min(len(p.pending), p.opts.BatchSize)
		if n == 0 || (!all && n < p.opts.BatchSize) {
			p.mu.Unlock()
			return
		}
		batch := append(p.batch[:0], p.pending[:n]...)
		rest := copy(p.pending, p.pending[n:])
		clear(p.pending[rest:])
		p.pending = p.pending[:rest]
		p.mu.Unlock()
		p.export(batch)
		clear(batch)
		p.batch = batch[:0]
	}
}

// recycler is a span of sidetrace's tracer, reusable once exported.
type recycler interface{ recycle() }

func (p *Processor) export(batch []sdktrace.ReadOnlySpan) {
	ctx, cancel := context.WithTimeout(p.base, p.opts.ExportTimeout)
	defer cancel()
	err := p.exporter.ExportSpans(ctx, batch)
	if p.opts.Recycle {
		for _, s := range batch {
			if r, ok := s.(recycler); ok {
				r.recycle()
			}
		}
	}
	if err != nil {
		p.failed.Add(uint64(len(batch)))
		p.opts.Logger.Warn("span export failed", "spans", len(batch), "error", err)
		return
	}
	p.exported.Add(uint64(len(batch)))
}
