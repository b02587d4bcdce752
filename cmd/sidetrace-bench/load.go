package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig says what load to generate. Rate == 0 means closed loop: Conc workers each send the next
// request as soon as the previous answer is read. Rate > 0 means open loop: requests are scheduled at
// fixed intervals of 1/Rate and their latency counts from the scheduled time, so a stall in the server
// shows up in the percentiles instead of silently slowing the generator down (coordinated omission).
type loadConfig struct {
	URL      string
	Conc     int           // workers, each with its own connection
	Duration time.Duration // measured time
	Rate     float64       // requests per second; 0 for closed loop
	H2C      bool          // HTTP/2 with prior knowledge instead of HTTP/1.1
	Conns    int           // h2c only: connections the workers share (through net/http's client); 0 means one per worker
	Std      bool          // net/http's client instead of the minimal one (h1Conn, h2Conn)
	Headers  []string      // extra request header lines, "Name: value"
	Timeout  time.Duration // per request
	// BaselineURL (open loop): a request to it is scheduled between every two to URL, at the same rate and on
	// connections of its own, and its latency is reported apart: a baseline measured in the same moments, so
	// the added latency of a proxy is not a difference between two runs on a noisy machine.
	BaselineURL string
	// AltURL (open loop): a second target, sent the proxied requests of every other Slice of the run
	// (URL gets the first Slice, AltURL the second, and so on), each at Rate while it has them; with a
	// baseline, the baseline's requests are counted apart for the slices of each. Two proxies compared
	// this way meet the machine's moments alike, where two runs one after the other do not.
	AltURL string
	Slice  time.Duration
	// Settle (with AltURL): requests scheduled in the first Settle of each slice are sent but not counted,
	// for either target or the baseline: a proxy idle for a slice starts the next on cold caches, which
	// steady load at the same rate never does.
	Settle time.Duration
}

// loadResult is what one load run prints; the driver reads it back as JSON.
type loadResult struct {
	Mode      string  `json:"mode"` // "closed" or "open"
	URL       string  `json:"url"`
	Proto     string  `json:"proto"`
	Conc      int     `json:"conc"`
	Rate      float64 `json:"rate,omitempty"` // open loop: target req/s
	Seconds   float64 `json:"seconds"`
	Requests  uint64  `json:"requests"` // completed with a 2xx
	Errors    uint64  `json:"errors"`   // transport errors and non-2xx answers
	Non2xx    uint64  `json:"non_2xx"`
	Dropped   uint64  `json:"dropped,omitempty"` // open loop: scheduled but never sent; in the percentiles with the time they waited
	RPS       float64 `json:"rps"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	Saturated bool    `json:"saturated,omitempty"` // open loop: a send time came while every worker was busy
	// Open loop: how late requests were sent after their scheduled time (timer precision and waiting
	// for a free worker); it is part of the latency above.
	LagP50us float64 `json:"lag_p50_us,omitempty"`
	LagP99us float64 `json:"lag_p99_us,omitempty"`
	FirstErr string  `json:"first_error,omitempty"`
	// The interleaved baseline (-baseline-url): its successful requests and latency percentiles.
	BaseRequests uint64  `json:"base_requests,omitempty"`
	BaseP50us    float64 `json:"base_p50_us,omitempty"`
	BaseP99us    float64 `json:"base_p99_us,omitempty"`
	BaseP999us   float64 `json:"base_p999_us,omitempty"`
	// -alt-url: the second target's figures, and the baseline of its slices. With it, the figures above
	// (baseline included) are the first target's, over its own slices, and RPS is over those slices.
	Alt *altResult `json:"alt,omitempty"`
}

// altResult is the second target of an alternating run (-alt-url).
type altResult struct {
	URL          string  `json:"url"`
	SliceMs      float64 `json:"slice_ms"`
	Requests     uint64  `json:"requests"`
	Dropped      uint64  `json:"dropped,omitempty"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
	BaseRequests uint64  `json:"base_requests,omitempty"`
	BaseP50us    float64 `json:"base_p50_us,omitempty"`
	BaseP99us    float64 `json:"base_p99_us,omitempty"`
	BaseP999us   float64 `json:"base_p999_us,omitempty"`
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%s %s c=%d", r.Mode, r.Proto, r.Conc)
	if r.Mode == "open" {
		s += fmt.Sprintf(" rate=%g", r.Rate)
	}
	s += fmt.Sprintf(": %d requests, %d errors in %.2fs, %.0f req/s, p50 %s p90 %s p99 %s p99.9 %s max %s",
		r.Requests, r.Errors, r.Seconds, r.RPS, fmtUs(r.P50us), fmtUs(r.P90us), fmtUs(r.P99us), fmtUs(r.P999us), fmtUs(r.MaxUs))
	if r.Mode == "open" {
		s += fmt.Sprintf(", send lag p50 %s p99 %s", fmtUs(r.LagP50us), fmtUs(r.LagP99us))
	}
	if r.BaseRequests > 0 {
		s += fmt.Sprintf("; baseline interleaved: %d requests, p50 %s p99 %s p99.9 %s, p99 added %s",
			r.BaseRequests, fmtUs(r.BaseP50us), fmtUs(r.BaseP99us), fmtUs(r.BaseP999us), fmtSignedUs(r.P99us-r.BaseP99us))
	}
	if a := r.Alt; a != nil {
		s += fmt.Sprintf("; alternating every %gms with %s: %d requests, p50 %s p99 %s p99.9 %s", a.SliceMs, a.URL,
			a.Requests, fmtUs(a.P50us), fmtUs(a.P99us), fmtUs(a.P999us))
		if a.BaseRequests > 0 {
			s += fmt.Sprintf(", its slices' baseline p99 %s, p99 added %s", fmtUs(a.BaseP99us), fmtSignedUs(a.P99us-a.BaseP99us))
		}
	}
	if r.Dropped > 0 {
		s += fmt.Sprintf(", %d dropped", r.Dropped)
	}
	if r.Saturated {
		s += " (requests waited for a free worker: raise -c)"
	}
	if r.FirstErr != "" {
		s += ", first error: " + r.FirstErr
	}
	return s
}

