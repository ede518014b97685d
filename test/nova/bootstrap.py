"""Bootstrap and readiness checks of the test Nova control plane.

Run by test/nova/nova inside the control plane's namespaces with
/usr/bin/python3 (Debian's keystoneauth1). One process does all the REST
calls of a step: every openstack CLI call would cost ~2 s of start-up.
Passwords come from the environment, never from argv. Every step is
idempotent (find or create), so a failed cold start can simply be retried.

    bootstrap.py identity        service users, demo project, catalog
    bootstrap.py resources       flavors, image, API warm-up
    bootstrap.py services-up [--host HOST] BINARY...
                                 exit 0 when every service of BINARY (on
                                 HOST) is up
    bootstrap.py hypervisor HOST exit 0 when HOST's hypervisor is mapped
    bootstrap.py guest DIR       the test guest built in DIR (test/guest) in
                                 Glance, unless its release is there already
"""

import os
import sys

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

ADDR = os.environ.get("NOVA_BOOT_ADDR", "127.0.0.1")
SERVICES = [
    # name, type, port, path
    ("nova", "compute", 8774, "/v2.1"),
    ("placement", "placement", 8778, ""),
    ("glance", "image", 9292, ""),
    ("neutron", "network", 9696, ""),
]
SERVICE_USERS = ["nova", "placement", "glance", "neutron"]
# Small enough for the fake driver; m1.evacuable carries the tag that marks
# instances to recover.
FLAVORS = [
    ("1", "m1.tiny", 512, 1, 1, {}),
    ("2", "m1.small", 1024, 1, 2, {}),
    ("3", "m1.medium", 2048, 2, 4, {}),
    ("10", "m1.evacuable", 512, 1, 1, {"evacuable": "true"}),
    # The test guest (test/guest): a kernel and a busybox initramfs.
    ("20", "m1.guest", 128, 1, 1, {}),
    ("21", "m1.guest-evacuable", 128, 1, 1, {"evacuable": "true"}),
]
IMAGE_NAME = "tiny"
# The test guest's bootable images: name -> extra kernel command line. The
# guest feeds its watchdog; "guest-hang" stops after 5 s, as a hung kernel.
# hw_watchdog_action pause: a guest whose watchdog fired stays paused (and
# libvirt says why) until someone restarts it.
GUEST_IMAGES = {"guest": "", "guest-hang": " computeha.hang_after=5"}
GUEST_IDLE_IMAGE = "guest-idle"
GUEST_RELEASE_PROP = "computeha_guest_release"
# Changed whenever the images' properties below change: images of an older one are replaced.
GUEST_PROPS_VERSION = "3"


