"""An Octavia compute driver of the local test cloud (tests/minicloud): no amphora VM.

Octavia's noop compute driver "attaches" a port by returning nothing, so the real
allowed-address-pairs network driver fails to plug the VIP. This one records the attach in
Neutron (the port's device_id names the fake amphora) and returns the port as Nova's
interface attach would, so the VIP port, the VRRP port and the ``lb-<id>`` security group are
real and a cascade delete leaves nothing behind.
"""

import types

from octavia.common import clients
from octavia.compute.drivers.noop_driver import driver as noop


class MinicloudComputeDriver(noop.NoopComputeDriver):
    # Not the noop manager's attach/detach: they write to the noop *network* driver's table.
    def attach_network_or_port(self, compute_id, network_id=None, ip_address=None, port_id=None):
        port = clients.NeutronAuth.get_neutron_client().update_port(port_id, device_id=compute_id)
        return types.SimpleNamespace(net_id=port.network_id, port_id=port.id, fixed_ips=port.fixed_ips)

    def detach_port(self, compute_id, port_id):
        clients.NeutronAuth.get_neutron_client().update_port(port_id, device_id="")
