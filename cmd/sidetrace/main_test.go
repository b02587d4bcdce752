package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidetrace/sidetrace/config"
)

// build compiles the real binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sidetrace")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestHelp_ListsEveryVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d; want 0", code)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h does not list %s", v)
		}
	}
}

func TestBadConfig_ExitsWithOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(nil, []string{"SIDETRACE_UPSTREAM=http://127.0.0.1:1", "SIDETRACE_DRAIN_TIMEOUT=forever"}, &out, &errb)
	want := `sidetrace: SIDETRACE_DRAIN_TIMEOUT: "forever" is not a valid duration (want e.g. 500ms, 5s, 2m)` + "\n"
	if code == 0 || errb.String() != want {
		t.Errorf("exit %d, stderr %q; want non-zero and %q", code, errb.String(), want)
	}
	errb.Reset()
	code = run(nil, []string{"SIDETRACE_UPSTREAM=http://127.0.0.1:1", "OTEL_TRACES_SAMPLER=sometimes", "SIDETRACE_INBOUND_ADDR=127.0.0.1:0", "SIDETRACE_EGRESS_ADDR=off", "SIDETRACE_ADMIN_ADDR=off"}, &out, &errb)
	if code == 0 || !strings.HasPrefix(errb.String(), "sidetrace: OTEL_TRACES_SAMPLER: ") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want one line naming OTEL_TRACES_SAMPLER", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"--frobnicate"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown argument: exit %d; want 2", code)
	}
}

// The binary serves, turns ready, drains on SIGTERM with a request in flight, flushes its spans, and exits 0.
func TestBinary_ServesAndDrainsOnSIGTERM(t *testing.T) {
	bin := build(t)
	inFlight := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inFlight)
			time.Sleep(200 * time.Millisecond)
		}
		fmt.Fprint(w, "ok")
	}))
	defer up.Close()
	inbound, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"SIDETRACE_UPSTREAM=" + up.URL, "SIDETRACE_INBOUND_ADDR=" + inbound, "SIDETRACE_ADMIN_ADDR=" + admin,
		"SIDETRACE_EGRESS_ADDR=off", "OTEL_SERVICE_NAME=bin-test",
	}
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()

	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := c.Get("http://" + admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 10s; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := c.Get("http://" + inbound + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	done := make(chan string, 1)
	go func() {
		res, err := c.Get("http://" + inbound + "/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- string(b)
	}()
	<-inFlight
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "ok" {
		t.Errorf("in-flight request during drain: got %q; want ok", got)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("exit: %v; want 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	var paths []string
	for l := range lines {
		if l["msg"] == "request" {
			paths = append(paths, fmt.Sprint(l["path"]))
		}
	}
	if strings.Join(paths, ",") != "/fast,/slow" {
		t.Errorf("access log paths: got %v; want /fast,/slow", paths)
	}
}

// The README documents every variable the binary reads.
func TestREADME_ListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("README.md does not document %s", v)
		}
	}
}
