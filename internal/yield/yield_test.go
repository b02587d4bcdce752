package yield

import (
	"net"
	"runtime"
	"testing"
	"time"
)

func TestClock_DueAfterEvery(t *testing.T) {
	var c Clock
	if c.Due() {
		t.Fatal("due at the start")
	}
	time.Sleep(2 * Every)
	if !c.Due() {
		t.Fatal("not due after twice Every")
	}
	c.Yield()
	if c.Due() && time.Since(c.last) < Every {
		t.Fatal("due right after a yield")
	}
}

// On one P, a goroutine whose bytes have arrived in the network poller runs while a busy loop yields,
// well before the runtime would force a poll (10 ms).
func TestYield_LetsNetworkWaitersRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	ran := make(chan struct{})
	go func() {
		server.Read(make([]byte, 1)) // parks in the poller
		close(ran)
	}()
	time.Sleep(5 * time.Millisecond) // the reader is parked
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var c Clock
	for start := time.Now(); time.Since(start) < 5*time.Millisecond; {
		select {
		case <-ran:
			return
		default:
		}
		if c.Due() {
			c.Yield()
		}
	}
	t.Fatal("the reader did not run within 5 ms of yielding work")
}
