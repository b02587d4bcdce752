//go:build !wasip1

package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sidetrace/sidetrace/wasm-sdk/go/abi"
)

// This file lets plugins unit-test natively: it encodes views exactly as the
// host does (ABI.md, "Views"), runs the registered hooks and decodes their
// op lists. It does not exist in wasip1 builds.

// TestRequest is a request for RunRequest.
type TestRequest struct {
	Kind                                        SpanKind
	TraceID                                     TraceID
	Method, Scheme, Host, Path, Query, PeerAddr string
	Tenant                                      string              // set by an earlier plugin
	Header                                      map[string][]string // any case
}

// TestResponse is a response for RunResponse.
type TestResponse struct {
	Kind     SpanKind
	TraceID  TraceID
	Tenant   string
	Status   int
	Duration time.Duration
	Header   map[string][]string
}

// TestSpan is a finished span for RunSpanEnd, and its result.
type TestSpan struct {
	Name       string
	Kind       SpanKind
	TraceID    TraceID
	SpanID     SpanID
	Attributes []Attribute
	Events     []Event
}

// Result is what a hook asked for.
type Result struct {
	Attributes []Attribute // added (request, response hooks)
	Tenant     string
	Decision   Decision
	MarkError  bool
	ErrorDesc  string
	Keep       bool
	Failed     string // the message of a reported failure (Fail, or a panic)
}

// Declaration is what init declared.
type Declaration struct {
	Hooks           uint32 // abi.Hook* bits
	RequestHeaders  []string
	ResponseHeaders []string
}

// RunInit runs init with config as the host does at load.
func RunInit(config string) (Declaration, error) {
	stub.headers = [2]map[string]string{}
	var d Declaration
	r := reader{b: append([]byte(nil), handleInit([]byte(config))...)}
	for r.off < len(r.b) && r.err == nil {
		switch r.u8() {
		case abi.OpHooks:
			d.Hooks = r.u32()
		case abi.OpRequestHeader:
			d.RequestHeaders = append(d.RequestHeaders, r.str())
		case abi.OpResponseHeader:
			d.ResponseHeaders = append(d.ResponseHeaders, r.str())
		case abi.OpFail:
			return d, errors.New(r.str())
		default:
			return d, fmt.Errorf("sdk: unexpected op in init output at byte %d", r.off-1)
		}
	}
	return d, r.err
}

// RunRequest runs the request hook as the host would.
func RunRequest(req TestRequest) Result {
	var e testEncoder
	e.u8(uint8(req.Kind))
	e.b = append(e.b, req.TraceID[:]...)
	for _, s := range []string{req.Method, req.Scheme, req.Host, req.Path, req.Query, req.PeerAddr, req.Tenant} {
		e.str(s)
	}
	e.headers(reg.reqHdr, req.Header)
	stub.headers[abi.HeaderRequest] = joinHeaders(req.Header)
	defer func() { stub.headers[abi.HeaderRequest] = nil }()
	res := Result{Tenant: req.Tenant}
	decodeResult(handleRequest(e.b), &res, nil)
	return res
}

// RunResponse runs the response hook as the host would.
func RunResponse(resp TestResponse) Result {
	var e testEncoder
	e.u8(uint8(resp.Kind))
	e.b = append(e.b, resp.TraceID[:]...)
	e.str(resp.Tenant)
	e.u32(uint32(resp.Status))
	e.u64(uint64(resp.Duration))
	e.headers(reg.respHdr, resp.Header)
	stub.headers[abi.HeaderResponse] = joinHeaders(resp.Header)
	defer func() { stub.headers[abi.HeaderResponse] = nil }()
	res := Result{Tenant: resp.Tenant}
	decodeResult(handleResponse(e.b), &res, nil)
	return res
}

// RunSpanEnd runs the span-end hook as the host would and returns the span
// with the hook's edits applied.
func RunSpanEnd(s TestSpan) (TestSpan, Result) {
	var e testEncoder
	e.u8(uint8(s.Kind))
	e.b = append(e.b, s.TraceID[:]...)
	e.b = append(e.b, s.SpanID[:]...)
	e.str(s.Name)
	e.attrs(s.Attributes)
	e.u32(uint32(len(s.Events)))
	for _, ev := range s.Events {
		e.str(ev.Name)
		e.u64(uint64(ev.Time.UnixNano()))
		e.attrs(ev.Attributes)
	}
	edited := TestSpan{Name: s.Name, Kind: s.Kind, TraceID: s.TraceID, SpanID: s.SpanID,
		Attributes: append([]Attribute(nil), s.Attributes...)}
	for _, ev := range s.Events {
		ev.Attributes = append([]Attribute(nil), ev.Attributes...)
		edited.Events = append(edited.Events, ev)
	}
	var res Result
	decodeResult(handleSpanEnd(e.b), &res, &edited)
	if res.Failed != "" {
		return s, res
	}
	return edited, res
}

func joinHeaders(h map[string][]string) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return m
}

func decodeResult(b []byte, res *Result, s *TestSpan) {
	r := reader{b: append([]byte(nil), b...)}
	for r.off < len(r.b) && r.err == nil {
		switch op := r.u8(); op {
		case abi.OpSetAttr:
			k := r.str()
			v := r.value()
			if s != nil {
				s.Attributes = setAttr(s.Attributes, k, v)
			} else {
				res.Attributes = append(res.Attributes, Attribute{k, v})
			}
		case abi.OpDeleteAttr:
			k := r.str()
			s.Attributes = deleteAttr(s.Attributes, k)
		case abi.OpSetEventAttr:
			i := r.u32()
			k := r.str()
			v := r.value()
			s.Events[i].Attributes = setAttr(s.Events[i].Attributes, k, v)
		case abi.OpDeleteEventAttr:
			i := r.u32()
			k := r.str()
			s.Events[i].Attributes = deleteAttr(s.Events[i].Attributes, k)
		case abi.OpSetTenant:
			res.Tenant = r.str()
		case abi.OpDecision:
			res.Decision = Decision(r.u8())
		case abi.OpMarkError:
			res.MarkError, res.ErrorDesc = true, r.str()
		case abi.OpKeep:
			res.Keep = true
		case abi.OpFail:
			res.Failed = r.str()
		default:
			panic(fmt.Sprintf("sdk: unknown op %#x in hook output", op))
		}
	}
	if r.err != nil {
		panic(r.err)
	}
}

type testEncoder struct{ b []byte }

func (e *testEncoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *testEncoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *testEncoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *testEncoder) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *testEncoder) headers(declared []string, h map[string][]string) {
	for _, name := range declared {
		var vs []string
		for k, v := range h {
			if strings.EqualFold(k, name) {
				vs = append(vs, v...)
			}
		}
		e.u32(uint32(len(vs)))
		for _, v := range vs {
			e.str(v)
		}
	}
}

func (e *testEncoder) attrs(as []Attribute) {
	e.u32(uint32(len(as)))
	for _, a := range as {
		e.str(a.Key)
		var o output
		o.value(a.Value)
		e.b = append(e.b, o.b...)
	}
}
