"""Real concurrency: 20 processes on one store, on SQLite and on PostgreSQL."""

import multiprocessing
import time

from ansible_collections.coe.openstack.plugins.module_utils.errors import ConflictError, LockError
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

PROCESSES = 20
ROUNDS = 8


def _locker(url, inside, overlaps, tokens, rounds):
    store = open_store(url)
    locks = LockManager(store)
    try:
        for _round in range(rounds):
            while True:
                try:
                    lease = locks.try_acquire("p", "race", "update", ttl=60, holder="w")
                    break
                except LockError:
                    time.sleep(0.002)
            with inside.get_lock():
                inside.value += 1
                if inside.value != 1:
                    overlaps.value += 1
            time.sleep(0.001)
            with inside.get_lock():
                inside.value -= 1
            tokens.put(lease["token"])
            locks.release("p", "race", lease["token"])
    finally:
        store.close()


def _incrementer(url, uuid, rounds, conflicts):
    store = open_store(url)
    try:
        for _round in range(rounds):
            while True:
                rec = store.get_cluster(uuid)
                rec["counter"] = rec.get("counter", 0) + 1
                try:
                    store.update_cluster(rec, rec["generation"])
                    break
                except ConflictError:
                    with conflicts.get_lock():
                        conflicts.value += 1
    finally:
        store.close()


def _run_all(target, args_list):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_twenty_processes_never_hold_one_lock_together(store_url):
    open_store(store_url).close()  # schema first, so the race is about the lock only
    ctx = multiprocessing.get_context("fork")
    inside, overlaps, tokens = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Queue()
    _run_all(_locker, [(store_url, inside, overlaps, tokens, ROUNDS)] * PROCESSES)
    got = sorted(tokens.get(timeout=5) for _i in range(PROCESSES * ROUNDS))
    assert overlaps.value == 0
    # every acquisition got its own token, and they only grew: 1..N with no repeat
    assert got == list(range(1, PROCESSES * ROUNDS + 1))


def test_concurrent_cas_updates_lose_nothing(store_url):
    store = open_store(store_url)
    rec = store.create_cluster(
        dict(
            name="race",
            project_id="p",
            status="CREATE_COMPLETE",
            driver="heat",
            cluster_template_name="t",
            template_version=1,
            counter=0,
        )
    )
    conflicts = multiprocessing.get_context("fork").Value("i", 0)
    _run_all(_incrementer, [(store_url, rec["uuid"], ROUNDS, conflicts)] * PROCESSES)
    final = store.get_cluster(rec["uuid"])
    store.close()
    assert final["counter"] == PROCESSES * ROUNDS
    assert final["generation"] == 1 + PROCESSES * ROUNDS


def test_concurrent_first_open_migrates_once(tmp_path, pg_url):
    for url in ("sqlite://%s" % (tmp_path / "fresh.db"), pg_url):
        _run_all(_open_only, [(url,)] * 10)
        store = open_store(url)
        assert store.schema_version() >= 1
        store.close()


def _open_only(url):
    open_store(url).close()


def _creator(url, results):
    store = open_store(url)
    try:
        store.create_cluster(
            dict(
                name="same",
                project_id="p",
                status="CREATE_IN_PROGRESS",
                driver="heat",
                cluster_template_name="t",
                template_version=1,
            )
        )
        results.put("created")
    except ConflictError:
        results.put("conflict")
    finally:
        store.close()


def _templater(url, index):
    store = open_store(url)
    try:
        store.put_template("shared", {"driver": "heat", "image_id": "img-%d" % index})
    finally:
        store.close()


def test_concurrent_creates_of_one_name_make_one_cluster(store_url):
    open_store(store_url).close()
    results = multiprocessing.get_context("fork").Queue()
    _run_all(_creator, [(store_url, results)] * PROCESSES)
    got = sorted(results.get(timeout=5) for _i in range(PROCESSES))
    assert got.count("created") == 1 and got.count("conflict") == PROCESSES - 1
    store = open_store(store_url)
    assert len(store.list_clusters(name="same")) == 1
    store.close()


def test_concurrent_template_versions_are_numbered_without_gaps(store_url):
    open_store(store_url).close()
    _run_all(_templater, [(store_url, i) for i in range(PROCESSES)])
    store = open_store(store_url)
    versions = store.list_templates("shared")
    store.close()
    assert [v["version"] for v in versions] == list(range(1, PROCESSES + 1))
    assert len({v["spec"]["image_id"] for v in versions}) == PROCESSES
