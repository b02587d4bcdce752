package plugins

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"testing"
)

// TestABI_SDKMirrorAgrees checks that the Go SDK's copy of the ABI constants
// (wasm-sdk/go/abi, a separate module) declares exactly the host's.
func TestABI_SDKMirrorAgrees(t *testing.T) {
	host := abiConsts(t, filepath.Join("internal", "abi", "abi.go"))
	sdk := abiConsts(t, filepath.Join("..", "wasm-sdk", "go", "abi", "abi.go"))
	if len(host) < 40 {
		t.Fatalf("found only %d constants in the host's abi.go", len(host))
	}
	for name, v := range host {
		if w, ok := sdk[name]; !ok {
			t.Errorf("%s: missing from wasm-sdk/go/abi", name)
		} else if v != w {
			t.Errorf("%s: sdk %s; host %s", name, w, v)
		}
	}
	for name := range sdk {
		if _, ok := host[name]; !ok {
			t.Errorf("%s: in wasm-sdk/go/abi but not in plugins/internal/abi", name)
		}
	}
}

// abiConsts type-checks one file and returns its constants' values.
func abiConsts(t *testing.T, path string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{}).Check("abi", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok {
			out[name] = constant.ToInt(c.Val()).ExactString()
			if c.Val().Kind() == constant.String {
				out[name] = c.Val().ExactString()
			}
		}
	}
	return out
}
