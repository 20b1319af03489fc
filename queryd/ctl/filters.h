/* SPDX-License-Identifier: GPL-2.0-or-later */
/* connpidctl's filter options (watch, recent, history) into arg_filter. */
#pragma once

#include <getopt.h>
#include <stddef.h>

#define FILTER_OPTIONS_MAX 16

/* The getopt entries of the filter options, with values first, first+1,
 * ...; their number (at most FILTER_OPTIONS_MAX). */
size_t filter_getopt_options(struct option *ret, int first);
/* The value of filter option `index` (c - first), checked and added to
 * arg_filter; errors logged. */
int filter_option_parse(size_t index, const char *value);
/* --src, --netns and --direction as filter members too (all but lookup). */
int scope_filters(void);
/* unix seconds, local YYYY-MM-DDTHH:MM:SS, or -N[smhd] meaning ago. */
int parse_time(const char *s, double *ret);