func fmtUs(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", stderr)
	var cfg loadConfig
	fs.StringVar(&cfg.URL, "url", "", "target URL (required)")
	fs.IntVar(&cfg.Conc, "c", 0, "workers, each with its own connection (default 32 closed loop, 64 open loop)")
	fs.DurationVar(&cfg.Duration, "d", 5*time.Second, "duration")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second on a fixed schedule (0: closed loop)")
	fs.BoolVar(&cfg.H2C, "h2c", false, "HTTP/2 with prior knowledge (cleartext)")
	fs.IntVar(&cfg.Conns, "conns", 0, "h2c: connections shared by the workers, through net/http's client (default one per worker)")
	fs.BoolVar(&cfg.Std, "std", false, "net/http's client instead of the minimal built-in one (HTTP/1.1 or h2c)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&cfg.BaselineURL, "baseline-url", "", "open loop: interleave requests to this URL (the direct upstream) at the same rate and report them as the baseline")
	fs.StringVar(&cfg.AltURL, "alt-url", "", "open loop: a second target, given the proxied requests of every other -slice (each target at -rate in its slices; the baseline counted apart for each)")
	fs.DurationVar(&cfg.Slice, "slice", time.Second, "with -alt-url: how long each target keeps the load before the other takes it")
	fs.DurationVar(&cfg.Settle, "settle", 100*time.Millisecond, "with -alt-url: requests scheduled in the first part of each slice are sent but not counted (a proxy idle for a slice starts the next one cold)")
	headers := fs.String("H", "", "extra request headers, \"Name: value\" separated by newlines or '|'")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *headers != "" {
		for h := range strings.FieldsFuncSeq(*headers, func(r rune) bool { return r == '\n' || r == '|' }) {
			cfg.Headers = append(cfg.Headers, strings.TrimSpace(h))
		}
	}
	res, err := runLoad(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	_, err = fmt.Fprintln(stdout, res)
	return err
}

// requester sends one request and reads the whole answer.
type requester interface {
	do() (status int, err error)
	close()
}

// runLoad generates the load cfg describes and returns what it measured.
func runLoad(ctx context.Context, cfg loadConfig) (loadResult, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return loadResult{}, fmt.Errorf("-url %q: want http://HOST:PORT/PATH", cfg.URL)
	}
	if cfg.Duration <= 0 {
		return loadResult{}, fmt.Errorf("-d %s: want a positive duration", cfg.Duration)
	}
	if cfg.Rate < 0 {
		return loadResult{}, fmt.Errorf("-rate %g: want >= 0", cfg.Rate)
	}
	if cfg.Conc <= 0 {
		cfg.Conc = 32
		if cfg.Rate > 0 {
			cfg.Conc = 64
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	reqs, cleanup, proto := newRequesters(u, cfg)
	defer cleanup()
	var bases []requester
	if cfg.BaselineURL != "" {
		bu, err := url.Parse(cfg.BaselineURL)
		if err != nil || bu.Scheme != "http" || bu.Host == "" || cfg.Rate <= 0 {
			return loadResult{}, fmt.Errorf("-baseline-url %q: want http://HOST:PORT/PATH, with -rate", cfg.BaselineURL)
		}
		var cleanupBase func()
		bases, cleanupBase, _ = newRequesters(bu, cfg)
		defer cleanupBase()
	}

	var alts []requester
	if cfg.AltURL != "" {
		au, err := url.Parse(cfg.AltURL)
		if err != nil || au.Scheme != "http" || au.Host == "" || cfg.Rate <= 0 {
			return loadResult{}, fmt.Errorf("-alt-url %q: want http://HOST:PORT/PATH, with -rate", cfg.AltURL)
		}
		if cfg.Slice <= 0 || cfg.Slice > cfg.Duration/2 {
			return loadResult{}, fmt.Errorf("-slice %s: want a positive duration of at most half of -d", cfg.Slice)
		}
		if cfg.Settle < 0 || cfg.Settle >= cfg.Slice {
			return loadResult{}, fmt.Errorf("-settle %s: want at least 0 and less than -slice", cfg.Settle)
		}
		var cleanupAlt func()
		alts, cleanupAlt, _ = newRequesters(au, cfg)
		defer cleanupAlt()
	}

	res := loadResult{Mode: "closed", URL: cfg.URL, Proto: proto, Conc: cfg.Conc}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = "open", cfg.Rate
	}
	workers := make([]worker, cfg.Conc)
	var wg sync.WaitGroup
	var sched schedule
	start := time.Now()
	end := start.Add(cfg.Duration)
	if cfg.Rate > 0 {
		// The schedule's thread sleeps in a system call; a second P keeps the workers running
		// meanwhile even when the generator is pinned to one CPU.
		if runtime.GOMAXPROCS(0) < 2 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
		}
		sched = schedule{
			start:    start,
			interval: time.Duration(float64(time.Second) / cfg.Rate),
			total:    int64(cfg.Duration.Seconds() * cfg.Rate),
			giveUp:   end.Add(time.Second),
			slots:    make(chan slot, 1<<16),
		}
		if bases != nil {
			sched.interval /= 2 // every other slot goes to the baseline
			sched.total *= 2
			sched.interleave = true
		}
		if alts != nil {
			sched.slice, sched.settle = cfg.Slice, cfg.Settle
		}
		wg.Go(func() { sched.dispatch(ctx) })
	}
	for i := range workers {
		w := &workers[i]
		w.r = reqs[i]
		if bases != nil {
			w.base = bases[i]
		}
		if alts != nil {
			w.alt = alts[i]
		}
		wg.Go(func() {
			if cfg.Rate > 0 {
				w.runOpen(&sched)
			} else {
				w.runClosed(ctx, end)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cfg.Rate > 0 {
		// The schedule spans the duration; requests that ran late past its end do not stretch it.
		elapsed = cfg.Duration
	}

	var h, lag, base, alt, altBase histogram
	var a altResult
	for i := range workers {
		w := &workers[i]
		h.merge(&w.hist)
		lag.merge(&w.lag)
		base.merge(&w.baseHist)
		alt.merge(&w.altHist)
		altBase.merge(&w.altBaseHist)
		a.Requests += w.altOK
		a.BaseRequests += w.altBaseOK
		a.Dropped += w.altDropped
		res.BaseRequests += w.baseOK
		res.Requests += w.ok
		res.Errors += w.errs + w.non2xx
		res.Non2xx += w.non2xx
		res.Dropped += w.dropped
		if res.FirstErr == "" && w.firstErr != nil {
			res.FirstErr = w.firstErr.Error()
		}
	}
	res.Saturated = sched.backlog.Load()
	res.Seconds = elapsed.Seconds()
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	if alts != nil {
		// Each target had half of the run, and counted requests in the part of each slice after Settle.
		res.RPS *= 2 / (1 - float64(cfg.Settle)/float64(cfg.Slice))
		a.URL, a.SliceMs = cfg.AltURL, float64(cfg.Slice)/float64(time.Millisecond)
		a.P50us, a.P99us, a.P999us = us(alt.quantile(0.50)), us(alt.quantile(0.99)), us(alt.quantile(0.999))
		if a.BaseRequests > 0 {
			a.BaseP50us, a.BaseP99us, a.BaseP999us = us(altBase.quantile(0.50)), us(altBase.quantile(0.99)), us(altBase.quantile(0.999))
		}
		res.Alt = &a
	}
	res.P50us = us(h.quantile(0.50))
	res.P90us = us(h.quantile(0.90))
	res.P99us = us(h.quantile(0.99))
	res.P999us = us(h.quantile(0.999))
	res.MaxUs = us(time.Duration(h.max))
	if cfg.Rate > 0 {
		res.LagP50us, res.LagP99us = us(lag.quantile(0.50)), us(lag.quantile(0.99))
	}
	if res.BaseRequests > 0 {
		res.BaseP50us, res.BaseP99us, res.BaseP999us = us(base.quantile(0.50)), us(base.quantile(0.99)), us(base.quantile(0.999))
	}
	if (res.Requests == 0 || res.Alt != nil && res.Alt.Requests == 0) && ctx.Err() == nil {
		return res, fmt.Errorf("no successful request: %s", res.FirstErr)
	}
	return res, nil
}

func newRequesters(u *url.URL, cfg loadConfig) (reqs []requester, cleanup func(), proto string) {
	reqs = make([]requester, cfg.Conc)
	switch {
	case cfg.H2C && !cfg.Std && cfg.Conns <= 0:
		for i := range reqs {
			reqs[i] = newH2Conn(u, cfg.Headers, cfg.Timeout)
		}
		return reqs, func() {
			for _, r := range reqs {
				r.close()
			}
		}, "h2c"
	case cfg.H2C:
		conns := cfg.Conns
		if conns <= 0 || conns > cfg.Conc {
			conns = cfg.Conc
		}
		clients := make([]*http.Client, conns)
		for i := range clients {
			t := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			t.Protocols = new(http.Protocols)
			t.Protocols.SetUnencryptedHTTP2(true)
			clients[i] = &http.Client{Transport: t, Timeout: cfg.Timeout}
		}
		for i := range reqs {
			reqs[i] = newStdRequester(clients[i%conns], u, cfg.Headers)
		}
		return reqs, func() {
			for _, c := range clients {
				c.CloseIdleConnections()
			}
		}, "h2c (net/http)"
	case cfg.Std:
		for i := range reqs {
			t := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
			reqs[i] = newStdRequester(&http.Client{Transport: t, Timeout: cfg.Timeout}, u, cfg.Headers)
		}
		return reqs, func() {
			for _, r := range reqs {
				r.close()
			}
		}, "http/1.1 (net/http)"
	default:
		for i := range reqs {
			reqs[i] = newH1Conn(u, cfg.Headers, cfg.Timeout)
		}
		return reqs, func() {
			for _, r := range reqs {
				r.close()
			}
		}, "http/1.1"
	}
}

type stdRequester struct {
	client *http.Client
	req    *http.Request
}

func newStdRequester(c *http.Client, u *url.URL, headers []string) *stdRequester {
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{"User-Agent": {"sidetrace-bench"}}}
	for _, h := range headers {
		if name, value, ok := strings.Cut(h, ":"); ok {
			req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	return &stdRequester{client: c, req: req}
}

func (s *stdRequester) do() (int, error) {
	resp, err := s.client.Do(s.req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

func (s *stdRequester) close() { s.client.CloseIdleConnections() }

// worker drives one requester and keeps its own counts, merged when the run ends.
type worker struct {
	r        requester
	base     requester // open loop with a baseline: the connection to the baseline URL
	hist     histogram // latency of successful requests, and of dropped ones (open loop)
	baseHist histogram // latency of the baseline's successful requests
	baseOK   uint64
	// -alt-url: the second target's connection, its latencies, and the baseline's in its slices.
	alt         requester
	altHist     histogram
	altOK       uint64
	altDropped  uint64
	altBaseHist histogram
	altBaseOK   uint64
	// -settle: where the requests of a slice's start are recorded, never read (a histogram per request would
	// be kilobytes zeroed on the generator's hot path).
	settleHist histogram
	settleOK   uint64
	lag        histogram // open loop: send time minus scheduled time
	ok         uint64
	errs       uint64
	non2xx     uint64
	dropped    uint64
	firstErr   error
}

func (w *worker) send(from time.Time) { w.sendTo(w.r, &w.hist, &w.ok, "", from) }

// sendTo sends one request with r and records its latency in hist; failures count as the run's errors,
// their first one prefixed with label.
func (w *worker) sendTo(r requester, hist *histogram, ok *uint64, label string, from time.Time) {
	status, err := r.do()
	switch {
	case err != nil:
		w.errs++
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("%s%w", label, err)
		}
		// A refused or reset connection fails in microseconds; do not spin on it.
		time.Sleep(time.Millisecond)
	case status < 200 || status > 299:
		w.non2xx++
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("%sstatus %d", label, status)
		}
	default:
		*ok++
		hist.record(time.Since(from))
	}
}

func (w *worker) runClosed(ctx context.Context, end time.Time) {
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		w.send(now)
	}
}

// schedule paces an open-loop run: one goroutine on its own thread sleeps until each send time and
// hands it to whichever worker is free, so a slow answer delays nothing but itself, and a request that
// has to wait for a free worker counts the wait in its latency.
type schedule struct {
	start    time.Time
	interval time.Duration
	total    int64     // requests in the run
	giveUp   time.Time // requests not sent by then are dropped
	slots    chan slot
	// interleave: odd slots go to the baseline.
	interleave bool
	// slice: with a second target, the proxied requests of every other slice of this length go to it;
	// those scheduled in the first settle of a slice are not counted.
	slice, settle time.Duration
	// backlog is set when a send time came while no worker was free.
	backlog atomic.Bool
}

// slot is one scheduled request: when, whether it goes to the baseline, and whether it falls in a slice
// of the second target.
type slot struct {
	at        time.Time
	base      bool
	alt       bool
	uncounted bool // sent, but not in the figures (the start of a slice)
}

func (s *schedule) dispatch(ctx context.Context) {
	defer close(s.slots)
	for i := range s.total {
		if ctx.Err() != nil {
			return
		}
		at := s.start.Add(time.Duration(i) * s.interval)
		if d := time.Until(at); d > 0 {
			// Go's timers wake up to a millisecond late in an idle process, which would read as
			// latency; nanosleep(2) with no timer slack is within tens of microseconds.
			preciseSleep(d)
		}
		sl := slot{at: at, base: s.interleave && i%2 == 1}
		if s.slice > 0 {
			t := time.Duration(i) * s.interval
			sl.alt = (t/s.slice)%2 == 1
			sl.uncounted = t%s.slice < s.settle
		}
		select {
		case s.slots <- sl:
		default:
			s.backlog.Store(true)
			select {
			case s.slots <- sl:
			case <-ctx.Done():
				return
			}
		}
		// Let the worker just woken send now, on this P, rather than after this goroutine has
		// gone back to sleep in a system call holding the P.
		runtime.Gosched()
	}
}

func (w *worker) runOpen(s *schedule) {
	for sl := range s.slots {
		at := sl.at
		now := time.Now()
		if now.After(s.giveUp) {
			// Never sent: it counts in the latencies with how long it had waited, a lower bound, so
			// that an overloaded target does not look better for the requests it never saw.
			switch {
			case sl.base:
			case sl.alt:
				w.altDropped++
				w.altHist.record(now.Sub(at))
			default:
				w.dropped++
				w.hist.record(now.Sub(at))
			}
			continue
		}
		if sl.uncounted {
			w.sendUncounted(sl)
			continue
		}
		w.lag.record(now.Sub(at))
		switch {
		case sl.base && sl.alt:
			w.sendTo(w.base, &w.altBaseHist, &w.altBaseOK, "baseline: ", at)
		case sl.base:
			w.sendBase(at)
		case sl.alt:
			w.sendTo(w.alt, &w.altHist, &w.altOK, "alt: ", at)
		default:
			w.send(at)
		}
	}
}

// sendUncounted sends a request of a slice's settling time to its target; only a failure counts.
func (w *worker) sendUncounted(sl slot) {
	r, label := w.r, ""
	switch {
	case sl.base:
		r, label = w.base, "baseline: "
	case sl.alt:
		r, label = w.alt, "alt: "
	}
	w.sendTo(r, &w.settleHist, &w.settleOK, label, sl.at)
}

// sendBase sends a baseline request.
func (w *worker) sendBase(from time.Time) {
	w.sendTo(w.base, &w.baseHist, &w.baseOK, "baseline: ", from)
}
