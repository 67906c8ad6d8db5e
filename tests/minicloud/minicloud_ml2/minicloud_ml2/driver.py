"""A mechanism driver that binds ports without any agent.

The local test cloud has no Open vSwitch and no agents, yet Nova needs Neutron
to bind the ports of the servers it boots. This driver binds every port on any
host as an OVS port (Nova's fake virt driver plugs nothing), and refuses to
bind on the hosts listed in ``[ml2_minicloud] fail_hosts``, so that ML2 marks
the port ``binding_failed`` and Nova reports a real port-binding failure.
It keeps no state, so Neutron can restart and run several workers.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)

cfg.CONF.register_opts(
    [
        cfg.ListOpt(
            "fail_hosts",
            default=["host-fail"],
            help="Compute hosts on which port binding fails.",
        ),
    ],
    "ml2_minicloud",
)


class MinicloudMechanismDriver(api.MechanismDriver):
    def initialize(self):
        LOG.info("minicloud mechanism driver: fail_hosts=%s", cfg.CONF.ml2_minicloud.fail_hosts)

    def bind_port(self, context):
        if context.host in cfg.CONF.ml2_minicloud.fail_hosts:
            LOG.info("minicloud: refusing to bind port %s on %s", context.current["id"], context.host)
            return
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
