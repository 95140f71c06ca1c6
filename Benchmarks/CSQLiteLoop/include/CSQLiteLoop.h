// The reference for the store benchmark: the same SQL as PaywallStore, run through a
// plain C loop over the system libsqlite3 (prepare once; bind, step, read, reset).
#ifndef CSQLITELOOP_H
#define CSQLITELOOP_H

#include <stdint.h>

/// Opens `path` like the store does (WAL, foreign keys, busy timeout, synchronous FULL or
/// NORMAL). Returns an opaque handle or NULL.
void *csl_open(const char *path, int durable);
void csl_close(void *handle);

/// Inserts `count` accounts reader<first>…@example.com in one transaction (test data).
int csl_populate_accounts(void *handle, int64_t first, int64_t count, int64_t created_at);

/// Looks up each key of `keys` by email_key, reading every column; returns the number
/// found, or -1 on error.
int64_t csl_lookup_accounts(void *handle, const char *const *keys, int64_t count);

/// Counts distinct articles per subject in (start, end]; returns the sum, or -1.
int64_t csl_meter_counts(void *handle, const char *const *subjects, int64_t count, int64_t start, int64_t end);

/// Inserts one read per subject, each in its own (autocommit) transaction; returns how
/// many, or -1.
int64_t csl_record_reads(void *handle, const char *const *subjects, int64_t count, const char *title, int64_t at);

/// Monotonic nanoseconds.
int64_t csl_now_ns(void);

#endif
