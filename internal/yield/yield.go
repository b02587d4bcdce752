// Package yield lets a long background loop give the CPU to requests, including those whose bytes are still
// in the network poller.
//
// With GOMAXPROCS=1 (a sidecar pinned to one core), a goroutine encoding or post-processing a batch of
// hundreds of spans holds the only P for milliseconds. runtime.Gosched does not help the requests that wait
// in the poller: it puts the goroutine on the global run queue, which the scheduler takes from before it
// polls the network (a poll is otherwise forced only after 10 ms). A short sleep does: while the sleeping
// goroutine's timer is pending, the scheduler runs what is runnable, then polls. On an idle core a sleep
// lasts about a millisecond (the poller's timeout has millisecond resolution), which only delays background
// work nobody waits for.
package yield

import "time"

// Every is how much work a loop does between yields: a request that arrives meanwhile waits at most about
// this long for the loop.
const Every = 50 * time.Microsecond

// Clock tells a loop when to yield. The zero value is ready; it starts counting at the first Due.
type Clock struct{ last time.Time }

// Due reports whether the loop has run for Every since it started or last yielded.
func (c *Clock) Due() bool {
	now := time.Now()
	if c.last.IsZero() {
		c.last = now
		return false
	}
	return now.Sub(c.last) >= Every
}

// pause is the sleep of a yield: long enough that the timer has not fired by the time the scheduler looks
// for work (it checks timers before its run queue, and the run queue before the poller, so a timer already
// due would run this goroutine again before the poller is asked).
const pause = 20 * time.Microsecond

// Yield lets other goroutines, and the network poller, run; it restarts the count.
func (c *Clock) Yield() {
	time.Sleep(pause)
	c.last = time.Now()
}
