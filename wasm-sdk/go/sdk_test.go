//go:build !wasip1

package sdk

import (
	"reflect"
	"testing"
	"time"
)

func reset() { reg = registry{} }

func TestInit_DeclaresHooksAndHeaders(t *testing.T) {
	reset()
	RequestHeaders("X-Static")
	OnInit(func(cfg []byte) error {
		RequestHeaders("x-" + string(cfg))
		ResponseHeaders("Content-Type")
		return nil
	})
	OnRequest(func(Request) Decision { return NoOpinion })
	OnSpanEnd(func(*Span) {})
	for range 2 { // init runs once per instance; declarations must not pile up
		got, err := RunInit("tenant")
		if err != nil {
			t.Fatal(err)
		}
		want := Declaration{Hooks: 1 | 4, RequestHeaders: []string{"x-static", "x-tenant"}, ResponseHeaders: []string{"content-type"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v; want %+v", got, want)
		}
	}
	if got := string(Config()); got != "tenant" {
		t.Errorf("Config: got %q; want %q", got, "tenant")
	}
}

func TestInit_ErrorRefuses(t *testing.T) {
	reset()
	OnInit(func([]byte) error { return errString("bad config") })
	if _, err := RunInit("{}"); err == nil || err.Error() != "bad config" {
		t.Errorf("got %v; want bad config", err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestRequest_ViewAndEdits(t *testing.T) {
	reset()
	RequestHeaders("x-tenant-id")
	var seen []string
	OnRequest(func(r Request) Decision {
		seen = []string{r.Kind().String(), r.Method(), r.Scheme(), r.Host(), r.Path(), r.Query(), r.PeerAddr(), r.Tenant(),
			r.Header("X-Tenant-ID"), r.Header("x-other"), r.Header("absent")}
		r.SetTenant(r.Header("x-tenant-id"))
		r.SetAttribute("tenant.id", String(r.Tenant()))
		r.SetAttribute("n", Int(3))
		return RecordOnly
	})
	if _, err := RunInit(""); err != nil {
		t.Fatal(err)
	}
	res := RunRequest(TestRequest{Kind: KindServer, Method: "GET", Scheme: "https", Host: "h", Path: "/p", Query: "q=1", PeerAddr: "1.2.3.4:5",
		Header: map[string][]string{"X-Tenant-Id": {"acme", "beta"}, "X-Other": {"o"}}})
	if want := []string{"server", "GET", "https", "h", "/p", "q=1", "1.2.3.4:5", "", "acme, beta", "o", ""}; !reflect.DeepEqual(seen, want) {
		t.Errorf("view: got %q; want %q", seen, want)
	}
	want := Result{Attributes: []Attribute{{"tenant.id", String("acme, beta")}, {"n", Int(3)}}, Tenant: "acme, beta", Decision: RecordOnly}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
}

func TestResponse_ViewAndEdits(t *testing.T) {
	reset()
	ResponseHeaders("content-type")
	OnResponse(func(r Response) {
		r.SetAttribute("ct", String(r.Header("content-type")))
		r.SetAttribute("ms", Int64(r.Duration().Milliseconds()))
		if r.Status() >= 500 {
			r.MarkError("upstream " + r.Tenant())
			r.Keep()
		}
	})
	if _, err := RunInit(""); err != nil {
		t.Fatal(err)
	}
	res := RunResponse(TestResponse{Tenant: "acme", Status: 503, Duration: 7 * time.Millisecond, Header: map[string][]string{"Content-Type": {"text/plain"}}})
	want := Result{Attributes: []Attribute{{"ct", String("text/plain")}, {"ms", Int64(7)}}, Tenant: "acme", MarkError: true, ErrorDesc: "upstream acme", Keep: true}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
}

func TestSpanEnd_EditsAllTypes(t *testing.T) {
	reset()
	OnSpanEnd(func(s *Span) {
		for _, a := range s.Attributes() {
			if a.Key == "secret" {
				s.SetAttribute(a.Key, String("[REDACTED]"))
			}
		}
		s.DeleteAttribute("drop")
		for i, ev := range s.Events() {
			for _, a := range ev.Attributes {
				if a.Key == "secret" {
					s.SetEventAttribute(i, a.Key, String("[REDACTED]"))
				}
			}
			s.DeleteEventAttribute(i, "drop")
		}
		if v, ok := s.Attribute("secret"); !ok || v.AsString() != "[REDACTED]" {
			s.Fail("view not updated")
		}
	})
	if _, err := RunInit(""); err != nil {
		t.Fatal(err)
	}
	in := TestSpan{Name: "n", Kind: KindClient, Attributes: []Attribute{
		{"secret", String("s3cr3t")}, {"drop", Bool(true)}, {"i", Int64Slice([]int64{1, -2})}, {"f", Float64Slice([]float64{1.5})},
		{"ss", StringSlice([]string{"a", "b"})}, {"bs", BoolSlice([]bool{true, false})}, {"x", Float64(2.5)}},
		Events: []Event{{Name: "e", Time: time.Unix(0, 42), Attributes: []Attribute{{"secret", String("s")}, {"drop", String("d")}, {"k", String("v")}}}},
	}
	got, res := RunSpanEnd(in)
	if res.Failed != "" {
		t.Fatal(res.Failed)
	}
	want := TestSpan{Name: "n", Kind: KindClient, Attributes: []Attribute{
		{"secret", String("[REDACTED]")}, {"i", Int64Slice([]int64{1, -2})}, {"f", Float64Slice([]float64{1.5})},
		{"ss", StringSlice([]string{"a", "b"})}, {"bs", BoolSlice([]bool{true, false})}, {"x", Float64(2.5)}},
		Events: []Event{{Name: "e", Time: time.Unix(0, 42), Attributes: []Attribute{{"secret", String("[REDACTED]")}, {"k", String("v")}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestHookPanic_ReportsFailure(t *testing.T) {
	reset()
	OnRequest(func(r Request) Decision { r.SetAttribute("a", Bool(true)); panic("boom") })
	if _, err := RunInit(""); err != nil {
		t.Fatal(err)
	}
	res := RunRequest(TestRequest{})
	if want := (Result{Failed: "panic: boom"}); !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v; want %+v", res, want)
	}
}

func TestTruncatedView_ReportsFailure(t *testing.T) {
	reset()
	OnRequest(func(r Request) Decision { return Drop })
	out := handleRequest([]byte{2, 0, 0})
	var res Result
	decodeResult(out, &res, nil)
	if res.Failed == "" {
		t.Errorf("got %+v; want a failure", res)
	}
}

func TestSpanEnd_KeysAcrossViews(t *testing.T) {
	reset()
	var seen [][]string
	OnSpanEnd(func(s *Span) {
		var ks []string
		for _, a := range s.Attributes() {
			ks = append(ks, a.Key)
		}
		seen = append(seen, ks)
	})
	if _, err := RunInit(""); err != nil {
		t.Fatal(err)
	}
	views := [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"b", "a"}, {"x", "a", "b", "c", "d"}, {}}
	for _, keys := range views {
		var as []Attribute
		for _, k := range keys {
			as = append(as, Attribute{k, String("v")})
		}
		RunSpanEnd(TestSpan{Attributes: as})
	}
	for i, keys := range views {
		if len(keys) == 0 && len(seen[i]) == 0 {
			continue
		}
		if !reflect.DeepEqual(seen[i], keys) {
			t.Errorf("view %d: got keys %q; want %q", i, seen[i], keys)
		}
	}
}
