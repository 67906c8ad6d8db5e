"""Fixtures for the store suite: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL: ``COE_TEST_POSTGRES_URL`` when set (CI with a service container);
otherwise a throwaway PostgreSQL 15 server is started for the session on
127.0.0.1 (a free port, data folder under /tmp, via ``initdb``/``pg_ctl``,
through ``runuser -u postgres`` when we are root) and stopped at the end.
Missing PostgreSQL binaries fail the tests (install: apt-get install
postgresql-15); they are never skipped. Each test gets its own schema.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

PG_BIN_CANDIDATES = ["/usr/lib/postgresql/15/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]


class FakeClock:
    """An injectable clock (epoch seconds) that only moves when told."""

    def __init__(self, start=1_800_000_000.0):
        self.now = float(start)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds

    def sleep(self, seconds):
        self.now += seconds


def _pg_bindir():
    for candidate in PG_BIN_CANDIDATES:
        if os.path.exists(os.path.join(candidate, "initdb")) and os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if os.path.exists(os.path.join(bindir, "initdb")):
            return bindir
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a PostgreSQL server for the session (started here unless given)."""
    given = os.environ.get("COE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql-15, "
            "or set COE_TEST_POSTGRES_URL to a server the tests may use"
        )
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    datadir = tempfile.mkdtemp(prefix="coe-pg-")
    if as_root:
        shutil.chown(datadir, "postgres", "postgres")
    port = _free_port()

    def run(*args):
        done = subprocess.run(prefix + list(args), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            pytest.fail("%s failed (%d): %s %s" % (args[0], done.returncode, done.stdout, done.stderr))

    pg_ctl = os.path.join(bindir, "pg_ctl")
    run(os.path.join(bindir, "initdb"), "-D", datadir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
    run(
        pg_ctl,
        "-D",
        datadir,
        "-l",
        os.path.join(datadir, "server.log"),
        "-w",
        "-o",
        "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" % (port, datadir),
        "start",
    )
    try:
        yield "postgresql://postgres@127.0.0.1:%d/postgres" % port
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", datadir, "-m", "immediate", "-w", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server):
    """A PostgreSQL URL whose search_path is a fresh schema of this test (dropped after)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA %s" % schema)
    sep = "&" if "?" in postgres_server else "?"
    yield "%s%soptions=-csearch_path%%3D%s" % (postgres_server, sep, schema)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("DROP SCHEMA %s CASCADE" % schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return "sqlite://%s" % (tmp_path / "state" / "coe.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(store_url, clock):
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    s = open_store(store_url, clock=clock)
    yield s
    s.close()
