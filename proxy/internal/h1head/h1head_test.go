package h1head

import (
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestHeadEnd(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
		{"HTTP/1.1 200 OK\r\n\r\n", 19},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0}, // more to come
		{"GET / HTTP/1.1\r\nHost: a\r", 0},
		{"", 0},
		{"GET / HTTP/1.1\nHost: a\n\n", -1},          // bare LF
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", -1},      // bare LF in a field line
		{"\r\nGET / HTTP/1.1\r\n\r\n", -1},           // empty line first
		{"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", -1}, // obs-fold
		{"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", -1},
	} {
		if got := HeadEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("HeadEnd(%q) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

// What the fast paths take of a field: the length parser is ours; tokens, values and the close token are
// httpguts's, as in net/http, and the cases document them.
func TestFieldPieces(t *testing.T) {
	for _, tt := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1024", 1024, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false}, {"+1", 0, false}, {"-1", 0, false}, {" 1", 0, false}, {"1 ", 0, false},
		{"0x10", 0, false}, {"9223372036854775808", 0, false},
	} {
		if n, ok := ParseContentLength(tt.in); n != tt.n || ok != tt.ok {
			t.Errorf("ParseContentLength(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"close", true}, {"Keep-Alive, CLOSE", true}, {" close ,x", true}, {"closed", false}, {"", false}, {"keep-alive", false},
	} {
		if got := httpguts.HeaderValuesContainsToken([]string{tt.v}, "close"); got != tt.want {
			t.Errorf("HasToken(%q, close) = %v; want %v", tt.v, got, tt.want)
		}
	}
	for _, tt := range []struct {
		s          string
		token, val bool
	}{
		{"Content-Type", true, true}, {"X_Y.z~!#$%&'*+^`|", true, true}, {"", false, true},
		{"Bad Name", false, true}, {"a:b", false, true}, {"caf\xc3\xa9", false, true},
		{"a\x00b", false, false}, {"a\x7fb", false, false}, {"tab\there", false, true}, {"new\nline", false, false},
	} {
		if got := httpguts.ValidHeaderFieldName(tt.s); got != tt.token {
			t.Errorf("IsToken(%q) = %v; want %v", tt.s, got, tt.token)
		}
		if got := httpguts.ValidHeaderFieldValue(tt.s); got != tt.val {
			t.Errorf("ValidFieldValue(%q) = %v; want %v", tt.s, got, tt.val)
		}
	}
}

// TrimOWS is strings.Trim(v, " \t").
func TestTrimOWS(t *testing.T) {
	for _, v := range []string{"", " ", "\t", " \t \t", "a", " a", "a ", "\ta\t", " \t a b \t ", "a\t \tb", "\ra\n", " \u00a0a\u00a0 "} {
		if got, want := TrimOWS(v), strings.Trim(v, " \t"); got != want {
			t.Errorf("TrimOWS(%q) = %q; want %q", v, got, want)
		}
	}
}
