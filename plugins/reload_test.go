package plugins

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// install copies src to dst atomically (write, then rename), as a deploy would.
func install(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func TestReload_SwapsUnderLoadWithoutFailures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wasm")
	install(t, wat("hello"), path)
	h := load(t, Options{PoolSize: 4, Timeout: time.Second}, Spec{Name: "p", Path: path})

	var stop atomic.Bool
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var x Exchange
			for !stop.Load() {
				x.Reset()
				err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x)
				if err == nil {
					err = h.OnResponse(context.Background(), &Response{Status: 200}, &x)
				}
				calls.Add(1)
				if err != nil || len(x.Errors) > 0 {
					if failures.Add(1) == 1 {
						t.Logf("first failure: %v %q", err, x.Errors)
					}
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	install(t, wat("faulty"), path) // mode 0 without config: a plugin that edits nothing
	if err := h.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed across the reload", failures.Load(), calls.Load())
	}
	var x Exchange
	h.OnRequest(context.Background(), &Request{Method: "GET"}, &x)
	if len(x.Attributes) != 0 {
		t.Errorf("after reload: got attributes %v; want none (the new module)", x.Attributes)
	}
	x.Reset()
	st := h.Stats().Plugin("p")
	if st.Reloads != 1 || st.Retired != 0 {
		t.Errorf("got %d reloads, %d retired instances; want 1, 0 (old generation closed)", st.Reloads, st.Retired)
	}
}

func TestReload_InFlightExchangeFinishesOnOldModule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wasm")
	install(t, wat("hello"), path)
	h := load(t, Options{}, Spec{Name: "p", Path: path})
	var x Exchange
	if err := h.OnRequest(context.Background(), &Request{Method: "PUT"}, &x); err != nil {
		t.Fatal(err)
	}
	install(t, wat("faulty"), path)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats().Plugin("p"); st.Retired != 1 {
		t.Errorf("retired instances while pinned: got %d; want 1", st.Retired)
	}
	if err := h.OnResponse(context.Background(), &Response{Status: 201}, &x); err != nil {
		t.Fatal(err)
	}
	want := []attribute.KeyValue{attribute.String("wat.method", "PUT"), attribute.Int64("wat.status", 201)}
	if d := diff(x.Attributes, want); d != "" {
		t.Errorf("Attributes %s", d)
	}
	if st := h.Stats().Plugin("p"); st.Retired != 0 {
		t.Errorf("retired instances after the last exchange: got %d; want 0", st.Retired)
	}
}

func TestReload_BrokenReplacementKeepsOldModule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wasm")
	install(t, wat("hello"), path)
	h := load(t, Options{}, Spec{Name: "p", Path: path})
	for _, bad := range []string{wat("abi_v2"), wat("missing_export")} {
		install(t, bad, path)
		err := h.Reload(context.Background())
		if err == nil {
			t.Fatalf("Reload of %s: got nil error", filepath.Base(bad))
		}
		var x Exchange
		if err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x); err != nil || len(x.Errors) != 0 {
			t.Fatalf("OnRequest: %v %q", err, x.Errors)
		}
		if d := diff(x.Attributes, []attribute.KeyValue{attribute.String("wat.method", "GET")}); d != "" {
			t.Errorf("old module not running: %s", d)
		}
		x.Reset()
		// A second Reload of the same broken file does not retry (or log) again.
		if err := h.Reload(context.Background()); err != nil {
			t.Errorf("second Reload: got %v; want nil", err)
		}
	}
	if st := h.Stats().Plugin("p"); st.ReloadFailures != 2 || st.Reloads != 0 {
		t.Errorf("got %d reload failures, %d reloads; want 2, 0", st.ReloadFailures, st.Reloads)
	}
}

func TestWatch_ReloadsOnChangeAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.wasm")
	install(t, wat("hello"), path)
	h := load(t, Options{}, Spec{Name: "p", Path: path})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Watch(ctx, 5*time.Millisecond); close(done) }()
	install(t, wat("faulty"), path)
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Plugin("p").Reloads == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload the changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
