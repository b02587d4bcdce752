package telemetry

import (
	"container/list"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// maxSpansPerTrace bounds one stored trace, so a runaway trace cannot grow the store without limit.
const maxSpansPerTrace = 1000

// Store is the embedded trace store: an sdktrace.SpanExporter keeping the most recent traces in memory,
// bounded by a number of traces, served as JSON by Handler. It is the default when no OTLP endpoint is set.
type Store struct {
	mu     sync.Mutex
	limit  int
	order  *list.List // of *storedTrace, most recently created at the front
	traces map[trace.TraceID]*list.Element
}

type storedTrace struct {
	id      trace.TraceID
	spans   []Span
	dropped int
}

// Span is one stored span, in the JSON shape /debug/traces serves.
type Span struct {
	TraceID      string         `json:"traceId"`
	SpanID       string         `json:"spanId"`
	ParentSpanID string         `json:"parentSpanId,omitempty"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Service      string         `json:"service"`
	Start        time.Time      `json:"startTime"`
	End          time.Time      `json:"endTime"`
	DurationMs   float64        `json:"durationMs"`
	Status       Status         `json:"status"`
	Sampled      bool           `json:"sampled"`
	Attributes   map[string]any `json:"attributes,omitempty"`
	Events       []Event        `json:"events,omitempty"`
	Links        []Link         `json:"links,omitempty"`
	Resource     map[string]any `json:"resource,omitempty"`
	TraceState   string         `json:"traceState,omitempty"`
	Scope        string         `json:"scope,omitempty"`
}

// Status is a span's status.
type Status struct {
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
}

// Event is a span event.
type Event struct {
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Link is a span link.
type Link struct {
	TraceID    string         `json:"traceId"`
	SpanID     string         `json:"spanId"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// TraceSummary is one entry of the /debug/traces listing.
type TraceSummary struct {
	TraceID    string    `json:"traceId"`
	Root       string    `json:"rootName"`
	Services   []string  `json:"services"`
	Start      time.Time `json:"startTime"`
	DurationMs float64   `json:"durationMs"`
	Spans      int       `json:"spanCount"`
	Error      bool      `json:"error"`
}

// NewStore returns a store keeping at most limit traces.
func NewStore(limit int) *Store {
	return &Store{limit: limit, order: list.New(), traces: make(map[trace.TraceID]*list.Element)}
}

// ExportSpans implements sdktrace.SpanExporter.
func (s *Store) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	converted := make([]Span, len(spans))
	for i, sp := range spans {
		converted[i] = convert(sp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sp := range spans {
		id := sp.SpanContext().TraceID()
		el, ok := s.traces[id]
		if !ok {
			el = s.order.PushFront(&storedTrace{id: id})
			s.traces[id] = el
			for s.order.Len() > s.limit {
				old := s.order.Back()
				delete(s.traces, old.Value.(*storedTrace).id)
				s.order.Remove(old)
			}
		}
		t := el.Value.(*storedTrace)
		if len(t.spans) >= maxSpansPerTrace {
			t.dropped++
			continue
		}
		t.spans = append(t.spans, converted[i])
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (s *Store) Shutdown(context.Context) error { return nil }

// Len returns the number of traces held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// Trace returns the spans of one trace, ordered by start time.
func (s *Store) Trace(id trace.TraceID) ([]Span, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.traces[id]
	if !ok {
		return nil, false
	}
	spans := append([]Span(nil), el.Value.(*storedTrace).spans...)
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	return spans, true
}

// Filter selects traces in List.
type Filter struct {
	Service     string        // a span of the trace has this service.name
	MinDuration time.Duration // the trace lasted at least this long
	ErrorsOnly  bool          // a span of the trace has status Error
	Limit       int           // at most this many (0 = all)
}

// List returns summaries of the stored traces matching f, newest first.
func (s *Store) List(f Filter) []TraceSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []TraceSummary{}
	for el := s.order.Front(); el != nil; el = el.Next() {
		t := el.Value.(*storedTrace)
		sum := summarize(t)
		if f.ErrorsOnly && !sum.Error {
			continue
		}
		if f.MinDuration > 0 && time.Duration(sum.DurationMs*float64(time.Millisecond)) < f.MinDuration {
			continue
		}
		if f.Service != "" && !contains(sum.Services, f.Service) {
			continue
		}
		out = append(out, sum)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func summarize(t *storedTrace) TraceSummary {
	sum := TraceSummary{TraceID: t.id.String(), Spans: len(t.spans)}
	var end time.Time
	root := -1
	for i := range t.spans {
		sp := &t.spans[i]
		if sum.Start.IsZero() || sp.Start.Before(sum.Start) {
			sum.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if sp.Status.Code == codes.Error.String() {
			sum.Error = true
		}
		if !contains(sum.Services, sp.Service) {
			sum.Services = append(sum.Services, sp.Service)
		}
		// The root is the span without a parent; failing that (its part of the trace is elsewhere) the earliest.
		switch {
		case root < 0:
			root = i
		case t.spans[root].ParentSpanID == "":
		case sp.ParentSpanID == "" || sp.Start.Before(t.spans[root].Start):
			root = i
		}
	}
	if root >= 0 {
		sum.Root = t.spans[root].Name
	}
	sum.DurationMs = float64(end.Sub(sum.Start)) / float64(time.Millisecond)
	return sum
}

func convert(s sdktrace.ReadOnlySpan) Span {
	sc := s.SpanContext()
	out := Span{
		TraceID:    sc.TraceID().String(),
		SpanID:     sc.SpanID().String(),
		Name:       s.Name(),
		Kind:       s.SpanKind().String(),
		Start:      s.StartTime(),
		End:        s.EndTime(),
		DurationMs: float64(s.EndTime().Sub(s.StartTime())) / float64(time.Millisecond),
		Status:     Status{Code: s.Status().Code.String(), Description: s.Status().Description},
		Sampled:    sc.IsSampled(),
		Attributes: attrMap(s.Attributes()),
		TraceState: sc.TraceState().String(),
		Scope:      s.InstrumentationScope().Name,
	}
	if p := s.Parent(); p.IsValid() {
		out.ParentSpanID = p.SpanID().String()
	}
	if r := s.Resource(); r != nil {
		out.Resource = attrMap(r.Attributes())
		if v, ok := r.Set().Value(semconv.ServiceNameKey); ok {
			out.Service = v.AsString()
		}
	}
	for _, e := range s.Events() {
		out.Events = append(out.Events, Event{Name: e.Name, Time: e.Time, Attributes: attrMap(e.Attributes)})
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, Link{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String(), Attributes: attrMap(l.Attributes)})
	}
	return out
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// Handler serves the store: GET /debug/traces lists traces newest first (query parameters service,
// min_duration as a Go duration, error=true, limit, default 100); GET /debug/traces/{traceId} returns every
// span of one trace.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/traces", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := Filter{Service: q.Get("service"), Limit: 100}
		if v := q.Get("min_duration"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				httpError(w, http.StatusBadRequest, "min_duration: "+strconv.Quote(v)+" is not a duration (want e.g. 250ms)")
				return
			}
			f.MinDuration = d
		}
		if v := q.Get("error"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				httpError(w, http.StatusBadRequest, "error: "+strconv.Quote(v)+" is not true or false")
				return
			}
			f.ErrorsOnly = b
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				httpError(w, http.StatusBadRequest, "limit: "+strconv.Quote(v)+" is not a whole number")
				return
			}
			f.Limit = n
		}
		writeJSON(w, map[string]any{"traces": s.List(f)})
	})
	mux.HandleFunc("GET /debug/traces/{traceId}", func(w http.ResponseWriter, r *http.Request) {
		id, err := trace.TraceIDFromHex(r.PathValue("traceId"))
		if err != nil {
			httpError(w, http.StatusBadRequest, "traceId: want 32 lower-case hex digits")
			return
		}
		spans, ok := s.Trace(id)
		if !ok {
			httpError(w, http.StatusNotFound, "trace "+id.String()+" is not in the store")
			return
		}
		writeJSON(w, map[string]any{"traceId": id.String(), "spans": spans})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
