/* SPDX-License-Identifier: GPL-2.0-or-later */
/* connpidctl's commands: args are the words after the command's name;
 * each returns the exit status (EXIT_FOUND, EXIT_NOT_FOUND, EXIT_ERROR). */
#pragma once

int verb_lookup(char **args, int n);
int verb_watch(char **args, int n);
int verb_recent(char **args, int n);
int verb_history(char **args, int n);
int verb_stats(char **args, int n);
int verb_status(char **args, int n);
int verb_ping(char **args, int n);
int verb_ipv6_block(char **args, int n);
