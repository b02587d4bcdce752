package main

import (
	"syscall"
	"time"
)

// childAttr makes the kernel send SIGTERM to a child if the driver dies without stopping it, so a
// killed benchmark leaves no proxy or upstream behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// prSetTimerSlack is PR_SET_TIMERSLACK from linux/prctl.h.
const prSetTimerSlack = 29

// preciseSleep sleeps for d in nanosleep(2), blocking the calling thread. It first drops the
// thread's timer slack from the default 50µs to 1ns (the goroutine may be on any thread, so every
// time), so that the kernel wakes it as close to the deadline as it can.
func preciseSleep(d time.Duration) {
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
