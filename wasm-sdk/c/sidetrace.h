/*
 * sidetrace.h: the sidetrace plugin SDK for C (ABI v1, wasm-sdk/ABI.md).
 *
 * A plugin defines one function, sidetrace_plugin_init, which runs once per instance with
 * the plugin's config and registers the hooks it implements; sidetrace.c provides the ABI's
 * exports and hides its buffers, views and op lists. Build with clang for wasm32-wasi as a
 * reactor (see README.md):
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -Oz -flto sidetrace.c plugin.c \
 *         -Wl,--strip-all -Wl,-z,stack-size=65536 -o plugin.wasm
 *
 * Strings are st_str slices (pointer and length, not NUL-terminated). Strings the SDK hands
 * to a hook (view fields, header values) are valid until the hook returns.
 */
#ifndef SIDETRACE_H
#define SIDETRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A string slice: len bytes of UTF-8 at ptr, not NUL-terminated. */
typedef struct {
	const char *ptr;
	size_t len;
} st_str;

/* ST_STR("literal") and st_cstr(nul_terminated) make slices. */
#define ST_STR(lit) ((st_str){(lit), sizeof(lit) - 1})
st_str st_cstr(const char *s);
/* st_str_eq compares two slices byte for byte; st_str_eq_fold ignores ASCII case. */
int st_str_eq(st_str a, st_str b);
int st_str_eq_fold(st_str a, st_str b);

/* A request hook's sampling decision. */
typedef enum {
	ST_NO_OPINION = 0,       /* leave sampling to the sampler */
	ST_DROP = 1,             /* neither record nor sample */
	ST_RECORD_ONLY = 2,      /* record the span, do not sample it */
	ST_RECORD_AND_SAMPLE = 3 /* record and sample */
} st_decision;

/* Span kinds (OTLP numbering). */
enum { ST_KIND_UNSPECIFIED, ST_KIND_INTERNAL, ST_KIND_SERVER, ST_KIND_CLIENT, ST_KIND_PRODUCER, ST_KIND_CONSUMER };

/* Log levels, as in Go's log/slog. */
enum { ST_LOG_DEBUG = -4, ST_LOG_INFO = 0, ST_LOG_WARN = 4, ST_LOG_ERROR = 8 };

/* Writes msg to the host's log, attributed to the plugin. */
void st_log(int level, st_str msg);

/* ---- Registration ------------------------------------------------------------------ */

typedef struct st_plugin st_plugin;
typedef struct st_request st_request;
typedef struct st_response st_response;
typedef struct st_span st_span;

/*
 * Defined by the plugin: runs once per instance with the config (the JSON value of
 * "config" in SIDETRACE_PLUGINS, or empty), registers hooks and declares headers. Return
 * 0, or st_refuse(p, message) to refuse the plugin (bad config).
 */
int sidetrace_plugin_init(st_plugin *p, st_str config);

/* Refuses the plugin with message (copied); returns -1. */
int st_refuse(st_plugin *p, st_str message);

/* Declares a request (response) header the hook reads: its values come with every view. */
void st_request_header(st_plugin *p, st_str name);
void st_response_header(st_plugin *p, st_str name);

/* Register the hooks. Only registered hooks are declared to the host. */
void st_on_request(st_plugin *p, st_decision (*hook)(st_request *r));
void st_on_response(st_plugin *p, void (*hook)(st_response *r));
void st_on_span_end(st_plugin *p, void (*hook)(st_span *s));

/* ---- Attribute values -------------------------------------------------------------- */

enum {
	ST_VALUE_OTHER, ST_VALUE_STRING, ST_VALUE_BOOL, ST_VALUE_INT64, ST_VALUE_FLOAT64,
	ST_VALUE_STRING_SLICE, ST_VALUE_BOOL_SLICE, ST_VALUE_INT64_SLICE, ST_VALUE_FLOAT64_SLICE
};

/*
 * An attribute value as the host sent it. Scalars are decoded; slices are left encoded
 * (count elements at raw): read them with st_value_string_at and friends.
 */
typedef struct {
	uint8_t type;
	st_str str; /* ST_VALUE_STRING, ST_VALUE_OTHER */
	int boolean;
	int64_t int64;
	double float64;
	uint32_t count;     /* slices */
	const uint8_t *raw; /* slices: the encoded elements */
} st_value;

st_str st_value_string_at(const st_value *v, uint32_t i); /* ST_VALUE_STRING_SLICE */

/* ---- Request hook ------------------------------------------------------------------ */

