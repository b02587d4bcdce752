// Package sidecartest starts real sidecars in a test process: configured through the same environment
// variables as the binary, listening on loopback ports the kernel picks, shut down when the test ends.
package sidecartest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidetrace/sidetrace/config"
	"github.com/sidetrace/sidetrace/internal/sidecar"
)

// Sidecar is a running sidecar with its logs captured.
type Sidecar struct {
	*sidecar.Sidecar
	access, log *syncBuffer
}

// Defaults are the variables Start sets before the test's own: loopback listeners on free ports and a short
// export delay so spans arrive quickly.
var Defaults = []string{
	"SIDETRACE_INBOUND_ADDR=127.0.0.1:0",
	"SIDETRACE_EGRESS_ADDR=127.0.0.1:0",
	"SIDETRACE_ADMIN_ADDR=127.0.0.1:0",
	"OTEL_BSP_SCHEDULE_DELAY=20",
	"SIDETRACE_PLUGIN_WATCH=0",
}

// Start loads the configuration from Defaults plus env (later entries win) and starts a sidecar.
func Start(t testing.TB, env ...string) *Sidecar {
	t.Helper()
	cfg, err := config.Load(append(append([]string(nil), Defaults...), env...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := &Sidecar{access: &syncBuffer{}, log: &syncBuffer{}}
	s.Sidecar, err = sidecar.Start(context.Background(), cfg, sidecar.Options{Stdout: s.access, Stderr: s.log})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// URL returns http://ADDR of the named listener ("inbound", "egress", "admin", "route ADDR").
func (s *Sidecar) URL(name string) string { return "http://" + s.Addrs()[name] }

// Addr returns the bound address of the named listener.
func (s *Sidecar) Addr(name string) string { return s.Addrs()[name] }

// AccessLog returns the access-log lines written so far, decoded.
func (s *Sidecar) AccessLog() []map[string]any { return s.access.lines() }

// Log returns sidetrace's own log so far.
func (s *Sidecar) Log() string { return s.log.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// WaitAccessLog waits until at least n access-log lines were written, and returns them.
func (s *Sidecar) WaitAccessLog(t testing.TB, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := s.AccessLog()
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecartest: %d access-log lines after 5s, want %d:\n%s", len(lines), n, s.access.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
