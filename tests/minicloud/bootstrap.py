"""Create the users, catalog and resources of the local test cloud.

Run by ``tests/minicloud/minicloud`` with the cloud's own venv, as the admin of
``$MINICLOUD_HOME/clouds.yaml``:

    bootstrap.py identity    service users, roles, the demo project/user, the catalog
    bootstrap.py resources   flavors, images, aggregates/AZs, networks, router, keypair, quotas
    bootstrap.py octavia-ca  the CA Octavia signs its (fake) amphorae's certificates with

Every step is idempotent: what exists is kept.
"""

import contextlib
import importlib
import os
import sys
import time

import openstack
from openstack import exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
knobs = importlib.import_module("knobs")

PASSWORD = "secret"
REGION = "RegionOne"
PORTS = {
    "compute": ("nova", 18774, "/v2.1"),
    "placement": ("placement", 18778, ""),
    "image": ("glance", 19292, ""),
    "network": ("neutron", 19696, ""),
    "orchestration": ("heat", 18004, "/v1/%(tenant_id)s"),
    "load-balancer": ("octavia", 19876, ""),
}
SERVICE_USERS = ("nova", "placement", "glance", "neutron", "heat", "octavia")

# name: (id, vcpus, ram MiB, disk GiB). m1.huge fits no fake host (1000 vCPUs each): NoValidHost.
FLAVORS = {
    "m1.tiny": ("1", 1, 512, 1),
    "m1.small": ("2", 1, 2048, 20),
    "m1.medium": ("3", 2, 4096, 40),
    "m1.huge": ("99", 1001, 1024, 1),
}
IMAGES = ("fake-image", "fake-image-v2")
GOOD_HOSTS = ("cmp-1", "cmp-2", "cmp-3")
FAIL_HOST = "host-fail"


def log(msg):
    print("bootstrap: %s" % msg, flush=True)


def connect(cloud):
    return openstack.connect(cloud=cloud)


def ensure(find, create, name, **attrs):
    found = find(name)
    if found:
        return found
    log("create %s" % name)
    return create(name=name, **attrs)


