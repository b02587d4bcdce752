/*
 * sidetrace.c: the ABI v1 exports, views and op lists behind sidetrace.h.
 * See wasm-sdk/ABI.md for the encoding; the numbers are those of wasm-sdk/go/abi/abi.go.
 */
#include "sidetrace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define IMPORT(name) __attribute__((import_module("sidetrace"), import_name(name)))

IMPORT("log") void st_host_log(int32_t level, const char *ptr, size_t len);
IMPORT("get_header") int32_t st_host_get_header(int32_t which, const char *np, size_t nl, char *bp, size_t bl);

enum { HOOK_REQUEST = 1, HOOK_RESPONSE = 2, HOOK_SPAN_END = 4 };
enum {
	OP_SET_ATTR = 0x01, OP_DELETE_ATTR = 0x02, OP_SET_EVENT_ATTR = 0x03, OP_DELETE_EVENT_ATTR = 0x04,
	OP_SET_TENANT = 0x05, OP_DECISION = 0x06, OP_MARK_ERROR = 0x07, OP_KEEP = 0x08, OP_FAIL = 0x09,
	OP_HOOKS = 0x10, OP_REQUEST_HEADER = 0x11, OP_RESPONSE_HEADER = 0x12
};
enum { MAX_HEADERS = 64 };

/* ---- strings ---- */

st_str st_cstr(const char *s) { return (st_str){s, strlen(s)}; }

