/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one way a byte buffer grows (JSON writer, HTTP bodies, client and
 * export output): doubling, so n appends cost O(n) copies in all. */
#pragma once

#include <stddef.h>

/* Room for `need` bytes in *buf, whose capacity is *cap: grows it to the
 * first power-of-two multiple of `first` (or of *cap) that holds them.
 * -ENOMEM (or -EOVERFLOW past SIZE_MAX/2) leaves *buf and *cap as they
 * were; callers bound `need` themselves. */
int growbuf_reserve(char **buf, size_t *cap, size_t need, size_t first);
