/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging: errors are reported once, at the level that decides what to do
 * about them; helpers below return negative errno and stay quiet.
 */
#pragma once

#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_max_level(enum log_level level);
enum log_level log_get_max_level(void);
/* Prefix lines with "<N>" for journald when stderr is the journal. */
void log_set_prefix_levels(bool on);
void log_set_program(const char *name);

/* Returns -abs(error) so callers can `return log_error_errno(r, ...)`.
 * %m in the format prints strerror(-error). */
int log_internal(enum log_level level, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...)   (void)log_internal(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warning(...) (void)log_internal(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...)    (void)log_internal(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...)   (void)log_internal(LOG_LVL_DEBUG, 0, __VA_ARGS__)

#define log_error_errno(e, ...)   log_internal(LOG_LVL_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_LVL_WARN, (e), __VA_ARGS__)
#define log_debug_errno(e, ...)   log_internal(LOG_LVL_DEBUG, (e), __VA_ARGS__)

/* s made safe to show on a terminal or to write to the journal: control
 * characters (C0, DEL), bytes that are not UTF-8 as \xHH; C1 controls
 * and the invisible direction overrides as \uXXXX; backslash doubled, so
 * a name that spells "\x1b" reads "\\x1b". Newly allocated, NULL when out
 * of memory. Every message and every field connpidctl prints goes
 * through it: names come from whoever started a process. */
char *text_escape(const char *s);

/* Route libbpf's messages through us (debug only unless verbose). */
void log_setup_libbpf(bool verbose);