int st_request_kind(const st_request *r);
const uint8_t *st_request_trace_id(const st_request *r); /* 16 bytes */
st_str st_request_method(const st_request *r);
st_str st_request_scheme(const st_request *r);
st_str st_request_host(const st_request *r);
st_str st_request_path(const st_request *r);
st_str st_request_query(const st_request *r); /* without '?' */
st_str st_request_peer(const st_request *r);  /* "ip:port" */
st_str st_request_tenant(const st_request *r); /* as set by earlier plugins or this hook */
/*
 * Reads a request header: 1 and its values joined with ", " in *value, or 0 if absent.
 * Declared headers come with the view; others cost a call to the host.
 */
int st_request_get_header(st_request *r, st_str name, st_str *value);
void st_request_set_attribute_string(st_request *r, st_str key, st_str value);
void st_request_set_attribute_int64(st_request *r, st_str key, int64_t value);
void st_request_set_attribute_bool(st_request *r, st_str key, int value);
void st_request_set_attribute_float64(st_request *r, st_str key, double value);
void st_request_set_tenant(st_request *r, st_str tenant);
void st_request_fail(st_request *r, st_str message);

/* ---- Response hook ----------------------------------------------------------------- */

int st_response_kind(const st_response *r);
const uint8_t *st_response_trace_id(const st_response *r);
st_str st_response_tenant(const st_response *r);
uint32_t st_response_status(const st_response *r);
uint64_t st_response_duration_ns(const st_response *r);
int st_response_get_header(st_response *r, st_str name, st_str *value);
void st_response_set_attribute_string(st_response *r, st_str key, st_str value);
void st_response_set_attribute_int64(st_response *r, st_str key, int64_t value);
void st_response_set_attribute_bool(st_response *r, st_str key, int value);
void st_response_set_attribute_float64(st_response *r, st_str key, double value);
void st_response_mark_error(st_response *r, st_str description);
void st_response_keep(st_response *r);
void st_response_fail(st_response *r, st_str message);

/* ---- Span-end hook ----------------------------------------------------------------- */
/* Edits are sent to the host; the view (st_span_attribute...) shows the span as it came. */

int st_span_kind(const st_span *s);
const uint8_t *st_span_trace_id(const st_span *s);
const uint8_t *st_span_span_id(const st_span *s); /* 8 bytes */
st_str st_span_name(const st_span *s);
uint32_t st_span_attribute_count(const st_span *s);
/* The i-th attribute: its key in *key and value in *value. */
void st_span_attribute(const st_span *s, uint32_t i, st_str *key, st_value *value);
uint32_t st_span_event_count(const st_span *s);
st_str st_span_event_name(const st_span *s, uint32_t event);
uint64_t st_span_event_time(const st_span *s, uint32_t event);
uint32_t st_span_event_attribute_count(const st_span *s, uint32_t event);
void st_span_event_attribute(const st_span *s, uint32_t event, uint32_t i, st_str *key, st_value *value);
void st_span_set_attribute_string(st_span *s, st_str key, st_str value);
void st_span_set_attribute_int64(st_span *s, st_str key, int64_t value);
void st_span_delete_attribute(st_span *s, st_str key);
void st_span_set_event_attribute_string(st_span *s, uint32_t event, st_str key, st_str value);
void st_span_delete_event_attribute(st_span *s, uint32_t event, st_str key);
void st_span_fail(st_span *s, st_str message);

/* ---- JSON (for configs) ------------------------------------------------------------ */
/*
 * A pull reader: st_json_begin, then read the value st_json_peek announces. Objects:
 * st_json_object(j) enters, then st_json_member(j, &key) returns 1 per member (the reader is
 * then at its value, which must be read or st_json_skip-ped) and 0 after the last. Strings
 * are unescaped into memory from malloc (free it). On error the read returns -1 and
 * j->err holds the message; like Go's json.Decoder, text after the first value is ignored.
 */
typedef enum {
	ST_JSON_ERROR = -1, ST_JSON_NULL = 1, ST_JSON_BOOL, ST_JSON_NUMBER, ST_JSON_STRING, ST_JSON_ARRAY, ST_JSON_OBJECT
} st_json_type;

typedef struct {
	const char *s;
	size_t n, i;
	int depth;
	char err[80];
} st_json;

void st_json_begin(st_json *j, st_str text);
st_json_type st_json_peek(st_json *j);
const char *st_json_type_name(st_json_type t); /* "null", "bool", "number", ... */
int st_json_null(st_json *j);
int st_json_bool(st_json *j, int *b);
int st_json_number(st_json *j, double *f);
int st_json_string(st_json *j, st_str *s); /* s->ptr from malloc */
int st_json_object(st_json *j);
int st_json_member(st_json *j, st_str *key); /* key->ptr from malloc */
int st_json_array(st_json *j);
int st_json_element(st_json *j);
int st_json_skip(st_json *j);

#ifdef __cplusplus
}
#endif
#endif
