# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options every cloud-facing module of coe.openstack takes.
    # Names and meanings follow openstack.cloud, so clouds.yaml, OS_* variables
    # and AWX OpenStack credentials work unchanged.
    DOCUMENTATION = r"""
options:
  api_timeout:
    description:
      - How long, in seconds, openstacksdk waits for one API call.
    type: int
  auth:
    description:
      - Authentication parameters (C(auth_url), C(username), C(password), C(project_name), ...)
        instead of, or on top of, a named cloud.
      - Never logged.
    type: dict
  auth_type:
    description:
      - Name of the keystoneauth plugin, for example C(password) or C(v3applicationcredential).
    type: str
  ca_cert:
    description:
      - Path to a CA bundle used to verify the cloud's TLS certificates.
    type: str
    aliases: [cacert]
  client_cert:
    description:
      - Path to a client certificate for TLS client authentication.
    type: str
    aliases: [cert]
  client_key:
    description:
      - Path to the key of O(client_cert).
    type: str
    aliases: [key]
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml), or a dict with a whole cloud configuration.
      - When not given, openstacksdk uses C(OS_CLOUD) and the C(OS_*) environment variables.
    type: raw
  interface:
    description:
      - Which endpoint of the catalog to use.
    type: str
    default: public
    choices: [admin, internal, public]
    aliases: [endpoint_type]
  region_name:
    description:
      - Region of the cloud.
    type: str
  timeout:
    description:
      - How long, in seconds, to wait for the operation to finish when O(wait=true).
    type: int
    default: 3600
  validate_certs:
    description:
      - Whether to verify the cloud's TLS certificates. Defaults to openstacksdk's choice (C(true)).
    type: bool
    aliases: [verify]
  wait:
    description:
      - Whether to wait for the operation to finish before returning.
    type: bool
    default: true
requirements:
  - python >= 3.11
  - openstacksdk >= 4.0
"""
