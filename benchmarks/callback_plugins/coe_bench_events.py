# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Callback of benchmarks/run.py (not part of the collection): where each task starts.

Appends one line per task start to the file named by ``COE_BENCH_EVENTS``, the same
file to which the benchmark's interpreter wrapper appends one line per module process
it launches. Tasks of one host run one after the other, so every launch line belongs
to the task line before it: the benchmark counts module processes per task (and so per
operation, with the wait loop's polls apart) and times each task (the profile).

Lines, tab-separated: ``P <time>`` (the playbook starts), ``T <time> <file:line>
<action> <task name>``, ``E <time>`` (the playbook ends); the wrapper writes
``L <module file>``. Enabled only by the benchmark (ANSIBLE_CALLBACK_PLUGINS,
ANSIBLE_CALLBACKS_ENABLED=coe_bench_events).
"""

from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: coe_bench_events
type: aggregate
short_description: task start times for benchmarks/run.py
description:
  - Appends a line per task start to the file named by the COE_BENCH_EVENTS environment variable.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "coe_bench_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("COE_BENCH_EVENTS")

    def _line(self, *fields):
        if not self._path:
            return
        text = "\t".join(str(f).replace("\t", " ").replace("\n", " ") for f in fields) + "\n"
        # O_APPEND: one write per line, as the wrapper's, so lines never interleave
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def v2_playbook_on_start(self, playbook):
        self._line("P", "%.6f" % time.time())

    def _task(self, task):
        action = getattr(task, "resolved_action", None) or task.action
        self._line("T", "%.6f" % time.time(), task.get_path() or "?", action, task.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task(task)

    def v2_playbook_on_stats(self, stats):
        self._line("E", "%.6f" % time.time())
