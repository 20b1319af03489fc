// SPDX-License-Identifier: GPL-2.0-or-later
/* Table tests for cgroup path -> unit/container/pod, over the path shapes
 * systemd, Docker, containerd/CRI, CRI-O, podman and Kubernetes write. */
#include <stdio.h>
#include <string.h>

#include "cgroup-names.h"

#define ID64 "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
#define ID64B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct row {
	const char *path;
	const char *unit, *slice, *user_unit, *runtime, *container_id, *pod_uid;
};

static const struct row rows[] = {
	{ "/system.slice/nginx.service", "nginx.service", "system.slice", "", "", "", "" },
	{ "/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", "system-getty.slice", "", "", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal-1234.scope",
	  "app-org.gnome.Terminal-1234.scope", "app.slice", "user@1000.service", "", "", "" },
	{ "/user.slice/user-1000.slice/session-3.scope", "session-3.scope", "user-1000.slice", "", "", "", "" },
	{ "/docker/" ID64, "", "", "", "docker", ID64, "" },
	{ "/system.slice/docker-" ID64 ".scope", "", "system.slice", "", "docker", ID64, "" },
	{ "/connpid-test-docker/" ID64, "", "", "", "docker", ID64, "" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-" ID64 ".scope",
	  "", "kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice", "", "containerd", ID64,
	  "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d" },
	{ "/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" ID64, "", "", "", "kubernetes", ID64,
	  "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d" },
	{ "/kubepods.slice/kubepods-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/crio-" ID64 ".scope",
	  "", "kubepods-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice", "", "cri-o", ID64,
	  "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d" },
	{ "/machine.slice/libpod-" ID64 ".scope", "", "machine.slice", "", "podman", ID64, "" },
	{ "/libpod_parent/libpod-" ID64, "", "", "", "podman", ID64, "" },
	/* Issue 12, item 14: a container id is believed only where a container
	 * manager put it. In user.slice or below a unit (a delegated sub-tree)
	 * anyone may name a cgroup like a container: it is then just a unit. */
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID64 ".scope",
	  "libpod-" ID64 ".scope", "user.slice", "user@1000.service", "", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-" ID64 ".scope",
	  "docker-" ID64 ".scope", "app.slice", "user@1000.service", "", "", "" },
	{ "/user.slice/user-1000.slice/docker-" ID64 ".scope", "docker-" ID64 ".scope", "user-1000.slice", "", "", "", "" },
	{ "/user.slice/docker/" ID64, "", "user.slice", "", "", "", "" },
	{ "/user.slice/user-1000.slice/session-3.scope/docker/" ID64, "session-3.scope", "user-1000.slice", "", "", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/kubepods/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" ID64,
	  "", "user-1000.slice", "user@1000.service", "", "", "" },
	{ "/system.slice/app.service/docker-" ID64 ".scope", "docker-" ID64 ".scope", "system.slice", "", "", "", "" },
	{ "/system.slice/app.service/docker/" ID64, "app.service", "system.slice", "", "", "", "" },
	{ "/machine.slice/machine-vm.scope/libpod-" ID64 ".scope", "libpod-" ID64 ".scope", "machine.slice", "", "", "", "" },
	/* the first container wins; what it names inside itself names nothing */
	{ "/system.slice/docker-" ID64 ".scope/docker-" ID64B ".scope", "", "system.slice", "", "docker", ID64, "" },
	{ "/system.slice/docker-" ID64 ".scope/system.slice/sshd.service", "", "system.slice", "", "docker", ID64, "" },
	{ "/docker/" ID64 "/docker/" ID64B, "", "", "", "docker", ID64, "" },
	{ "/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" ID64 "/pod9a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
	  "", "", "", "kubernetes", ID64, "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d" },
	{ "/", "", "", "", "", "", "" },
	{ "", "", "", "", "", "", "" },
	{ "/connpid-test-123", "", "", "", "", "", "" },
	/* not quite an id: 63 hex digits, uppercase */
	{ "/docker/" "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2", "", "", "", "", "", "" },
	{ "/docker/" "4F1C2D3E5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D", "", "", "", "", "", "" },
};

static int check(const char *path, const char *field, const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return 0;
	fprintf(stderr, "FAIL %s: %s = \"%s\", want \"%s\"\n", path, field, got, want);
	return 1;
}

int main(void)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct cgroup_identity id;

		cgroup_identify(r->path, &id);
		failed += check(r->path, "unit", id.unit, r->unit);
		failed += check(r->path, "slice", id.slice, r->slice);
		failed += check(r->path, "user_unit", id.user_unit, r->user_unit);
		failed += check(r->path, "runtime", id.runtime, r->runtime);
		failed += check(r->path, "container_id", id.container_id, r->container_id);
		failed += check(r->path, "pod_uid", id.pod_uid, r->pod_uid);
	}
	printf("%zu paths, %d mismatches\n", sizeof(rows) / sizeof(rows[0]), failed);
	return failed ? 1 : 0;
}
