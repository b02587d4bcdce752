package proxy

import (
	"strings"
	"testing"
)

// Generated correlation ids are UUIDv4 (RFC 9562: version 4, variant 10) and do not repeat.
func TestNewUUID(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		u := newUUID()
		if len(u) != 36 || u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-' || u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Fatalf("%q is not a UUIDv4", u)
		}
		if seen[u] {
			t.Fatalf("%q repeated", u)
		}
		seen[u] = true
	}
}
