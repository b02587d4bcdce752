package sampling

import "time"

// Option configures a sampler built by New.
type Option func(*options)

type options struct {
	recordUnsampled bool
	now             func() time.Time
}

func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// WithRecordUnsampled makes the sampler return RecordOnly instead of Drop for spans the head decision
// does not sample, so the proxy can still export them when they turn out to be errors or slow
// (SIDETRACE_KEEP_ERRORS, SIDETRACE_KEEP_SLOWER_THAN). A plugin's explicit Drop stays Drop.
func WithRecordUnsampled(on bool) Option {
	return func(o *options) { o.recordUnsampled = on }
}

// WithClock replaces time.Now for the rate-based samplers (ratelimited, adaptive). Tests use it to
// simulate traffic over seconds without sleeping.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}
