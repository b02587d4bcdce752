//go:build !linux

package rawio

import "net"

func wrap(c net.Conn) net.Conn { return c }

const isLinux = false
