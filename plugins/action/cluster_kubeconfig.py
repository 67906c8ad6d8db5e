# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin of coe.openstack.cluster_kubeconfig: hides the result when it carries a key.

A module cannot mark its own return value no_log (Ansible strips ``_ansible_*`` keys from
module results), so this action runs the module and, when the result holds the kubeconfig's
content (``return_content: true``), marks the whole task result ``no_log``, as
``ansible.builtin.include_vars`` does for ``hide``. The content stays usable through
``register``, and appears in no callback output, ``-vvv`` included.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        result.update(self._execute_module(task_vars=task_vars))
        wants_content = boolean(self._task.args.get("return_content", False), strict=False)
        if wants_content or "content" in (result.get("kubeconfig") or {}):
            result["_ansible_no_log"] = True
        return result
