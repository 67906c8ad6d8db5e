"""uWSGI entry point for the Neutron API of the local test cloud.

neutron.wsgi.api alone is not enough here: with no agents, nothing queries the
database at start-up, so SQLAlchemy never configures its mappers and backrefs
declared in other model modules (Port.port_forwardings) are missing on the
first GET /v2.0/ports, which then fails with HTTP 500. Import the L3 models
and configure the mappers before serving.
"""

from neutron.db import l3_db
from neutron.wsgi.api import application
from sqlalchemy import orm

orm.configure_mappers()

__all__ = ["application", "l3_db"]
