//go:build !wasip1

package main

import (
	"reflect"
	"strings"
	"testing"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

func TestRedact_Defaults(t *testing.T) {
	if _, err := sdk.RunInit(""); err != nil {
		t.Fatal(err)
	}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
	tests := []struct {
		name  string
		key   string
		value sdk.Value
		want  sdk.Value
	}{
		{"email", "msg", sdk.String("contact bob.smith+x@mail.example.co.uk now"), sdk.String("contact [REDACTED:email] now")},
		{"card spaced", "msg", sdk.String("card 4111 1111 1111 1111 ok"), sdk.String("card [REDACTED:card] ok")},
		{"card dashed", "msg", sdk.String("5500-0000-0000-0004"), sdk.String("[REDACTED:card]")},
		{"card bad luhn kept", "msg", sdk.String("order 4111111111111112"), sdk.String("order 4111111111111112")},
		{"ssn", "msg", sdk.String("ssn 123-45-6789."), sdk.String("ssn [REDACTED:ssn].")},
		{"ssn invalid area kept", "msg", sdk.String("id 666-45-6789"), sdk.String("id 666-45-6789")},
		{"bearer", "msg", sdk.String("Authorization: Bearer abc.def-123"), sdk.String("Authorization: Bearer [REDACTED:bearer]")},
		{"jwt", "msg", sdk.String("token=" + jwt), sdk.String("token=[REDACTED:jwt]")},
		{"authorization header", "http.request.header.authorization", sdk.StringSlice([]string{"Basic dXNlcjpwYXNz"}), sdk.StringSlice([]string{"[REDACTED:header]"})},
		{"cookie header string", "http.request.header.cookie", sdk.String("sid=1"), sdk.String("[REDACTED:header]")},
		{"query params", "url.query", sdk.String("q=shoes&password=hunter2&api_key=k1&page=2"), sdk.String("q=shoes&password=[REDACTED:param]&api_key=[REDACTED:param]&page=2")},
		{"url.full", "url.full", sdk.String("https://h/p?access_token=t0k&x=1#frag"), sdk.String("https://h/p?access_token=[REDACTED:param]&x=1#frag")},
		{"slice element", "tags", sdk.StringSlice([]string{"ok", "a@b.io"}), sdk.StringSlice([]string{"ok", "[REDACTED:email]"})},
		{"untouched int", "n", sdk.Int64(4111111111111111), sdk.Int64(4111111111111111)},
		{"untouched text", "msg", sdk.String("GET /api/v1/items 200"), sdk.String("GET /api/v1/items 200")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := sdk.RunSpanEnd(sdk.TestSpan{Attributes: []sdk.Attribute{{Key: tt.key, Value: tt.value}}})
			if want := []sdk.Attribute{{Key: tt.key, Value: tt.want}}; !reflect.DeepEqual(got.Attributes, want) {
				t.Errorf("got %+v; want %+v", got.Attributes, want)
			}
		})
	}
}

func TestRedact_ConfigKeysPatternsAndEvents(t *testing.T) {
	if _, err := sdk.RunInit(`{"keys":["enduser.id"],"patterns":{"phone":"\\+1-\\d{3}-\\d{3}-\\d{4}"},"typed":false}`); err != nil {
		t.Fatal(err)
	}
	got, res := sdk.RunSpanEnd(sdk.TestSpan{
		Attributes: []sdk.Attribute{{Key: "enduser.id", Value: sdk.String("u-42")}, {Key: "note", Value: sdk.String("call +1-555-123-4567")}},
		Events:     []sdk.Event{{Name: "exception", Attributes: []sdk.Attribute{{Key: "exception.message", Value: sdk.String("no user x@y.org")}}}},
	})
	if res.Failed != "" {
		t.Fatal(res.Failed)
	}
	want := []sdk.Attribute{{Key: "enduser.id", Value: sdk.String("[REDACTED]")}, {Key: "note", Value: sdk.String("call [REDACTED]")}}
	if !reflect.DeepEqual(got.Attributes, want) {
		t.Errorf("attributes: got %+v; want %+v", got.Attributes, want)
	}
	if m := got.Events[0].Attributes[0].Value.AsString(); m != "no user [REDACTED]" {
		t.Errorf("event: got %q; want %q", m, "no user [REDACTED]")
	}
}