def identity():
    conn = connect("minicloud-admin")
    idn = conn.identity
    default = idn.find_domain("Default", ignore_missing=False)
    roles = {}
    for name in ("admin", "member", "reader", "service", "heat_stack_owner", "heat_stack_user"):
        roles[name] = ensure(idn.find_role, idn.create_role, name)

    def project(name, domain):
        return ensure(lambda n: idn.find_project(n, domain_id=domain.id), idn.create_project, name, domain_id=domain.id)

    def user(name, domain, default_project=None):
        attrs = dict(domain_id=domain.id, password=PASSWORD, is_enabled=True)
        if default_project is not None:
            attrs["default_project_id"] = default_project.id
        return ensure(lambda n: idn.find_user(n, domain_id=domain.id), idn.create_user, name, **attrs)

    service = project("service", default)
    admin_project = idn.find_project("admin", domain_id=default.id, ignore_missing=False)
    admin = idn.find_user("admin", domain_id=default.id, ignore_missing=False)
    idn.assign_project_role_to_user(admin_project, admin, roles["heat_stack_owner"])
    for name in SERVICE_USERS:
        u = user(name, default, service)
        idn.assign_project_role_to_user(service, u, roles["admin"])
        idn.assign_project_role_to_user(service, u, roles["service"])

    heat_domain = ensure(idn.find_domain, idn.create_domain, "heat", description="Heat stack projects and users")
    heat_admin = user("heat_domain_admin", heat_domain)
    idn.assign_domain_role_to_user(heat_domain, heat_admin, roles["admin"])

    demo_project = project("demo", default)
    demo = user("demo", default, demo_project)
    for role in ("member", "heat_stack_owner"):
        idn.assign_project_role_to_user(demo_project, demo, roles[role])

    for stype, (name, port, path) in PORTS.items():
        svc = idn.find_service(name)
        if svc is None:
            log("create service %s (%s)" % (name, stype))
            svc = idn.create_service(name=name, type=stype, is_enabled=True)
        have = {e.interface for e in idn.endpoints(service_id=svc.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                idn.create_endpoint(
                    service_id=svc.id, interface=interface, region_id=REGION, url="http://127.0.0.1:%d%s" % (port, path)
                )
    log("identity and catalog ready")


def _ed25519_keypair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode() + " demo-key@minicloud\n"


def resources():
    home = os.environ["MINICLOUD_HOME"]
    conn = connect("minicloud-admin")
    cmp, net = conn.compute, conn.network
    demo_project = conn.identity.find_project("demo", ignore_missing=False)

    for name, (fid, vcpus, ram, disk) in FLAVORS.items():
        if cmp.find_flavor(name) is None:
            log("create flavor %s" % name)
            cmp.create_flavor(name=name, id=fid, vcpus=vcpus, ram=ram, disk=disk, is_public=True)

    for i, name in enumerate(IMAGES):
        if conn.image.find_image(name) is None:
            log("create image %s" % name)
            # 1 MiB; the versions differ in content so that they have different checksums
            data = bytes([i]) * (1024 * 1024)
            conn.image.create_image(
                name, data=data, disk_format="raw", container_format="bare", visibility="public", wait=True
            )

    # Nova 34 has no AvailabilityZoneFilter: an AZ keeps servers off a host only when it is
    # backed by an aggregate. Good hosts in AZ "nova" (the default zone), host-fail alone in
    # "failzone".
    for agg_name, zone, hosts in (("az-nova", "nova", GOOD_HOSTS), ("failzone", "failzone", (FAIL_HOST,))):
        agg = cmp.find_aggregate(agg_name)
        if agg is None:
            log("create aggregate %s" % agg_name)
            agg = cmp.create_aggregate(name=agg_name, availability_zone=zone)
        for host in hosts:
            if host not in (agg.hosts or []):
                agg = cmp.add_host_to_aggregate(agg, host)

    public = net.find_network("public")
    if public is None:
        log("create network public")
        public = net.create_network(
            name="public",
            is_router_external=True,
            is_shared=False,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    if not list(net.subnets(network_id=public.id)):
        net.create_subnet(
            name="public-subnet",
            network_id=public.id,
            ip_version=4,
            cidr="172.24.4.0/24",
            gateway_ip="172.24.4.1",
            is_dhcp_enabled=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
        )
    private = net.find_network("private", project_id=demo_project.id)
    if private is None:
        log("create network private")
        private = net.create_network(name="private", project_id=demo_project.id)
    subnet = net.find_subnet("private-subnet", network_id=private.id)
    if subnet is None:
        subnet = net.create_subnet(
            name="private-subnet",
            network_id=private.id,
            project_id=demo_project.id,
            ip_version=4,
            cidr="10.0.0.0/24",
            gateway_ip="10.0.0.1",
        )
    router = net.find_router("router1", project_id=demo_project.id)
    if router is None:
        log("create router router1")
        router = net.create_router(
            name="router1", project_id=demo_project.id, external_gateway_info={"network_id": public.id}
        )
        net.add_interface_to_router(router, subnet_id=subnet.id)

    knobs.set_quotas(conn, "demo", **knobs.DEFAULT_QUOTAS)

    demo = connect("minicloud")
    # Listing makes Neutron create the project's "default" security group; allow SSH and ping.
    sg = next(iter(demo.network.security_groups(name="default", project_id=demo_project.id)), None)
    if sg is None:
        sg = demo.network.find_security_group("default", ignore_missing=False)
    for proto, port in (("tcp", 22), ("icmp", None)):
        with contextlib.suppress(exceptions.ConflictException):
            demo.network.create_security_group_rule(
                security_group_id=sg.id,
                direction="ingress",
                ethertype="IPv4",
                protocol=proto,
                port_range_min=port,
                port_range_max=port,
                remote_ip_prefix="0.0.0.0/0",
            )

    if demo.compute.find_keypair("demo-key") is None:
        log("create keypair demo-key")
        private_key, public_key = _ed25519_keypair()
        path = os.path.join(home, "demo-key")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(private_key)
        with open(path + ".pub", "w") as f:
            f.write(public_key)
        demo.compute.create_keypair(name="demo-key", public_key=public_key)
    log("resources ready")


def octavia_ca():
    """A self-signed CA for Octavia's local certificate generator and its client_ca (the
    amphora flow opens and signs with them even when no amphora runs)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    certs = os.path.join(os.environ["MINICLOUD_HOME"], "etc", "octavia", "certs")
    pem, key_path = os.path.join(certs, "ca.pem"), os.path.join(certs, "ca.key")
    if os.path.exists(pem) and os.path.exists(key_path):
        return
    os.makedirs(certs, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minicloud octavia CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    log("octavia CA written to %s" % certs)


def main(argv):
    t0 = time.monotonic()
    steps = {"identity": identity, "resources": resources, "octavia-ca": octavia_ca}
    if len(argv) != 2 or argv[1] not in steps:
        sys.exit("usage: bootstrap.py {identity|resources|octavia-ca}")
    steps[argv[1]]()
    log("%s took %.1f s" % (argv[1], time.monotonic() - t0))


if __name__ == "__main__":
    main(sys.argv)