def session():
    auth = v3.Password(
        auth_url=os.environ["NOVA_BOOT_URL"],
        username="admin",
        password=os.environ["NOVA_BOOT_PASSWORD"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth)


def ident(s, method, path, **kw):
    return s.request(
        path, method, endpoint_filter={"service_type": "identity", "interface": "public"}, **kw
    )


def find_or_create(s, collection, key, name, body, query=""):
    r = ident(s, "GET", "/%s?name=%s%s" % (collection, name, query)).json()[collection]
    if r:
        return r[0]["id"]
    return ident(s, "POST", "/" + collection, json={key: body}).json()[key]["id"]


def cmd_identity():
    s = session()
    service_pw = os.environ["NOVA_BOOT_SERVICE_PASSWORD"]
    demo_pw = os.environ["NOVA_BOOT_DEMO_PASSWORD"]
    roles = {}
    for role in ("admin", "member", "reader", "service"):
        roles[role] = find_or_create(s, "roles", "role", role, {"name": role})
    service_project = find_or_create(
        s, "projects", "project", "service", {"name": "service", "domain_id": "default"}
    )
    demo_project = find_or_create(
        s, "projects", "project", "demo", {"name": "demo", "domain_id": "default"}
    )
    for user in SERVICE_USERS:
        uid = find_or_create(
            s, "users", "user", user, {"name": user, "domain_id": "default", "password": service_pw}
        )
        # The password is set again so that a state directory reused with
        # new secrets keeps working.
        ident(s, "PATCH", "/users/" + uid, json={"user": {"password": service_pw}})
        for role in ("admin", "service"):
            ident(s, "PUT", "/projects/%s/users/%s/roles/%s" % (service_project, uid, roles[role]))
    demo = find_or_create(
        s, "users", "user", "demo", {"name": "demo", "domain_id": "default", "password": demo_pw}
    )
    ident(s, "PATCH", "/users/" + demo, json={"user": {"password": demo_pw}})
    ident(s, "PUT", "/projects/%s/users/%s/roles/%s" % (demo_project, demo, roles["member"]))
    for name, stype, port, path in SERVICES:
        svc = ident(s, "GET", "/services?type=" + stype).json()["services"]
        if svc:
            sid = svc[0]["id"]
        else:
            sid = ident(
                s, "POST", "/services", json={"service": {"name": name, "type": stype}}
            ).json()["service"]["id"]
        url = "http://%s:%d%s" % (ADDR, port, path)
        have = {
            e["interface"]: e
            for e in ident(s, "GET", "/endpoints?service_id=" + sid).json()["endpoints"]
        }
        for interface in ("public", "internal", "admin"):
            if interface in have:
                # The address may have changed since the last start.
                if have[interface]["url"] != url:
                    ident(
                        s,
                        "PATCH",
                        "/endpoints/" + have[interface]["id"],
                        json={"endpoint": {"url": url}},
                    )
                continue
            ident(
                s,
                "POST",
                "/endpoints",
                json={
                    "endpoint": {
                        "service_id": sid,
                        "interface": interface,
                        "region_id": "RegionOne",
                        "url": url,
                    }
                },
            )


def api(s, stype, method, path, microversion=None, **kw):
    headers = kw.pop("headers", {})
    if microversion:
        headers["OpenStack-API-Version"] = "%s %s" % (stype, microversion)
    return s.request(
        path,
        method,
        endpoint_filter={"service_type": stype, "interface": "public"},
        headers=headers,
        **kw,
    )


def cmd_resources():
    s = session()
    have = {f["name"] for f in api(s, "compute", "GET", "/flavors").json()["flavors"]}
    for fid, name, ram, vcpus, disk, specs in FLAVORS:
        if name not in have:
            api(
                s,
                "compute",
                "POST",
                "/flavors",
                json={"flavor": {"id": fid, "name": name, "ram": ram, "vcpus": vcpus, "disk": disk}},
            )
        if specs:
            api(s, "compute", "POST", "/flavors/%s/os-extra_specs" % fid, json={"extra_specs": specs})
    images = api(s, "image", "GET", "/v2/images?name=" + IMAGE_NAME).json()["images"]
    images = [i for i in images if i["status"] == "active"]
    if not images:
        image = api(
            s,
            "image",
            "POST",
            "/v2/images",
            json={
                "name": IMAGE_NAME,
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
            },
        ).json()
        # The fake driver never reads the image: a few bytes are enough.
        api(
            s,
            "image",
            "PUT",
            "/v2/images/%s/file" % image["id"],
            data=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        )
    # Warm-up: the first call of each API loads policies and plugins.
    api(s, "network", "GET", "/v2.0/networks")
    api(s, "network", "GET", "/v2.0/ports")
    api(s, "placement", "GET", "/resource_providers")
    api(s, "compute", "GET", "/servers/detail?all_tenants=1", microversion="2.93")


def upload(s, name, path, disk_format, container_format, props):
    image = api(
        s,
        "image",
        "POST",
        "/v2/images",
        json=dict(
            name=name,
            disk_format=disk_format,
            container_format=container_format,
            visibility="public",
            **props,
        ),
    ).json()
    with open(path, "rb") as f:
        api(
            s,
            "image",
            "PUT",
            "/v2/images/%s/file" % image["id"],
            data=f.read(),
            headers={"Content-Type": "application/octet-stream"},
        )
    return image["id"]


def cmd_guest(d):
    with open(os.path.join(d, "release")) as f:
        release = f.read().strip() + " props=" + GUEST_PROPS_VERSION
    s = session()
    names = ["guest-kernel", "guest-ramdisk", GUEST_IDLE_IMAGE] + list(GUEST_IMAGES)
    have = {}
    for name in names:
        have[name] = api(s, "image", "GET", "/v2/images?name=" + name).json()["images"]
    if all(
        any(i["status"] == "active" and i.get(GUEST_RELEASE_PROP) == release for i in have[n])
        for n in names
    ):
        return
    # Another release, or a half-finished upload: replaced as a whole, so
    # that each name is one image.
    for name in names:
        for i in have[name]:
            api(s, "image", "DELETE", "/v2/images/%s" % i["id"])
    tag = {GUEST_RELEASE_PROP: release}
    kernel = upload(s, "guest-kernel", os.path.join(d, "vmlinuz"), "aki", "aki", tag)
    ramdisk = upload(s, "guest-ramdisk", os.path.join(d, "initrd.gz"), "ari", "ari", tag)
    for name, extra in GUEST_IMAGES.items():
        props = dict(
            tag,
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line="console=ttyS0 quiet" + extra,
            hw_watchdog_action="pause",
            # The guest has no ACPI button driver: a stop asked of Nova destroys it after
            # 3 s instead of the default minute of waiting for a clean shutdown.
            os_shutdown_timeout="3",
        )
        upload(s, name, os.path.join(d, "disk.raw"), "raw", "bare", props)
    # The idle guest boots from its own disk, which halts: no kernel.
    upload(s, GUEST_IDLE_IMAGE, os.path.join(d, "idle.raw"), "raw", "bare", dict(tag, os_shutdown_timeout="3"))


def cmd_services_up(argv):
    host = None
    if argv[:1] == ["--host"]:
        host = argv[1]
        argv = argv[2:]
    s = session()
    services = api(s, "compute", "GET", "/os-services", microversion="2.93").json()["services"]
    for binary in argv:
        found = [x for x in services if x["binary"] == binary and (host is None or x["host"] == host)]
        if not found or any(x["state"] != "up" for x in found):
            return 1
    return 0


def cmd_hypervisor(host):
    """Exit 0 once the API lists the host's hypervisor: the list goes
    through the host mappings, so this is true only after discover_hosts."""
    s = session()
    r = api(
        s, "compute", "GET", "/os-hypervisors?hypervisor_hostname_pattern=" + host,
        microversion="2.93", raise_exc=False,
    )
    if r.status_code != 200:
        return 1
    return 0 if any(h["hypervisor_hostname"] == host for h in r.json()["hypervisors"]) else 1


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "identity":
        cmd_identity()
        return 0
    if argv[0] == "resources":
        cmd_resources()
        return 0
    if argv[0] == "services-up":
        return cmd_services_up(argv[1:])
    if argv[0] == "hypervisor" and len(argv) == 2:
        return cmd_hypervisor(argv[1])
    if argv[0] == "guest" and len(argv) == 2:
        cmd_guest(argv[1])
        return 0
    print("unknown step %r" % argv[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
