package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection, the first wrapped.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	w := Conn(c)
	if _, raw := w.(*conn); !raw && isLinux {
		t.Fatalf("Conn returned %T; want the raw wrapper on linux", w)
	}
	return w, peer
}

func TestConn_MovesMoreThanTheSocketBuffersBothWays(t *testing.T) {
	c, peer := pair(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: writes meet a full send buffer
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	if n, err := c.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(data))
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the peer read %d bytes; want the %d written", len(b), len(data))
	}

	go func() {
		peer.Write(data)
		peer.Close()
	}()
	b, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadAll: %d bytes, %v; want %d, nil", len(b), err, len(data))
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after the peer closed: %d, %v; want 0, EOF", n, err)
	}
}

func TestConn_ErrorsAreNetConnErrors(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v; want a timeout net.Error", err)
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v; want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v; want net.ErrClosed", err)
	}
}

func TestConn_WriteToAResetPeerFails(t *testing.T) {
	c, peer := pair(t)
	peer.(*net.TCPConn).SetLinger(0) // close with a reset
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ { // the first write may land before the reset is seen
		_, err = c.Write([]byte("x"))
		time.Sleep(time.Millisecond)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Errorf("Write to a reset peer: %v; want a write *net.OpError", err)
	}
}

func BenchmarkLoopbackPingPong(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "net.Conn"
		if raw {
			name = "rawio"
		}
		b.Run(name, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				io.Copy(s, s)
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if raw {
				c = Conn(c)
			}
			buf := make([]byte, 1024)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(buf)
				io.ReadFull(c, buf)
			}
		})
	}
}
