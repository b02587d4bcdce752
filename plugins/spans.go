package plugins

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sidetrace/sidetrace/internal/yield"
	"github.com/sidetrace/sidetrace/plugins/internal/abi"
)

// ProcessSpans runs the span-end hooks on a batch of finished spans and
// returns the spans to export, in order. Spans a plugin edited are wrapped so
// that Attributes and Events return the edited values. A fail-closed plugin
// that fails drops the span, so an unredacted value never leaves; a fail-open
// one leaves it as it was before that plugin, with attribute
// sidetrace.plugin.error. A call that times out is tried once more on a
// fresh instance first. Sidetrace calls it as each span ends (its export
// processor's OnEnd), after the client has its response on the direct
// HTTP/1.1 path; a batch yields the CPU every yield.Every of hook calls.
func (h *Host) ProcessSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if h == nil || len(spans) == 0 {
		return spans
	}
	c := h.pin()
	if c == nil {
		return spans
	}
	defer c.unpin()
	var states []spanState
	var one [1]spanState // a span at a time, as the proxy calls it, costs no allocation
	for _, g := range c.gens {
		if g.hooks&abi.HookSpanEnd == 0 {
			continue
		}
		if states == nil {
			states = one[:]
			if len(spans) > 1 {
				states = make([]spanState, len(spans))
			}
			for i, s := range spans {
				states[i].src = s
			}
		}
		g.onSpanEnd(ctx, states)
	}
	changed := false
	for i := range states {
		if st := &states[i]; st.dropped || st.edited || len(st.errs) > 0 {
			changed = true
			break
		}
	}
	if !changed {
		return spans
	}
	out := make([]sdktrace.ReadOnlySpan, 0, len(spans))
	for i := range states {
		st := &states[i]
		switch {
		case st.dropped:
		case !st.edited && len(st.errs) == 0:
			out = append(out, st.src)
		default:
			out = append(out, st.span())
		}
	}
	return out
}

// spanState is a span's edited copy while it goes through the chain.
type spanState struct {
	src     sdktrace.ReadOnlySpan
	attrs   []attribute.KeyValue // nil until edited
	events  []sdktrace.Event     // nil until an event attribute is edited
	edited  bool
	dropped bool
	errs    []string
}

func (st *spanState) curAttrs() []attribute.KeyValue {
	if st.attrs != nil {
		return st.attrs
	}
	return st.src.Attributes()
}

func (st *spanState) curEvents() []sdktrace.Event {
	if st.events != nil {
		return st.events
	}
	return st.src.Events()
}

func (st *spanState) span() sdktrace.ReadOnlySpan {
	es := &editedSpan{ReadOnlySpan: st.src, attrs: st.curAttrs(), events: st.curEvents()}
	if len(st.errs) > 0 {
		es.attrs = append(slices.Clip(es.attrs), attribute.StringSlice(ErrorAttribute, st.errs))
		if len(st.errs) == 1 {
			es.attrs[len(es.attrs)-1] = attribute.String(ErrorAttribute, st.errs[0])
		}
	}
	return es
}

// editedSpan is a finished span whose attributes and events plugins edited.
type editedSpan struct {
	sdktrace.ReadOnlySpan
	attrs  []attribute.KeyValue
	events []sdktrace.Event
}

func (s *editedSpan) Attributes() []attribute.KeyValue { return s.attrs }
func (s *editedSpan) Events() []sdktrace.Event         { return s.events }

func (g *generation) onSpanEnd(ctx context.Context, states []spanState) {
	var in *instance
	defer func() {
		if in != nil {
			g.pool.put(in)
		}
	}()
	var clock yield.Clock
	for i := range states {
		st := &states[i]
		if st.dropped {
			continue
		}
		if clock.Due() {
			// Let requests run between pieces of a batch: on one core a batch of hundreds of spans would
			// otherwise hold the CPU for milliseconds (see package yield). The instance goes back first, so
			// request hooks of the same plugin do not wait for it.
			if in != nil {
				g.pool.put(in)
				in = nil
			}
			clock.Yield()
		}
		err := g.spanEnd(ctx, &in, st)
		if isTimeout(err) {
			// Once more on a fresh instance: a Go guest collecting garbage,
			// or a loaded machine, can overrun a deadline that a loop would
			// overrun every time. Off the request path, a second try costs
			// little and spares a fail-closed plugin's span.
			err = g.spanEnd(ctx, &in, st)
		}
		if err == nil {
			continue
		}
		if g.p.spec.failClosed() {
			st.dropped = true
			g.p.log.Warn("span dropped: fail-closed plugin failed", "err", err, "span", st.src.Name())
			continue
		}
		st.errs = append(st.errs, g.p.spec.Name+": "+err.Error())
	}
}

