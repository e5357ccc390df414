/*
 * OpenSSL loaded on demand.
 *
 * Paho C built with PAHO_WITH_SSL calls OpenSSL directly, so a program
 * linking it loads libssl and libcrypto at start-up: about 2 MB of
 * resident memory (their relocations, symbol tables and the pages the
 * loader touches), even in a program that never makes a TLS connection.
 *
 * This file defines every OpenSSL function Paho C calls (the list is
 * openssl_symbols.h) as a forwarder to the real one, found with dlopen()
 * and dlsym() the first time it is needed: paho_openssl_load(), which a
 * program calls before it creates a TLS client (to report a failure
 * itself), or the first call of any forwarder. libssl and libcrypto are
 * then not linked at all. The forwarders are hidden: they are seen by
 * Paho C's objects only, never by OpenSSL itself.
 *
 * Paho C also calls a few of them without TLS: OPENSSL_thread_stop() when
 * its threads end, SSL_SESSION_free(NULL) when a connection closes,
 * OpenSSL_version() for the log of its first client. While OpenSSL is not
 * loaded the *_free() functions and OPENSSL_thread_stop() do nothing (no
 * OpenSSL object or thread state can exist yet: IDLE in the list) and
 * OpenSSL_version() says that it is not loaded (QUIET).
 */
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "OpenSSL on demand is written for OpenSSL 3 (the symbols and the soname)"
#endif

#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)
/* The soname of the libssl these headers belong to: libssl.so.3. */
#define LIBSSL_SONAME "libssl.so." STRINGIFY(OPENSSL_SHLIB_VERSION)

#define HIDDEN __attribute__((visibility("hidden")))

/* The real functions, set once by load(). */
#define FUNC(ret, name, params, args) static ret(*real_##name) params;
#define VOID(name, params, args) static void(*real_##name) params;
#define IDLE VOID
#define QUIET(ret, name, params, args, value) FUNC(ret, name, params, args)
#include "openssl_symbols.h"
#undef FUNC
#undef VOID
#undef IDLE
#undef QUIET

static pthread_mutex_t load_mutex = PTHREAD_MUTEX_INITIALIZER;
/* 1 once every real_ pointer is set (release/acquire). */
static int loaded;
/* Why the last attempt failed. */
static char load_error[512];

static int is_loaded(void)
{
	return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
}

/* Loads libssl (and with it libcrypto) and finds every function; 0 on
 * success, -1 with load_error set. Under load_mutex. */
static int load_locked(void)
{
	void *lib;
	const char *missing = NULL;

	if (loaded)
		return 0;
	lib = dlopen(LIBSSL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
	{
		const char *why = dlerror();
		snprintf(load_error, sizeof load_error, "cannot load %s: %s", LIBSSL_SONAME,
			why ? why : "unknown error");
		return -1;
	}
	/* dlsym() on libssl's handle also searches libcrypto, its dependency. */
#define FUNC(ret, name, params, args) \
	if (missing == NULL && (*(void **)&real_##name = dlsym(lib, #name)) == NULL) \
		missing = #name;
#define VOID(name, params, args) FUNC(void, name, params, args)
#define IDLE VOID
#define QUIET(ret, name, params, args, value) FUNC(ret, name, params, args)
#include "openssl_symbols.h"
#undef FUNC
#undef VOID
#undef IDLE
#undef QUIET
	if (missing != NULL)
	{
		snprintf(load_error, sizeof load_error, "%s has no %s", LIBSSL_SONAME, missing);
		/* Never unloaded: a forwarder may be reading a pointer already set. */
		return -1;
	}
	__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Loads OpenSSL if it is not yet; 0 on success, else -1 and why in
 * error (error_len bytes at most, NUL-terminated). Thread-safe. */
int paho_openssl_load(char *error, size_t error_len)
{
	int rc;

	if (is_loaded())
		return 0;
	pthread_mutex_lock(&load_mutex);
	rc = load_locked();
	if (rc != 0 && error != NULL && error_len > 0)
	{
		strncpy(error, load_error, error_len - 1);
		error[error_len - 1] = '\0';
	}
	pthread_mutex_unlock(&load_mutex);
	return rc;
}

/* A forwarder called before paho_openssl_load() succeeded: load now, or
 * stop the program (Paho C cannot be told that OpenSSL is missing). */
static void ensure_loaded(void)
{
	char why[sizeof load_error];

	if (is_loaded())
		return;
	if (paho_openssl_load(why, sizeof why) != 0)
	{
		fprintf(stderr, "OpenSSL needed for a TLS connection, but %s\n", why);
		abort();
	}
}

#define FUNC(ret, name, params, args) \
	HIDDEN ret name params \
	{ \
		ensure_loaded(); \
		return real_##name args; \
	}
#define VOID(name, params, args) \
	HIDDEN void name params \
	{ \
		ensure_loaded(); \
		real_##name args; \
	}
#define IDLE(name, params, args) \
	HIDDEN void name params \
	{ \
		if (is_loaded()) \
			real_##name args; \
	}
#define QUIET(ret, name, params, args, value) \
	HIDDEN ret name params \
	{ \
		return is_loaded() ? real_##name args : (value); \
	}
#include "openssl_symbols.h"
#undef FUNC
#undef VOID
#undef IDLE
#undef QUIET
