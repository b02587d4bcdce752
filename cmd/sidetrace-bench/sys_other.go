//go:build !linux

package main

import (
	"syscall"
	"time"
)

func preciseSleep(d time.Duration) { time.Sleep(d) }

func childAttr() *syscall.SysProcAttr { return nil }
