// Package rawio reads and writes non-blocking sockets without telling the Go scheduler about the system
// call.
//
// net.Conn's Read and Write go through syscall.Syscall, which marks the goroutine's P as in a system call.
// A loopback write that wakes the peer takes 10 to 20µs on a virtual machine; when the scheduler's monitor
// sees a P in a system call across one of its 20µs ticks, it takes the P away and wakes another thread to
// run it, and the first thread must get it back afterwards: two futex calls, two context switches, and a
// monitor that keeps polling every 20µs. On a proxy pinned to one CPU, that was a quarter of the system calls
// at a fixed 5000 requests/s. A non-blocking socket call never waits in the kernel, so it is made with
// syscall.RawSyscall inside syscall.RawConn's Read and Write, which still wait in the netpoller (and honour
// deadlines) when the socket is not ready.
package rawio

import "net"

// Conn wraps c so that Read and Write use raw system calls where the platform allows it; other methods are
// c's. It returns c itself when c offers no syscall.RawConn.
func Conn(c net.Conn) net.Conn { return wrap(c) }
