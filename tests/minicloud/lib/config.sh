# Settings of the local test cloud, sourced by tests/minicloud/minicloud.
# shellcheck shell=bash

# Pinned OpenStack release packages (2025.2 "Flamingo" era) and tools for the cloud's own venv.
# constraints.txt (next to this folder) pins every other package to the versions last tested.
MC_PIP_PACKAGES=(
    keystone==30.0.0
    nova==34.0.0
    openstack-heat==27.0.1
    openstack-placement==16.0.0
    glance==33.0.0
    neutron==29.0.0
    octavia==19.0.0
    openstacksdk==4.22.0
    uwsgi==2.0.31
    pymysql==1.2.4
)
# gcc, libc6-dev and python3-dev build uWSGI; python3-venv for a Debian Python; procps: ps/pgrep
MC_APT_PACKAGES=(mariadb-server rabbitmq-server gcc libc6-dev python3-dev python3-venv curl procps)

# Every listener is on 127.0.0.1, and none on a standard port (a machine that runs
# its own MariaDB, RabbitMQ or OpenStack is not disturbed). Keep all of them below
# 32768: the kernel hands out ephemeral ports above, and the RabbitMQ CLI tools
# bind 35672-35682 for their own Erlang distribution.
MC_DB_PORT=13306
MC_AMQP_PORT=15673
MC_DIST_PORT=25673
MC_EPMD_PORT=14369
MC_KEYSTONE_PORT=15000
MC_NOVA_PORT=18774
MC_PLACEMENT_PORT=18778
MC_GLANCE_PORT=19292
MC_NEUTRON_PORT=19696
MC_HEAT_PORT=18004
MC_OCTAVIA_PORT=19876

MC_PASSWORD=secret            # every service user, the admin and demo users, MariaDB and RabbitMQ
MC_RABBIT_NODE=minicloud@localhost
MC_COMPUTE_HOSTS=(cmp-1 cmp-2 cmp-3 host-fail)
MC_FAIL_HOSTS=host-fail

MC_DATABASES=(keystone placement neutron nova_api nova nova_cell0 heat octavia)
MC_API_SERVICES=(keystone placement glance neutron nova-api heat-api octavia-api)
MC_RPC_SERVICES=(nova-conductor nova-scheduler nova-compute-cmp-1 nova-compute-cmp-2 nova-compute-cmp-3
    nova-compute-host-fail heat-engine octavia-worker)

mc_db_url() { echo "mysql+pymysql://openstack:${MC_PASSWORD}@127.0.0.1:${MC_DB_PORT}/$1?charset=utf8"; }
MC_TRANSPORT_URL="rabbit://openstack:${MC_PASSWORD}@127.0.0.1:${MC_AMQP_PORT}/"
MC_AUTH_URL="http://127.0.0.1:${MC_KEYSTONE_PORT}/v3"