int st_str_eq(st_str a, st_str b) { return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int st_str_eq_fold(st_str a, st_str b) {
	if (a.len != b.len) return 0;
	for (size_t i = 0; i < a.len; i++)
		if (lower(a.ptr[i]) != lower(b.ptr[i])) return 0;
	return 1;
}

void st_log(int level, st_str msg) { st_host_log(level, msg.ptr, msg.len); }

/* ---- buffers ---- */

typedef struct {
	uint8_t *b;
	size_t len, cap;
} buf;

static buf out;     /* the op list a call returns */
static buf scratch; /* joined header values */
static uint8_t *input;
static size_t input_cap;

static void grow(buf *o, size_t n) {
	if (o->len + n <= o->cap) return;
	size_t c = o->cap ? o->cap : 256;
	while (c < o->len + n) c *= 2;
	uint8_t *nb = realloc(o->b, c);
	if (!nb) __builtin_trap();
	o->b = nb, o->cap = c;
}

static void put(buf *o, const void *p, size_t n) {
	grow(o, n);
	memcpy(o->b + o->len, p, n);
	o->len += n;
}

static void out_u8(uint8_t v) { put(&out, &v, 1); }
static void out_u32(uint32_t v) { put(&out, &v, 4); } /* wasm is little-endian */
static void out_u64(uint64_t v) { put(&out, &v, 8); }
static void out_str(st_str s) {
	out_u32((uint32_t)s.len);
	put(&out, s.ptr, s.len);
}

static uint64_t packed(void) {
	if (out.len == 0) return 0;
	return (uint64_t)(uintptr_t)out.b << 32 | (uint64_t)out.len;
}

static void out_fail(st_str msg) {
	out_u8(OP_FAIL);
	out_str(msg);
}

/* ---- registration ---- */

struct st_plugin {
	st_decision (*on_request)(st_request *);
	void (*on_response)(st_response *);
	void (*on_span_end)(st_span *);
	st_str req_hdr[MAX_HEADERS], resp_hdr[MAX_HEADERS];
	size_t n_req, n_resp;
	st_str refused;
	int is_refused;
};

static st_plugin plugin;

int st_refuse(st_plugin *p, st_str message) {
	char *m = malloc(message.len + 1);
	if (m) memcpy(m, message.ptr, message.len);
	p->refused = (st_str){m, m ? message.len : 0};
	p->is_refused = 1;
	return -1;
}

static void declare(st_str *list, size_t *n, st_str name) {
	while (name.len && (name.ptr[0] == ' ' || name.ptr[0] == '\t')) name.ptr++, name.len--;
	while (name.len && (name.ptr[name.len - 1] == ' ' || name.ptr[name.len - 1] == '\t')) name.len--;
	if (!name.len || plugin.n_req + plugin.n_resp >= MAX_HEADERS) return;
	for (size_t i = 0; i < *n; i++)
		if (st_str_eq_fold(list[i], name)) return;
	char *c = malloc(name.len);
	if (!c) return;
	for (size_t i = 0; i < name.len; i++) c[i] = lower(name.ptr[i]);
	list[(*n)++] = (st_str){c, name.len};
}

void st_request_header(st_plugin *p, st_str name) { declare(p->req_hdr, &p->n_req, name); }
void st_response_header(st_plugin *p, st_str name) { declare(p->resp_hdr, &p->n_resp, name); }
void st_on_request(st_plugin *p, st_decision (*hook)(st_request *)) { p->on_request = hook; }
void st_on_response(st_plugin *p, void (*hook)(st_response *)) { p->on_response = hook; }
void st_on_span_end(st_plugin *p, void (*hook)(st_span *)) { p->on_span_end = hook; }

/* ---- decoding ---- */

typedef struct {
	const uint8_t *b;
	size_t n, off;
	int ok;
} reader;

static const uint8_t *take(reader *r, size_t n) {
	if (!r->ok || r->n - r->off < n) {
		r->ok = 0;
		return NULL;
	}
	r->off += n;
	return r->b + r->off - n;
}

static uint8_t rd_u8(reader *r) {
	const uint8_t *p = take(r, 1);
	return p ? *p : 0;
}

static uint32_t rd_u32(reader *r) {
	uint32_t v = 0;
	const uint8_t *p = take(r, 4);
	if (p) memcpy(&v, p, 4);
	return v;
}

static uint64_t rd_u64(reader *r) {
	uint64_t v = 0;
	const uint8_t *p = take(r, 8);
	if (p) memcpy(&v, p, 8);
	return v;
}

static st_str rd_str(reader *r) {
	uint32_t n = rd_u32(r);
	const uint8_t *p = take(r, n);
	return p ? (st_str){(const char *)p, n} : (st_str){"", 0};
}

/* rd_count reads an element count bounded by the bytes left (min bytes each). */
static uint32_t rd_count(reader *r, size_t min) {
	uint32_t n = rd_u32(r);
	if (r->ok && (uint64_t)n * min > r->n - r->off) {
		r->ok = 0;
		return 0;
	}
	return n;
}

static const size_t elem_size[] = {0, 0, 0, 0, 0, 0, 1, 8, 8};

static void rd_value(reader *r, st_value *v) {
	memset(v, 0, sizeof *v);
	v->type = rd_u8(r);
	switch (v->type) {
	case ST_VALUE_OTHER:
	case ST_VALUE_STRING: v->str = rd_str(r); break;
	case ST_VALUE_BOOL: v->boolean = rd_u8(r) != 0; break;
	case ST_VALUE_INT64: v->int64 = (int64_t)rd_u64(r); break;
	case ST_VALUE_FLOAT64: {
		uint64_t b = rd_u64(r);
		memcpy(&v->float64, &b, 8);
		break;
	}
	case ST_VALUE_STRING_SLICE:
		v->count = rd_count(r, 4);
		v->raw = r->b + r->off;
		for (uint32_t i = 0; i < v->count && r->ok; i++) rd_str(r);
		break;
	case ST_VALUE_BOOL_SLICE:
	case ST_VALUE_INT64_SLICE:
	case ST_VALUE_FLOAT64_SLICE:
		v->count = rd_count(r, elem_size[v->type]);
		v->raw = r->b + r->off;
		take(r, v->count * elem_size[v->type]);
		break;
	default: r->ok = 0;
	}
}

st_str st_value_string_at(const st_value *v, uint32_t i) {
	if (v->type != ST_VALUE_STRING_SLICE || i >= v->count) return (st_str){"", 0};
	reader r = {v->raw, (size_t)-1 / 2, 0, 1};
	for (uint32_t k = 0; k < i; k++) rd_str(&r);
	return rd_str(&r);
}

/* headers: the offsets of each declared header's value count in the view */
typedef struct {
	const uint8_t *view;
	size_t len;
	uint32_t offs[MAX_HEADERS];
	size_t n;
	const st_str *declared;
	int which;
} headers;

static void rd_headers(reader *r, headers *h, const st_str *declared, size_t n, int which) {
	h->view = r->b, h->len = r->n, h->declared = declared, h->n = 0, h->which = which;
	for (size_t i = 0; i < n && r->ok; i++) {
		h->offs[h->n++] = (uint32_t)r->off;
		uint32_t c = rd_count(r, 4);
		for (uint32_t k = 0; k < c && r->ok; k++) rd_str(r);
	}
}

static int get_header(headers *h, st_str name, st_str *value) {
	for (size_t i = 0; i < h->n; i++) {
		if (!st_str_eq_fold(h->declared[i], name)) continue;
		reader r = {h->view, h->len, h->offs[i], 1};
		uint32_t c = rd_u32(&r);
		if (c == 0) return 0;
		if (c == 1) {
			*value = rd_str(&r);
			return 1;
		}
		scratch.len = 0;
		for (uint32_t k = 0; k < c; k++) {
			st_str v = rd_str(&r);
			if (k) put(&scratch, ", ", 2);
			put(&scratch, v.ptr, v.len);
		}
		*value = (st_str){(const char *)scratch.b, scratch.len};
		return 1;
	}
	grow(&scratch, 128);
	for (;;) {
		int32_t n = st_host_get_header(h->which, name.ptr, name.len, (char *)scratch.b, scratch.cap);
		if (n < 0) return 0;
		if ((size_t)n <= scratch.cap) {
			*value = (st_str){(const char *)scratch.b, (size_t)n};
			return 1;
		}
		scratch.len = 0;
		grow(&scratch, (size_t)n);
	}
}

/* ---- attributes ---- */

static void set_attr_head(st_str key, uint8_t type) {
	out_u8(OP_SET_ATTR);
	out_str(key);
	out_u8(type);
}
static void set_string(st_str key, st_str v) { set_attr_head(key, ST_VALUE_STRING), out_str(v); }
static void set_int64(st_str key, int64_t v) { set_attr_head(key, ST_VALUE_INT64), out_u64((uint64_t)v); }
static void set_bool(st_str key, int v) { set_attr_head(key, ST_VALUE_BOOL), out_u8(v != 0); }
static void set_float64(st_str key, double v) {
	uint64_t b;
	memcpy(&b, &v, 8);
	set_attr_head(key, ST_VALUE_FLOAT64), out_u64(b);
}

/* ---- request ---- */

struct st_request {
	uint8_t kind;
	const uint8_t *trace_id;
	st_str method, scheme, host, path, query, peer, tenant;
	headers h;
};

int st_request_kind(const st_request *r) { return r->kind; }
const uint8_t *st_request_trace_id(const st_request *r) { return r->trace_id; }
st_str st_request_method(const st_request *r) { return r->method; }
st_str st_request_scheme(const st_request *r) { return r->scheme; }
st_str st_request_host(const st_request *r) { return r->host; }
st_str st_request_path(const st_request *r) { return r->path; }
st_str st_request_query(const st_request *r) { return r->query; }
st_str st_request_peer(const st_request *r) { return r->peer; }
st_str st_request_tenant(const st_request *r) { return r->tenant; }
int st_request_get_header(st_request *r, st_str name, st_str *v) { return get_header(&r->h, name, v); }
void st_request_set_attribute_string(st_request *r, st_str k, st_str v) { (void)r, set_string(k, v); }
void st_request_set_attribute_int64(st_request *r, st_str k, int64_t v) { (void)r, set_int64(k, v); }
void st_request_set_attribute_bool(st_request *r, st_str k, int v) { (void)r, set_bool(k, v); }
void st_request_set_attribute_float64(st_request *r, st_str k, double v) { (void)r, set_float64(k, v); }
void st_request_fail(st_request *r, st_str m) { (void)r, out_fail(m); }

static buf new_tenant;

void st_request_set_tenant(st_request *r, st_str tenant) {
	out_u8(OP_SET_TENANT);
	out_str(tenant);
	new_tenant.len = 0;
	put(&new_tenant, tenant.ptr, tenant.len);
	r->tenant = (st_str){(const char *)new_tenant.b, tenant.len}; /* as later plugins will see it */
}

/* ---- response ---- */

struct st_response {
	uint8_t kind;
	const uint8_t *trace_id;
	st_str tenant;
	uint32_t status;
	uint64_t duration;
	headers h;
};

int st_response_kind(const st_response *r) { return r->kind; }
const uint8_t *st_response_trace_id(const st_response *r) { return r->trace_id; }
st_str st_response_tenant(const st_response *r) { return r->tenant; }
uint32_t st_response_status(const st_response *r) { return r->status; }
uint64_t st_response_duration_ns(const st_response *r) { return r->duration; }
int st_response_get_header(st_response *r, st_str name, st_str *v) { return get_header(&r->h, name, v); }
void st_response_set_attribute_string(st_response *r, st_str k, st_str v) { (void)r, set_string(k, v); }
void st_response_set_attribute_int64(st_response *r, st_str k, int64_t v) { (void)r, set_int64(k, v); }
void st_response_set_attribute_bool(st_response *r, st_str k, int v) { (void)r, set_bool(k, v); }
void st_response_set_attribute_float64(st_response *r, st_str k, double v) { (void)r, set_float64(k, v); }
void st_response_keep(st_response *r) { (void)r, out_u8(OP_KEEP); }
void st_response_fail(st_response *r, st_str m) { (void)r, out_fail(m); }
void st_response_mark_error(st_response *r, st_str d) {
	(void)r;
	out_u8(OP_MARK_ERROR);
	out_str(d);
}

/* ---- span ---- */

typedef struct {
	st_str name;
	uint64_t time;
	uint32_t first, count; /* into attr_offs */
} event;

struct st_span {
	uint8_t kind;
	const uint8_t *trace_id, *span_id;
	st_str name;
	const uint8_t *view;
	size_t len;
	uint32_t *attr_offs; /* offsets of attributes: the span's, then each event's */
	uint32_t n_attrs;
	event *events;
	uint32_t n_events;
};

static buf span_attrs, span_events;

int st_span_kind(const st_span *s) { return s->kind; }
const uint8_t *st_span_trace_id(const st_span *s) { return s->trace_id; }
const uint8_t *st_span_span_id(const st_span *s) { return s->span_id; }
st_str st_span_name(const st_span *s) { return s->name; }
uint32_t st_span_attribute_count(const st_span *s) { return s->n_attrs; }
uint32_t st_span_event_count(const st_span *s) { return s->n_events; }

static void attr_at(const st_span *s, uint32_t off, st_str *key, st_value *value) {
	reader r = {s->view, s->len, off, 1};
	*key = rd_str(&r);
	rd_value(&r, value);
}

void st_span_attribute(const st_span *s, uint32_t i, st_str *key, st_value *value) {
	if (i < s->n_attrs) attr_at(s, s->attr_offs[i], key, value);
}

st_str st_span_event_name(const st_span *s, uint32_t e) { return e < s->n_events ? s->events[e].name : (st_str){"", 0}; }
uint64_t st_span_event_time(const st_span *s, uint32_t e) { return e < s->n_events ? s->events[e].time : 0; }
uint32_t st_span_event_attribute_count(const st_span *s, uint32_t e) { return e < s->n_events ? s->events[e].count : 0; }

void st_span_event_attribute(const st_span *s, uint32_t e, uint32_t i, st_str *key, st_value *value) {
	if (e < s->n_events && i < s->events[e].count) attr_at(s, s->attr_offs[s->events[e].first + i], key, value);
}

void st_span_set_attribute_string(st_span *s, st_str k, st_str v) { (void)s, set_string(k, v); }
void st_span_set_attribute_int64(st_span *s, st_str k, int64_t v) { (void)s, set_int64(k, v); }
void st_span_fail(st_span *s, st_str m) { (void)s, out_fail(m); }

void st_span_delete_attribute(st_span *s, st_str key) {
	(void)s;
	out_u8(OP_DELETE_ATTR);
	out_str(key);
}

void st_span_set_event_attribute_string(st_span *s, uint32_t e, st_str key, st_str v) {
	if (e >= s->n_events) __builtin_trap();
	out_u8(OP_SET_EVENT_ATTR);
	out_u32(e);
	out_str(key);
	out_u8(ST_VALUE_STRING);
	out_str(v);
}

void st_span_delete_event_attribute(st_span *s, uint32_t e, st_str key) {
	if (e >= s->n_events) __builtin_trap();
	out_u8(OP_DELETE_EVENT_ATTR);
	out_u32(e);
	out_str(key);
}

static uint32_t rd_attrs(reader *r) {
	uint32_t n = rd_count(r, 5);
	for (uint32_t i = 0; i < n && r->ok; i++) {
		uint32_t off = (uint32_t)r->off;
		put(&span_attrs, &off, 4);
		st_value v;
		rd_str(r);
		rd_value(r, &v);
	}
	return n;
}

/* ---- exports ---- */

EXPORT("sidetrace_abi_v1") void sidetrace_abi_v1(void) {}

EXPORT("sidetrace_alloc") uint32_t sidetrace_alloc(uint32_t size) {
	if (size > input_cap) {
		free(input);
		input = malloc(size);
		input_cap = input ? size : 0;
	}
	return (uint32_t)(uintptr_t)input;
}

EXPORT("sidetrace_init") uint64_t sidetrace_init(uint32_t len) {
	out.len = 0;
	memset(&plugin, 0, sizeof plugin);
	if (sidetrace_plugin_init(&plugin, (st_str){(const char *)input, len}) != 0 || plugin.is_refused) {
		out.len = 0;
		out_fail(plugin.is_refused ? plugin.refused : ST_STR("init failed"));
		return packed();
	}
	uint32_t hooks = (plugin.on_request ? HOOK_REQUEST : 0) | (plugin.on_response ? HOOK_RESPONSE : 0) |
	                 (plugin.on_span_end ? HOOK_SPAN_END : 0);
	out_u8(OP_HOOKS);
	out_u32(hooks);
	for (size_t i = 0; i < plugin.n_req; i++) out_u8(OP_REQUEST_HEADER), out_str(plugin.req_hdr[i]);
	for (size_t i = 0; i < plugin.n_resp; i++) out_u8(OP_RESPONSE_HEADER), out_str(plugin.resp_hdr[i]);
	return packed();
}

static const st_str truncated = {"sdk: truncated view", 19};

EXPORT("sidetrace_on_request") uint64_t sidetrace_on_request(uint32_t len) {
	out.len = 0;
	if (!plugin.on_request) return 0;
	reader r = {input, len, 0, 1};
	st_request q;
	q.kind = rd_u8(&r);
	q.trace_id = take(&r, 16);
	q.method = rd_str(&r), q.scheme = rd_str(&r), q.host = rd_str(&r), q.path = rd_str(&r);
	q.query = rd_str(&r), q.peer = rd_str(&r), q.tenant = rd_str(&r);
	rd_headers(&r, &q.h, plugin.req_hdr, plugin.n_req, 0);
	if (!r.ok) {
		out_fail(truncated);
		return packed();
	}
	st_decision d = plugin.on_request(&q);
	if (d != ST_NO_OPINION) out_u8(OP_DECISION), out_u8((uint8_t)d);
	return packed();
}

EXPORT("sidetrace_on_response") uint64_t sidetrace_on_response(uint32_t len) {
	out.len = 0;
	if (!plugin.on_response) return 0;
	reader r = {input, len, 0, 1};
	st_response q;
	q.kind = rd_u8(&r);
	q.trace_id = take(&r, 16);
	q.tenant = rd_str(&r);
	q.status = rd_u32(&r);
	q.duration = rd_u64(&r);
	rd_headers(&r, &q.h, plugin.resp_hdr, plugin.n_resp, 1);
	if (!r.ok) {
		out_fail(truncated);
		return packed();
	}
	plugin.on_response(&q);
	return packed();
}

EXPORT("sidetrace_on_span_end") uint64_t sidetrace_on_span_end(uint32_t len) {
	out.len = 0;
	if (!plugin.on_span_end) return 0;
	reader r = {input, len, 0, 1};
	st_span s;
	span_attrs.len = span_events.len = 0;
	s.kind = rd_u8(&r);
	s.trace_id = take(&r, 16);
	s.span_id = take(&r, 8);
	s.name = rd_str(&r);
	s.view = input, s.len = len;
	s.n_attrs = rd_attrs(&r);
	s.n_events = rd_count(&r, 16);
	for (uint32_t i = 0; i < s.n_events && r.ok; i++) {
		event e;
		e.name = rd_str(&r);
		e.time = rd_u64(&r);
		e.first = (uint32_t)(span_attrs.len / 4);
		e.count = rd_attrs(&r);
		put(&span_events, &e, sizeof e);
	}
	if (!r.ok) {
		out_fail(truncated);
		return packed();
	}
	s.attr_offs = (uint32_t *)span_attrs.b;
	s.events = (event *)span_events.b;
	plugin.on_span_end(&s);
	return packed();
}

/* ---- JSON ---- */

static int jfail(st_json *j, const char *what) {
	if (j->err[0]) return -1;
	if (j->i >= j->n) {
		strcpy(j->err, "unexpected end of JSON input");
		return -1;
	}
	char c = j->s[j->i];
	size_t n = strlen(what);
	if (n > 40) n = 40;
	memcpy(j->err, what, n);
	memcpy(j->err + n, " '", 2);
	j->err[n + 2] = c >= ' ' && c < 0x7f ? c : '?';
	j->err[n + 3] = '\'';
	j->err[n + 4] = 0;
	return -1;
}

static void jws(st_json *j) {
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

void st_json_begin(st_json *j, st_str text) {
	j->s = text.ptr, j->n = text.len, j->i = 0, j->depth = 0, j->err[0] = 0;
}

st_json_type st_json_peek(st_json *j) {
	if (j->err[0]) return ST_JSON_ERROR;
	jws(j);
	if (j->i >= j->n) return (st_json_type)jfail(j, "");
	switch (j->s[j->i]) {
	case 'n': return ST_JSON_NULL;
	case 't':
	case 'f': return ST_JSON_BOOL;
	case '"': return ST_JSON_STRING;
	case '[': return ST_JSON_ARRAY;
	case '{': return ST_JSON_OBJECT;
	case '-':
	case '0' ... '9': return ST_JSON_NUMBER;
	}
	return (st_json_type)jfail(j, "invalid character");
}

const char *st_json_type_name(st_json_type t) {
	static const char *names[] = {"", "null", "bool", "number", "string", "array", "object"};
	return t >= ST_JSON_NULL && t <= ST_JSON_OBJECT ? names[t] : "error";
}

static int jlit(st_json *j, const char *w) {
	size_t n = strlen(w);
	if (j->n - j->i < n || memcmp(j->s + j->i, w, n) != 0) return jfail(j, "invalid character");
	j->i += n;
	return 0;
}

int st_json_null(st_json *j) { return st_json_peek(j) == ST_JSON_NULL ? jlit(j, "null") : jfail(j, "want null at"); }

int st_json_bool(st_json *j, int *b) {
	if (st_json_peek(j) != ST_JSON_BOOL) return jfail(j, "want a bool at");
	*b = j->s[j->i] == 't';
	return jlit(j, *b ? "true" : "false");
}

static int digits(st_json *j) {
	size_t s = j->i;
	while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
	return j->i > s;
}

int st_json_number(st_json *j, double *f) {
	if (st_json_peek(j) != ST_JSON_NUMBER) return jfail(j, "want a number at");
	size_t start = j->i;
	if (j->s[j->i] == '-') j->i++;
	if (j->i < j->n && j->s[j->i] == '0') j->i++;
	else if (!digits(j)) return jfail(j, "invalid character in number");
	if (j->i < j->n && j->s[j->i] == '.') {
		j->i++;
		if (!digits(j)) return jfail(j, "invalid character in number");
	}
	if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
		if (!digits(j)) return jfail(j, "invalid character in number");
	}
	char tmp[64];
	size_t n = j->i - start;
	char *t = n < sizeof tmp ? tmp : malloc(n + 1);
	if (!t) return jfail(j, "out of memory");
	memcpy(t, j->s + start, n);
	t[n] = 0;
	errno = 0;
	*f = strtod(t, NULL);
	int range = errno == ERANGE && (*f > 1 || *f < -1);
	if (t != tmp) free(t);
	if (range) {
		strcpy(j->err, "number out of range");
		return -1;
	}
	return 0;
}

static int hex4(st_json *j, uint32_t *u) {
	*u = 0;
	for (int k = 0; k < 4; k++, j->i++) {
		if (j->i >= j->n) return jfail(j, "");
		char c = j->s[j->i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0) return jfail(j, "invalid character in \\u escape");
		*u = *u * 16 + (uint32_t)d;
	}
	return 0;
}

static void utf8(buf *b, uint32_t u) {
	uint8_t e[4];
	size_t n;
	if (u < 0x80) e[0] = (uint8_t)u, n = 1;
	else if (u < 0x800) e[0] = 0xc0 | u >> 6, e[1] = 0x80 | (u & 0x3f), n = 2;
	else if (u < 0x10000) e[0] = 0xe0 | u >> 12, e[1] = 0x80 | (u >> 6 & 0x3f), e[2] = 0x80 | (u & 0x3f), n = 3;
	else e[0] = 0xf0 | u >> 18, e[1] = 0x80 | (u >> 12 & 0x3f), e[2] = 0x80 | (u >> 6 & 0x3f), e[3] = 0x80 | (u & 0x3f), n = 4;
	put(b, e, n);
}

int st_json_string(st_json *j, st_str *s) {
	if (st_json_peek(j) != ST_JSON_STRING) return jfail(j, "want a string at");
	j->i++;
	buf b = {0, 0, 0};
	for (;;) {
		if (j->i >= j->n) {
			free(b.b);
			return jfail(j, "");
		}
		unsigned char c = (unsigned char)j->s[j->i];
		if (c == '"') {
			j->i++;
			grow(&b, 1);
			*s = (st_str){(const char *)b.b, b.len};
			return 0;
		}
		if (c < 0x20) {
			free(b.b);
			return jfail(j, "invalid character in string");
		}
		if (c != '\\') {
			put(&b, &c, 1);
			j->i++;
			continue;
		}
		if (++j->i >= j->n) {
			free(b.b);
			return jfail(j, "");
		}
		char e = j->s[j->i++];
		uint32_t u;
		switch (e) {
		case '"': case '\\': case '/': put(&b, &e, 1); break;
		case 'b': utf8(&b, 8); break;
		case 'f': utf8(&b, 12); break;
		case 'n': utf8(&b, 10); break;
		case 'r': utf8(&b, 13); break;
		case 't': utf8(&b, 9); break;
		case 'u':
			if (hex4(j, &u) < 0) {
				free(b.b);
				return -1;
			}
			if (u >= 0xd800 && u < 0xdc00 && j->n - j->i >= 6 && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u') {
				size_t save = j->i;
				uint32_t lo;
				j->i += 2;
				if (hex4(j, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				else j->i = save, j->err[0] = 0;
			}
			if (u >= 0xd800 && u < 0xe000) u = 0xfffd;
			utf8(&b, u);
			break;
		default:
			j->i--;
			free(b.b);
			return jfail(j, "invalid escape");
		}
	}
}

int st_json_object(st_json *j) {
	if (st_json_peek(j) != ST_JSON_OBJECT) return jfail(j, "want an object at");
	if (++j->depth > 1000) return jfail(j, "exceeded max depth at");
	j->i++;
	j->depth |= 1 << 20; /* first member pending */
	return 0;
}

int st_json_member(st_json *j, st_str *key) {
	if (j->err[0]) return -1;
	jws(j);
	int first = j->depth & 1 << 20;
	j->depth &= ~(1 << 20);
	if (j->i < j->n && j->s[j->i] == '}') {
		j->i++;
		j->depth--;
		return 0;
	}
	if (!first) {
		if (j->i >= j->n || j->s[j->i] != ',') return jfail(j, "invalid character after object member:");
		j->i++;
		jws(j);
	}
	if (j->i >= j->n || j->s[j->i] != '"') return jfail(j, "invalid character looking for object key:");
	if (st_json_string(j, key) < 0) return -1;
	jws(j);
	if (j->i >= j->n || j->s[j->i] != ':') {
		free((void *)key->ptr);
		return jfail(j, "invalid character after object key:");
	}
	j->i++;
	return 1;
}

int st_json_array(st_json *j) {
	if (st_json_peek(j) != ST_JSON_ARRAY) return jfail(j, "want an array at");
	if (++j->depth > 1000) return jfail(j, "exceeded max depth at");
	j->i++;
	j->depth |= 1 << 20;
	return 0;
}

int st_json_element(st_json *j) {
	if (j->err[0]) return -1;
	jws(j);
	int first = j->depth & 1 << 20;
	j->depth &= ~(1 << 20);
	if (j->i < j->n && j->s[j->i] == ']') {
		j->i++;
		j->depth--;
		return 0;
	}
	if (!first) {
		if (j->i >= j->n || j->s[j->i] != ',') return jfail(j, "invalid character after array element:");
		j->i++;
	}
	return 1;
}

int st_json_skip(st_json *j) {
	st_str s;
	double f;
	int b, k;
	switch (st_json_peek(j)) {
	case ST_JSON_NULL: return st_json_null(j);
	case ST_JSON_BOOL: return st_json_bool(j, &b);
	case ST_JSON_NUMBER: return st_json_number(j, &f);
	case ST_JSON_STRING:
		if (st_json_string(j, &s) < 0) return -1;
		free((void *)s.ptr);
		return 0;
	case ST_JSON_ARRAY:
		if (st_json_array(j) < 0) return -1;
		while ((k = st_json_element(j)) == 1)
			if (st_json_skip(j) < 0) return -1;
		return k;
	case ST_JSON_OBJECT:
		if (st_json_object(j) < 0) return -1;
		while ((k = st_json_member(j, &s)) == 1) {
			free((void *)s.ptr);
			if (st_json_skip(j) < 0) return -1;
		}
		return k;
	default: return -1;
	}
}

/* ---- allocator ---- */
/*
 * A small allocator replaces wasi-libc's dlmalloc (10 KB of code): power-of-two size classes
 * from 16 bytes, each with a free list, carved from memory above __heap_base and grown with
 * memory.grow. A plugin allocates the same few sizes on every call, so freed blocks are
 * reused at once. Define ST_LIBC_MALLOC to keep libc's.
 */
#ifndef ST_LIBC_MALLOC
extern unsigned char __heap_base;
static uintptr_t heap_top, heap_end;
static void *free_list[32];

/* Each block is preceded by 16 bytes holding its class (keeps malloc's 16-byte alignment). */
static unsigned block_class(size_t n) {
	unsigned k = 4;
	while (((size_t)1 << k) < n + 16) k++;
	return k;
}

void *malloc(size_t n) {
	if (n > ((size_t)1 << 30)) return NULL;
	unsigned k = block_class(n);
	uint8_t *b = free_list[k];
	if (b) {
		free_list[k] = *(void **)(b + 16);
		return b + 16;
	}
	if (!heap_end) heap_top = (uintptr_t)&__heap_base, heap_end = __builtin_wasm_memory_size(0) * 65536;
	size_t size = (size_t)1 << k;
	uintptr_t p = (heap_top + 15) & ~(uintptr_t)15;
	if (p + size > heap_end) {
		size_t pages = (p + size - heap_end + 65535) / 65536;
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return NULL;
		heap_end += pages * 65536;
	}
	heap_top = p + size;
	*(uint32_t *)p = k;
	return (void *)(p + 16);
}

void free(void *q) {
	if (!q) return;
	uint8_t *b = (uint8_t *)q - 16;
	unsigned k = *(uint32_t *)b;
	*(void **)q = free_list[k];
	free_list[k] = b;
}

void *calloc(size_t n, size_t m) {
	if (m && n > (size_t)-1 / m) return NULL;
	void *p = malloc(n * m);
	if (p) memset(p, 0, n * m);
	return p;
}

void *realloc(void *q, size_t n) {
	if (!q) return malloc(n);
	unsigned k = *(uint32_t *)((uint8_t *)q - 16);
	if (n + 16 <= ((size_t)1 << k)) return q;
	void *p = malloc(n);
	if (p) {
		memcpy(p, q, ((size_t)1 << k) - 16);
		free(q);
	}
	return p;
}
#endif