// spanEnd runs the hook on one span, keeping *inp for the next span.
func (g *generation) spanEnd(ctx context.Context, inp **instance, st *spanState) error {
	if *inp == nil {
		in, err := g.pool.get(ctx)
		if err != nil {
			return err
		}
		*inp = in
	}
	in := *inp
	g.p.calls.Add(1)
	e := &in.enc
	e.reset()
	s := st.src
	e.u8(uint8(s.SpanKind()))
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	e.raw(tid[:])
	e.raw(sid[:])
	e.str(s.Name())
	e.attrs(st.curAttrs())
	events := st.curEvents()
	e.u32(uint32(len(events)))
	for _, ev := range events {
		e.str(ev.Name)
		e.u64(uint64(ev.Time.UnixNano()))
		e.attrs(ev.Attributes)
	}
	out, err := in.hook(2)
	if err == nil {
		err = applySpan(out, st, &in.keys)
	}
	if err != nil && g.p.count(err) {
		g.pool.drop(in)
		*inp = nil
	}
	return err
}

// applySpan applies a span-end output to st, all or nothing.
func applySpan(out []byte, st *spanState, keys *keyCache) error {
	if len(out) == 0 {
		return nil
	}
	attrs := slices.Clone(st.curAttrs())
	if attrs == nil {
		attrs = []attribute.KeyValue{}
	}
	var events []sdktrace.Event // copied on first event edit
	cur := st.curEvents()
	owned := map[uint32]bool{}
	event := func(i uint32) (*sdktrace.Event, error) {
		if int64(i) >= int64(len(cur)) {
			return nil, malformed(fmt.Sprintf("event index %d out of range (%d events)", i, len(cur)))
		}
		if events == nil {
			events = slices.Clone(cur)
		}
		ev := &events[i]
		if !owned[i] { // own the attribute slice before editing it
			ev.Attributes = slices.Clone(ev.Attributes)
			owned[i] = true
		}
		return ev, nil
	}
	d := decoder{b: out}
	var err error
	for !d.done() && err == nil {
		switch op := d.u8(); op {
		case abi.OpSetAttr:
			kv := attribute.KeyValue{Key: d.key(keys), Value: d.value()}
			if d.err == nil && kv.Key == "" {
				err = malformed("empty attribute key")
			}
			attrs = setAttr(attrs, kv)
		case abi.OpDeleteAttr:
			attrs = deleteAttr(attrs, attribute.Key(d.str()))
		case abi.OpSetEventAttr:
			i := d.u32()
			kv := attribute.KeyValue{Key: d.key(keys), Value: d.value()}
			if d.err != nil {
				break
			}
			var ev *sdktrace.Event
			if ev, err = event(i); err == nil {
				ev.Attributes = setAttr(ev.Attributes, kv)
			}
		case abi.OpDeleteEventAttr:
			i := d.u32()
			k := attribute.Key(d.str())
			if d.err != nil {
				break
			}
			var ev *sdktrace.Event
			if ev, err = event(i); err == nil {
				ev.Attributes = deleteAttr(ev.Attributes, k)
			}
		case abi.OpFail:
			err = d.reportedFailure()
		default:
			err = malformed(fmt.Sprintf("op %#x not allowed in the span-end hook", op))
		}
	}
	err = d.result(err)
	if err != nil {
		return err
	}
	st.attrs, st.edited = attrs, true
	if events != nil {
		st.events = events
	}
	return nil
}

func isTimeout(err error) bool {
	var ce *callError
	return errors.As(err, &ce) && ce.kind == failTimeout
}

func setAttr(kvs []attribute.KeyValue, kv attribute.KeyValue) []attribute.KeyValue {
	for i := range kvs {
		if kvs[i].Key == kv.Key {
			kvs[i] = kv
			return kvs
		}
	}
	return append(kvs, kv)
}

func deleteAttr(kvs []attribute.KeyValue, k attribute.Key) []attribute.KeyValue {
	return slices.DeleteFunc(kvs, func(kv attribute.KeyValue) bool { return kv.Key == k })
}
