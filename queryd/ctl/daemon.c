// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>

#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "ctl.h"
#include "daemon.h"
#include "output.h"

bool unreachable(int r)
{
	switch (-r) {
	case ENOENT: case ECONNREFUSED: case EACCES: case EPERM: case ENAMETOOLONG: case EAGAIN: case ENOTSOCK:
		return true;
	default:
		return false;
	}
}

int open_daemon(connpid **ret)
{
	int r = connpid_open(ret, arg_socket_path, 0);

	if (r < 0)
		return r;
	/* the daemon's answers (a long history) take what they take */
	return connpid_set_timeout(*ret, 0);
}

int call_daemon(connpid *h, json_object *req, json_object **ret)
{
	_cleanup_free_ char *answer = NULL;
	int r;

	r = connpid_call(h, json_object_to_json_string_ext(req, JSON_LINE_FLAGS), &answer);
	if (r < 0)
		return r;
	*ret = json_tokener_parse(answer);
	return *ret ? 0 : -EBADMSG;
}

int answer_error(json_object *ans)
{
	json_object *e, *msg, *code;

	if (jget_bool(ans, "ok"))
		return 0;
	if (json_object_object_get_ex(ans, "error", &e) &&
	    json_object_object_get_ex(e, "message", &msg) && json_object_object_get_ex(e, "code", &code))
		log_error("%s (%s)", json_object_get_string(msg), json_object_get_string(code));
	else
		log_error("The daemon answered with an error");
	return -EREMOTEIO;
}

int answer_accept(json_object *ans)
{
	if (arg_json)
		print_json(ans);
	return answer_error(ans);
}

int request_daemon(json_object *req, const char *failure, connpid **ret_h, json_object **ret_ans)
{
	int r;

	r = open_daemon(ret_h);
	if (r >= 0)
		r = call_daemon(*ret_h, req, ret_ans);
	if (unreachable(r))
		return log_error_errno(r, "connpid-queryd is not reachable at %s: %m", arg_socket_path);
	if (r < 0)
		return log_error_errno(r, "%s: %m", failure);
	return 0;
}

int simple_op(const char *op, json_object *extra, json_object **ret_ans)
{
	_cleanup_json_ json_object *req = json_object_new_object();
	_cleanup_(connpid_closep) connpid *h = NULL;

	json_object_object_add(req, "op", json_object_new_string(op));
	if (extra) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(req, k, json_object_get(v));
	}
	return request_daemon(req, "No answer from connpid-queryd", &h, ret_ans);
}
