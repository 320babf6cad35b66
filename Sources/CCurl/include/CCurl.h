#pragma once
// Non-variadic wrappers over libcurl's easy interface.
//
// `curl_easy_setopt` and `curl_easy_getinfo` are C variadic functions, which
// Swift cannot call; each wrapper below fixes one argument type so that
// Swift sees an ordinary function. Nothing here keeps state: every call goes
// straight to libcurl, so the thread-safety rules are libcurl's own (one easy
// handle is used by one thread at a time; `curl_global_init` runs once).
#include <curl/curl.h>
#include <stddef.h>

/// The signature of CURLOPT_WRITEFUNCTION callbacks.
typedef size_t (*ccurl_write_callback)(char *data, size_t size, size_t count, void *userdata);

/// `curl_global_init(CURL_GLOBAL_DEFAULT)` (the flag is a macro Swift cannot import).
CURLcode ccurl_global_init_default(void);

/// `curl_easy_setopt` for options that take a `long` (CURLOPTTYPE_LONG).
CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value);

/// `curl_easy_setopt` for options that take a C string (CURLOPTTYPE_STRINGPOINT).
CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);

/// `curl_easy_setopt` for options that take a data pointer (CURLOPTTYPE_OBJECTPOINT/CBPOINT).
CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);

/// `curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback)`.
CURLcode ccurl_easy_setopt_write_function(CURL *handle, ccurl_write_callback callback);

/// `curl_easy_getinfo` for infos that return a `long` (e.g. CURLINFO_RESPONSE_CODE).
CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);

/// `curl_easy_getinfo` for infos that return a `double` (e.g. CURLINFO_TOTAL_TIME).
CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);

/// `curl_easy_getinfo` for infos that return a C string (e.g. CURLINFO_EFFECTIVE_URL).
CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);