func TestRedact_BadConfigRefused(t *testing.T) {
	for _, cfg := range []string{`{"patterns":{"x":"("}}`, `{"nope":1}`, `[]`} {
		if _, err := sdk.RunInit(cfg); err == nil || !strings.HasPrefix(err.Error(), "pii-redact: config: ") {
			t.Errorf("%s: got %v; want a pii-redact: config: error", cfg, err)
		}
	}
}

func BenchmarkSpanEnd(b *testing.B) {
	if _, err := sdk.RunInit(""); err != nil {
		b.Fatal(err)
	}
	s := sdk.TestSpan{Name: "GET /cart", Kind: sdk.KindServer, Attributes: []sdk.Attribute{
		{Key: "http.request.method", Value: sdk.String("GET")},
		{Key: "url.full", Value: sdk.String("https://shop/cart?id=1")},
		{Key: "url.query", Value: sdk.String("id=1")},
		{Key: "http.route", Value: sdk.String("/cart")},
		{Key: "server.address", Value: sdk.String("shop")},
		{Key: "http.response.status_code", Value: sdk.Int64(200)},
		{Key: "user_agent.original", Value: sdk.String("Mozilla/5.0 (X11; Linux x86_64)")},
		{Key: "tenant.id", Value: sdk.String("acme")},
		{Key: "app.client_class", Value: sdk.String("mobile")},
		{Key: "deployment.environment", Value: sdk.String("prod")},
	}}
	b.ReportAllocs()
	for b.Loop() {
		sdk.RunSpanEnd(s)
	}
}

func TestEmails(t *testing.T) {
	if _, err := sdk.RunInit(""); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"a@b.co":                            "[REDACTED:email]",
		"x a.b+c@mail.example.org. y":       "x [REDACTED:email]. y",
		"two a@b.io,c@d.io":                 "two [REDACTED:email],[REDACTED:email]",
		"not @ an email, a@b, a@b.c, @x.io": "not @ an email, a@b, a@b.c, @x.io",
		"user@localhost":                    "user@localhost",
		"a@b.c0m":                           "a@b.c0m",
		"a@@b.io":                           "a@@b.io",
	} {
		got, _ := sdk.RunSpanEnd(sdk.TestSpan{Attributes: []sdk.Attribute{{Key: "m", Value: sdk.String(in)}}})
		if g := got.Attributes[0].Value.AsString(); g != want {
			t.Errorf("%q: got %q; want %q", in, g, want)
		}
	}
}

func TestRedact_LongValuesTruncatedBeforeScanning(t *testing.T) {
	if _, err := sdk.RunInit(`{"max_value_bytes":10}`); err != nil {
		t.Fatal(err)
	}
	got, _ := sdk.RunSpanEnd(sdk.TestSpan{Attributes: []sdk.Attribute{{Key: "m", Value: sdk.String("a@b.io 12345 é")}, {Key: "s", Value: sdk.String("short")}}})
	want := []sdk.Attribute{{Key: "m", Value: sdk.String("[REDACTED:email] 123[TRUNCATED]")}, {Key: "s", Value: sdk.String("short")}}
	if !reflect.DeepEqual(got.Attributes, want) {
		t.Errorf("got %+v; want %+v", got.Attributes, want)
	}
}

// classifySlow is classify one byte at a time.
func classifySlow(s string) (digits int, f uint8) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '@':
			f |= hasAt
		case c == '-':
			f |= hasDash
		case c == '.':
			f |= hasDot
		case c == ' ' || c == '\t':
			f |= hasSpace
		case c == 'b' || c == 'B':
			f |= hasB
		case c == 'J':
			f |= hasJ
		}
	}
	return digits, f
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", "a@b.io 4111-1111", "Bearer x\t", "\xff\xb0\xc0\x80/:09@AZaz`{", strings.Repeat("0123456789-. @bB\t", 5)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d1, f1 := classify(s)
		d2, f2 := classifySlow(s)
		if d1 != d2 || f1 != f2 {
			t.Fatalf("%q: classify %d %06b; byte by byte %d %06b", s, d1, f1, d2, f2)
		}
		for _, c := range []byte{'@', 0, 0x80, 'J'} {
			if got, want := indexByte(s, c), strings.IndexByte(s, c); got != want {
				t.Fatalf("indexByte(%q, %q) = %d; want %d", s, c, got, want)
			}
		}
	})
}
