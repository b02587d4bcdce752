package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the driver started: the upstream, the receiver, a load run or the proxy under test.
type child struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // from Wait, once done is closed
}

// startChild starts argv with env added to the driver's own environment. Its stderr is kept (the tail
// of it) for error messages; stdout goes to stdout if it is not nil.
func startChild(name string, argv, env []string, stdout *bytes.Buffer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttr()
	c := &child{name: name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// failure describes how the child ended, with the tail of what it wrote on stderr.
func (c *child) failure() error {
	msg := strings.TrimSpace(c.stderr.String())
	if msg != "" {
		msg = ":\n" + msg
	}
	return fmt.Errorf("%s exited (%v)%s", c.name, c.err, msg)
}

// stop sends SIGTERM and waits for the process to exit, killing it after grace.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", c.name, grace)
	}
}

// wait waits for the child to exit and reports a non-zero exit as an error.
func (c *child) wait(ctx context.Context) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop(2 * time.Second)
		return ctx.Err()
	}
	if c.err != nil {
		return c.failure()
	}
	return nil
}

// waitReady polls check until it succeeds, the child exits, or timeout passes.
func (c *child) waitReady(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if c.exited() {
			return c.failure()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; stderr: %s", c.name, timeout, err, strings.TrimSpace(c.stderr.String()))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// httpOK returns a readiness check that GETs url and wants a 200.
func httpOK(url string) func() error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// tcpOpen returns a readiness check that connects to addr.
func tcpOpen(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procUsage is what /proc says about a process and its descendants (nginx's workers are children of
// its master).
type procUsage struct {
	CPUTicks uint64 // user + system time, in clock ticks (USER_HZ)
	HWMKiB   uint64 // peak resident set size (VmHWM), summed over the processes
}

// userHZ is the unit of the times in /proc/PID/stat; Linux fixes it at 100 for user space on every
// architecture sidetrace runs on.
const userHZ = 100

func ticksToDuration(t uint64) time.Duration { return time.Duration(t) * time.Second / userHZ }

// readProcUsage sums CPU time (/proc/PID/stat) and peak RSS (/proc/PID/status) over pid and its
// descendants.
func readProcUsage(pid int) (procUsage, error) {
	pids, err := processTree(pid)
	if err != nil {
		return procUsage{}, err
	}
	var u procUsage
	for _, p := range pids {
		st, err := readStat(p)
		if err != nil {
			if p == pid {
				return procUsage{}, err
			}
			continue // a child that exited meanwhile
		}
		u.CPUTicks += st.utime + st.stime
		if hwm, err := readHWM(p); err == nil {
			u.HWMKiB += hwm
		}
	}
	return u, nil
}

type procStat struct {
	ppid         int
	utime, stime uint64
}

// readStat reads /proc/PID/stat (proc(5)). The command name may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	// Fields after the name, numbered as in proc(5): 3 state, 4 ppid, ..., 14 utime, 15 stime.
	f := strings.Fields(string(b[i+1:]))
	const first, ppidField, utimeField, stimeField = 3, 4, 14, 15
	if len(f) <= stimeField-first {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var st procStat
	var errs [3]error
	st.ppid, errs[0] = strconv.Atoi(f[ppidField-first])
	st.utime, errs[1] = strconv.ParseUint(f[utimeField-first], 10, 64)
	st.stime, errs[2] = strconv.ParseUint(f[stimeField-first], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// readHWM reads VmHWM, in KiB, from /proc/PID/status.
func readHWM(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// processTree returns pid and all its descendants.
func processTree(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(p)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], p)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// readHostCPU returns the busy and total time of cpus (all of them if nil), in ticks, from
// /proc/stat: busy is everything but idle and iowait, steal included.
func readHostCPU(cpus []int) (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	want := map[string]bool{}
	for _, c := range cpus {
		want["cpu"+strconv.Itoa(c)] = true
	}
	found := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || !(cpus == nil && f[0] == "cpu" || want[f[0]]) {
			continue
		}
		// cpuN user nice system idle iowait irq softirq steal [guest guest_nice, counted in user]
		const idle, iowait, steal = 4, 5, 8
		if len(f) <= steal {
			return 0, 0, fmt.Errorf("/proc/stat: unexpected line %q", line)
		}
		for i := 1; i <= steal; i++ {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			total += v
			if i != idle && i != iowait {
				busy += v
			}
		}
		found++
	}
	if found == 0 || cpus != nil && found != len(want) {
		return 0, 0, fmt.Errorf("/proc/stat: found %d of the CPUs %v", found, cpus)
	}
	return busy, total, nil
}
