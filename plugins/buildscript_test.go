package plugins

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBuildExamplesScript runs plugins/build-examples.sh (the Makefile's
// plugins target) and loads what it built.
func TestBuildExamplesScript(t *testing.T) {
	out := t.TempDir()
	if b, err := exec.Command("sh", "build-examples.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("build-examples.sh: %v\n%s", err, b)
	}
	var specs []Spec
	for _, name := range append(exampleNames, "hello") {
		path := filepath.Join(out, name+".wasm")
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, Spec{Name: name, Path: path})
	}
	h, err := Load(context.Background(), specs, Options{Logger: testLogger(t), CacheDir: filepath.Join(wasmDir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	h.Close(context.Background())
}
