#include "CSQLiteLoop.h"
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>

void *csl_open(const char *path, int durable) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    sqlite3_exec(db, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    return db;
}

void csl_close(void *handle) { sqlite3_close((sqlite3 *)handle); }

int64_t csl_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int csl_populate_accounts(void *handle, int64_t first, int64_t count, int64_t created_at) {
    sqlite3 *db = handle;
    sqlite3_stmt *st = NULL;
    char id[64], email[64];
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(db, "INSERT INTO accounts (id, email, email_key, display_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) return -1;
    for (int64_t i = first; i < first + count; i++) {
        snprintf(id, sizeof id, "00000000-0000-4000-8000-%012lld", (long long)i);
        snprintf(email, sizeof email, "reader%lld@example.com", (long long)i);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, "Reader", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, created_at);
        sqlite3_bind_int64(st, 6, created_at);
        if (sqlite3_step(st) != SQLITE_DONE) { sqlite3_finalize(st); return -1; }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int64_t csl_lookup_accounts(void *handle, const char *const *keys, int64_t count) {
    sqlite3 *db = handle;
    sqlite3_stmt *st = NULL;
    int64_t found = 0, sink = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, email, display_name, created_at, updated_at FROM accounts WHERE email_key = ?", -1, &st, NULL) != SQLITE_OK) return -1;
    for (int64_t i = 0; i < count; i++) {
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *id = sqlite3_column_text(st, 0);
            const unsigned char *email = sqlite3_column_text(st, 1);
            const unsigned char *name = sqlite3_column_text(st, 2);
            sink += id[0] + email[0] + (name ? name[0] : 0) + sqlite3_column_int64(st, 3) + sqlite3_column_int64(st, 4);
            found++;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return sink == 0 ? -1 : found;
}

int64_t csl_meter_counts(void *handle, const char *const *subjects, int64_t count, int64_t start, int64_t end) {
    sqlite3 *db = handle;
    sqlite3_stmt *st = NULL;
    int64_t total = 0;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM (SELECT DISTINCT title_id, article_id FROM reads WHERE subject = ? AND read_at > ? AND read_at <= ?)", -1, &st, NULL) != SQLITE_OK) return -1;
    for (int64_t i = 0; i < count; i++) {
        sqlite3_bind_text(st, 1, subjects[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, start);
        sqlite3_bind_int64(st, 3, end);
        if (sqlite3_step(st) != SQLITE_ROW) { sqlite3_finalize(st); return -1; }
        total += sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return total;
}

int64_t csl_record_reads(void *handle, const char *const *subjects, int64_t count, const char *title, int64_t at) {
    sqlite3 *db = handle;
    sqlite3_stmt *st = NULL;
    char article[32];
    if (sqlite3_prepare_v2(db, "INSERT INTO reads (subject, title_id, article_id, read_at) VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) return -1;
    for (int64_t i = 0; i < count; i++) {
        snprintf(article, sizeof article, "c%lld", (long long)i);
        sqlite3_bind_text(st, 1, subjects[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, article, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, at + i);
        if (sqlite3_step(st) != SQLITE_DONE) { sqlite3_finalize(st); return -1; }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return count;
}
