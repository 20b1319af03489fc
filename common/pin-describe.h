/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>

/* {pin_dir, loaded, problem|abi_version+version+ipv6_block, maps[], links[],
 *  programs[]}; links carry attach type and cgroup id. */
int pins_describe(const char *pin_dir, json_object **ret);
