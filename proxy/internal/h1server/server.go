package h1server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 on its listeners, handing connections it does not serve itself to Fallback.
type Server struct {
	// Handler serves the requests of the fast path; Fallback.Handler is normally the same handler.
	Handler http.Handler
	// Fallback serves every connection handed over; it must not be serving a listener of its own.
	Fallback *http.Server
	// ReadHeaderTimeout bounds the wait for the rest of a request head once its first byte came (0 = none).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive connection (0 = ReadHeaderTimeout).
	IdleTimeout time.Duration
	// WatchAfter is how long a handler runs before its connection is watched for the client going away,
	// which cancels the request's context (0 = 5ms).
	WatchAfter time.Duration
	// Logger receives handler panics (nil = discarded).
	Logger *slog.Logger

	initOnce     sync.Once
	handoff      *handoffListener
	fallbackOnce sync.Once
	fallbackDone chan struct{}

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	date      atomic.Pointer[cachedDate]

	// The scanner starts the watch of connections whose handler has run for WatchAfter; it ticks every
	// WatchAfter while requests come, and sleeps after a tick without any. It looks only at the connections
	// in watched, those armed or reading since its last tick: going through every connection at each tick,
	// on cold caches, had cost half a percent of the CPU at 5000 requests/s over 64 connections.
	watchMu    sync.Mutex
	watched    []*conn
	scanOnce   sync.Once
	stopOnce   sync.Once
	scanStop   chan struct{}
	scanDone   chan struct{}
	tick       atomic.Uint64
	arms       atomic.Uint64
	scanAsleep atomic.Bool
	kick       chan struct{}
}

// ErrServerClosed is http.ErrServerClosed: Serve returns it after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.handoff = newHandoffListener()
		s.fallbackDone = make(chan struct{})
		s.scanStop, s.scanDone, s.kick = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		if s.WatchAfter <= 0 {
			s.WatchAfter = 5 * time.Millisecond
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Serve accepts connections on ln until Shutdown or Close, and returns ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	s.scanOnce.Do(func() { go s.scan() })
	base := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() { // EMFILE and the like: wait, as net/http does
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Logger.Warn("accept failed; retrying", "error", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		cc := s.newConn(c, base)
		if cc == nil {
			c.Close()
			continue
		}
		go cc.serve()
	}
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// handOver gives c (with the bytes already read from it) to the fallback server.
func (s *Server) handOver(c net.Conn) {
	s.fallbackOnce.Do(func() {
		go func() {
			defer close(s.fallbackDone)
			_ = s.Fallback.Serve(s.handoff)
		}()
	})
	s.handoff.give(c)
}

// Shutdown stops accepting, closes idle connections, waits for the requests in flight to finish and then
// shuts the fallback server down the same way; ctx bounds the wait (its error is returned when it ends first,
// with the busy connections left open, as http.Server.Shutdown does).
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()

	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 500*time.Millisecond)
			t.Reset(wait)
		}
	}
	err := <-fallback
	s.waitFallback(ctx)
	return err
}

// Close closes the listeners and every connection at once, the fallback server's included.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	err := s.Fallback.Close()
	s.waitFallback(context.Background())
	return err
}

func (s *Server) stop() {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.handoff.Close()
	s.fallbackOnce.Do(func() { close(s.fallbackDone) }) // never started: nothing to wait for
	s.scanOnce.Do(func() { close(s.scanDone) })         // never started
	s.stopOnce.Do(func() { close(s.scanStop) })
	<-s.scanDone
}

// armed wakes the scanner when it sleeps; called after a connection armed its watch, with list when the
// connection is not in s.watched yet.
func (s *Server) armed(c *conn, list bool) {
	if list {
		s.watchMu.Lock()
		s.watched = append(s.watched, c)
		s.watchMu.Unlock()
	}
	s.arms.Add(1)
	if s.scanAsleep.Load() && s.scanAsleep.CompareAndSwap(true, false) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Server) scan() {
	defer close(s.scanDone)
	t := time.NewTicker(s.WatchAfter)
	defer t.Stop()
	lastArms := s.arms.Load()
	for {
		select {
		case <-s.scanStop:
			return
		case <-t.C:
		}
		tick := s.tick.Add(1)
		busy := false
		s.watchMu.Lock()
		kept := s.watched[:0]
		for _, c := range s.watched {
			c.wmu.Lock()
			switch c.wstate {
			case 1:
				busy = true
				if tick-c.armedTick >= 2 { // armed a full tick ago at least
					c.startWatch()
				}
				kept = append(kept, c)
			case 2:
				busy = true
				kept = append(kept, c)
			default:
				c.listed = false
			}
			c.wmu.Unlock()
		}
		clear(s.watched[len(kept):])
		s.watched = kept
		s.watchMu.Unlock()
		if arms := s.arms.Load(); busy || arms != lastArms {
			lastArms = arms
			continue
		}
		// A tick without requests: sleep until one arms. An arm between the load above and the store
		// below is seen by the second load; one after it sees the flag and kicks.
		s.scanAsleep.Store(true)
		if s.arms.Load() != lastArms {
			if !s.scanAsleep.CompareAndSwap(true, false) {
				<-s.kick
			}
			continue
		}
		t.Stop()
		select {
		case <-s.scanStop:
			return
		case <-s.kick:
		}
		t.Reset(s.WatchAfter)
	}
}

func (s *Server) waitFallback(ctx context.Context) {
	select {
	case <-s.fallbackDone:
	case <-ctx.Done():
	}
}

// closeIdle closes the connections waiting for a request, and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		} else if c.state.Load() == stateNew && time.Since(c.accepted) > 5*time.Second {
			// A connection that never sent a byte: net/http gives it 5s too.
			if c.state.CompareAndSwap(stateNew, stateClosed) {
				c.rwc.Close()
			}
		}
	}
	return len(s.conns) == 0
}

// handoffListener is the net.Listener the fallback server accepts handed-over connections from.
type handoffListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "h1server handoff" }

// replayConn is a handed-over connection: the bytes the fast path read come first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close the connection after an error response, as it does for a TCP one.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
