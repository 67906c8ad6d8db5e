# Writes every configuration file of the local test cloud under $MC/etc.
# Sourced by tests/minicloud/minicloud after lib/config.sh; needs $MC and $MC_SRC.
# shellcheck shell=bash

# [section] with password auth as service user $2 in the service project.
_auth_section() {
    cat <<EOF
[$1]
auth_url = ${MC_AUTH_URL}
auth_type = password
project_domain_name = Default
user_domain_name = Default
region_name = RegionOne
project_name = service
username = $2
password = ${MC_PASSWORD}
EOF
}

_authtoken_section() {
    _auth_section keystone_authtoken "$1"
    echo "www_authenticate_uri = ${MC_AUTH_URL}"
}

# uWSGI ini of one API: _uwsgi NAME PORT then extra lines on stdin.
_uwsgi() {
    {
        cat <<EOF
[uwsgi]
master = true
processes = 1
threads = 4
enable-threads = true
lazy-apps = true
die-on-term = true
hook-master-start = unix_signal:15 gracefully_kill_them_all
need-app = true
buffer-size = 65535
add-header = Connection: close
# down: do not wait more than 5 s for requests in flight
worker-reload-mercy = 5
reload-mercy = 5
virtualenv = $MC/venv
http-socket = 127.0.0.1:$2
env = PYTHONWARNINGS=ignore
EOF
        cat
    } >"$MC/etc/uwsgi/$1.ini"
}

mc_genconf() {
    local venv_etc="$MC/venv/etc" host
    mkdir -p "$MC"/{etc/{uwsgi,keystone,placement,glance,neutron,nova,heat,octavia},logs,run,db,state/{nova,heat,neutron,octavia},glance/{images,staging,tasks},mysql/{data,run},rabbit/{home,mnesia,log}}

    # --- MariaDB -------------------------------------------------------------------------------
    cat >"$MC/etc/my.cnf" <<EOF
[mysqld]
datadir = $MC/mysql/data
socket = $MC/mysql/run/mysqld.sock
pid-file = $MC/mysql/run/mysqld.pid
bind-address = 127.0.0.1
port = ${MC_DB_PORT}
user = root
skip-name-resolve
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
max_connections = 500
log-error = $MC/logs/mariadb.log
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci

[client]
socket = $MC/mysql/run/mysqld.sock
port = ${MC_DB_PORT}
EOF

    # --- RabbitMQ (with its own epmd) ----------------------------------------------------------
    cat >"$MC/etc/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:${MC_AMQP_PORT}
loopback_users = none
default_user = openstack
default_pass = ${MC_PASSWORD}
EOF
    echo "[]." >"$MC/rabbit/enabled_plugins"
    # HOME holds the Erlang cookie: the server and rabbitmqctl must both use this file.
    cat >"$MC/etc/rabbitmq-env.sh" <<EOF
export HOME=$MC/rabbit/home
export RABBITMQ_CONFIG_FILE=$MC/etc/rabbitmq.conf
export RABBITMQ_CONF_ENV_FILE=$MC/etc/rabbitmq-env.conf
export RABBITMQ_MNESIA_BASE=$MC/rabbit/mnesia
export RABBITMQ_LOG_BASE=$MC/rabbit/log
export RABBITMQ_NODENAME=${MC_RABBIT_NODE}
export RABBITMQ_DIST_PORT=${MC_DIST_PORT}
export RABBITMQ_ENABLED_PLUGINS_FILE=$MC/rabbit/enabled_plugins
export RABBITMQ_PID_FILE=$MC/rabbit/rabbit.pid
export ERL_CRASH_DUMP=$MC/logs/erl_crash.dump
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=${MC_EPMD_PORT}
export RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    : >"$MC/etc/rabbitmq-env.conf"

    # --- Keystone ------------------------------------------------------------------------------
    cat >"$MC/etc/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $MC/logs/keystone.log
debug = false

[database]
connection = $(mc_db_url keystone)

[identity]
# bcrypt's minimum cost: every password authentication (each SDK connection, each Ansible
# module run, the services' own tokens) pays it, and 2 cores are shared by everything.
# It applies to passwords set after this (all of them, at init).
password_hash_rounds = 4

[token]
provider = fernet

[fernet_tokens]
key_repository = $MC/etc/keystone/fernet-keys

[fernet_receipts]
# keystone-manage fernet_setup initialises this one too (default /etc/keystone/fernet-keys)
key_repository = $MC/etc/keystone/fernet-keys

[credential]
key_repository = $MC/etc/keystone/credential-keys

[cache]
# One Keystone process: an in-process cache is coherent, and without it every token
# validation (each new token seen by each service) rebuilds roles and catalog from the DB.
enabled = true
backend = dogpile.cache.memory
EOF
    _uwsgi keystone "${MC_KEYSTONE_PORT}" <<EOF
module = keystone.wsgi.api:application
env = OS_KEYSTONE_CONFIG_FILES=$MC/etc/keystone/keystone.conf
EOF

    # --- Placement -----------------------------------------------------------------------------
    {
        cat <<EOF
[DEFAULT]
log_file = $MC/logs/placement.log

[placement_database]
connection = $(mc_db_url placement)

[api]
auth_strategy = keystone

EOF
        _authtoken_section placement
        echo "service_token_roles_required = true"
    } >"$MC/etc/placement/placement.conf"
    _uwsgi placement "${MC_PLACEMENT_PORT}" <<EOF
module = placement.wsgi.api:application
env = OS_PLACEMENT_CONFIG_DIR=$MC/etc/placement
EOF

    # --- Glance (SQLite is fine for it) --------------------------------------------------------
    cp "$venv_etc/glance/glance-api-paste.ini" "$MC/etc/glance/glance-api-paste.ini"
    {
        cat <<EOF
[DEFAULT]
log_file = $MC/logs/glance-api.log
enabled_backends = fs:file
bind_host = 127.0.0.1
bind_port = ${MC_GLANCE_PORT}
workers = 1

[database]
connection = sqlite:///$MC/db/glance.sqlite

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $MC/glance/images

[os_glance_staging_store]
filesystem_store_datadir = $MC/glance/staging

[os_glance_tasks_store]
filesystem_store_datadir = $MC/glance/tasks

[paste_deploy]
flavor = keystone
config_file = $MC/etc/glance/glance-api-paste.ini

[oslo_policy]
enforce_new_defaults = true

EOF
        _authtoken_section glance
    } >"$MC/etc/glance/glance-api.conf"
    _uwsgi glance "${MC_GLANCE_PORT}" <<EOF
module = glance.wsgi.api:application
env = OS_GLANCE_CONFIG_DIR=$MC/etc/glance
http-chunked-input = true
http-auto-chunked = true
http-raw-body = true
EOF

    # --- Neutron (API only, ML2 with the minicloud mechanism driver, no agents) ---------------
    cp "$venv_etc/neutron/api-paste.ini" "$MC/etc/neutron/api-paste.ini"
    mkdir -p "$MC/state/neutron/lock" "$MC/wsgi"
    cp "$MC_SRC/wsgi/neutron_api_wsgi.py" "$MC/wsgi/"
    {
        cat <<EOF
[DEFAULT]
log_file = $MC/logs/neutron-api.log
state_path = $MC/state/neutron
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = ${MC_TRANSPORT_URL}
bind_host = 127.0.0.1
bind_port = ${MC_NEUTRON_PORT}
api_paste_config = $MC/etc/neutron/api-paste.ini
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
allow_overlapping_ips = true

[database]
connection = $(mc_db_url neutron)

[oslo_concurrency]
lock_path = $MC/state/neutron/lock

EOF
        _authtoken_section neutron
        echo
        _auth_section nova nova
    } >"$MC/etc/neutron/neutron.conf"
    cat >"$MC/etc/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = minicloud
extension_drivers = port_security

[ml2_type_flat]
flat_networks = *

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_minicloud]
fail_hosts = ${MC_FAIL_HOSTS}
EOF
    _uwsgi neutron "${MC_NEUTRON_PORT}" <<EOF
pythonpath = $MC/wsgi
module = neutron_api_wsgi:application
env = OS_NEUTRON_CONFIG_DIR=$MC/etc/neutron
env = OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini
threads = 1
EOF

    # --- Nova ----------------------------------------------------------------------------------
    cp "$venv_etc/nova/api-paste.ini" "$MC/etc/nova/api-paste.ini"
    mkdir -p "$MC/state/nova/lock"
    {
        cat <<EOF
[DEFAULT]
log_dir = $MC/logs
state_path = $MC/state/nova
instances_path = $MC/state/nova/instances
transport_url = ${MC_TRANSPORT_URL}
host = minicloud
my_ip = 127.0.0.1
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
metadata_listen = 127.0.0.1
osapi_compute_workers = 1
metadata_workers = 1
default_schedule_zone = nova
graceful_shutdown_timeout = 5
debug = false

[api]
auth_strategy = keystone

[wsgi]
api_paste_config = $MC/etc/nova/api-paste.ini

[api_database]
connection = $(mc_db_url nova_api)

[database]
connection = $(mc_db_url nova)

[conductor]
workers = 1

[scheduler]
workers = 1
discover_hosts_in_cells_interval = 60
# Anti-affine masters booted at once can race to one host; nova-compute's late check then
# reschedules to an alternate. Nova's default (3 attempts: 2 alternates) ran out on the four
# fake hosts under load; 10 makes every other host an alternate.
max_attempts = 10

[filter_scheduler]
shuffle_best_same_weighed_hosts = true

[glance]
region_name = RegionOne

[cinder]
os_region_name = RegionOne

[vnc]
enabled = false

[spice]
enabled = false

[oslo_concurrency]
lock_path = $MC/state/nova/lock

[oslo_messaging_notifications]
driver = noop

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true

EOF
        _authtoken_section nova
        echo "service_token_roles_required = true"
        echo
        _auth_section service_user nova
        echo "send_service_user_token = true"
        echo
        _auth_section placement placement
        echo
        _auth_section neutron neutron
    } >"$MC/etc/nova/nova.conf"
    # oslo.log's log_dir names the file after sys.argv[0], which is garbage under uWSGI.
    printf '[DEFAULT]\nlog_file = %s/logs/nova-api.log\n' "$MC" >"$MC/etc/nova/nova-api.conf"
    # nova-api under uWSGI loads paste from the FIRST config file: api-paste.ini goes first.
    _uwsgi nova-api "${MC_NOVA_PORT}" <<EOF
module = nova.wsgi.osapi_compute:application
env = OS_NOVA_CONFIG_DIR=$MC/etc/nova
env = OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-api.conf
EOF
    for host in "${MC_COMPUTE_HOSTS[@]}"; do
        mkdir -p "$MC/state/compute/$host/lock"
        # Its own state_path gives each fake host its own stable node UUID (compute_id).
        cat >"$MC/etc/nova/compute-$host.conf" <<EOF
[DEFAULT]
host = $host
state_path = $MC/state/compute/$host
instances_path = $MC/state/compute/$host/instances
log_file = $MC/logs/nova-compute-$host.log
compute_driver = fake.FakeDriverWithoutFakeNodes
reserved_host_memory_mb = 0
max_concurrent_builds = 10

[oslo_concurrency]
lock_path = $MC/state/compute/$host/lock
EOF
    done

    # --- Heat ----------------------------------------------------------------------------------
    cp "$venv_etc/heat/api-paste.ini" "$MC/etc/heat/api-paste.ini"
    rm -rf "$MC/etc/heat/environment.d" "$MC/etc/heat/templates"
    cp -r "$venv_etc/heat/environment.d" "$MC/etc/heat/environment.d"
    if [ -d "$venv_etc/heat/templates" ]; then
        cp -r "$venv_etc/heat/templates" "$MC/etc/heat/templates"
    else
        mkdir -p "$MC/etc/heat/templates"
    fi
    # The shipped environment refers to file:///etc/heat/templates/...
    grep -rl '/etc/heat' "$MC/etc/heat/environment.d" | xargs -r sed -i "s#/etc/heat#$MC/etc/heat#g"
    mkdir -p "$MC/etc/heat/plugins" "$MC/state/heat/lock"
    {
        cat <<EOF
[DEFAULT]
log_dir = $MC/logs
transport_url = ${MC_TRANSPORT_URL}
host = minicloud
num_engine_workers = 1
region_name_for_services = RegionOne
heat_metadata_server_url = http://127.0.0.1:18000
heat_waitcondition_server_url = http://127.0.0.1:18000/v1/waitcondition
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = ${MC_PASSWORD}
stack_user_domain_name = heat
environment_dir = $MC/etc/heat/environment.d
template_dir = $MC/etc/heat/templates
plugin_dirs = $MC/etc/heat/plugins
# a failed resource fails the stack at once instead of after 5 re-creations with backoff
action_retry_limit = 0
graceful_shutdown_timeout = 5
debug = false

[database]
connection = $(mc_db_url heat)

[paste_deploy]
api_paste_config = $MC/etc/heat/api-paste.ini

[heat_api]
bind_host = 127.0.0.1
bind_port = ${MC_HEAT_PORT}
workers = 1

[trustee]
auth_type = password
auth_url = ${MC_AUTH_URL}
username = heat
password = ${MC_PASSWORD}
user_domain_name = Default

[clients_keystone]
auth_uri = http://127.0.0.1:${MC_KEYSTONE_PORT}

[clients]
endpoint_type = public

[oslo_messaging_notifications]
driver = noop

[oslo_concurrency]
lock_path = $MC/state/heat/lock

EOF
        _authtoken_section heat
    } >"$MC/etc/heat/heat.conf"
    printf '[DEFAULT]\nlog_file = %s/logs/heat-api.log\n' "$MC" >"$MC/etc/heat/heat-api.conf"
    printf '[DEFAULT]\nlog_file = %s/logs/heat-engine.log\n' "$MC" >"$MC/etc/heat/heat-engine.conf"
    # Heat's WSGI app reads its config files from sys.argv.
    _uwsgi heat-api "${MC_HEAT_PORT}" <<EOF
module = heat.wsgi.api:application
pyargv = --config-file $MC/etc/heat/heat.conf --config-file $MC/etc/heat/heat-api.conf
EOF

    # --- Octavia (API + worker; amphora, image and volume noop, the real Neutron driver and
    # the minicloud compute driver that records port attach in Neutron: no amphora VM) ---------
    mkdir -p "$MC/state/octavia/lock"
    {
        cat <<EOF
[DEFAULT]
log_dir = $MC/logs
transport_url = ${MC_TRANSPORT_URL}
host = minicloud
graceful_shutdown_timeout = 5
debug = false

[api_settings]
bind_host = 127.0.0.1
bind_port = ${MC_OCTAVIA_PORT}
auth_strategy = keystone
default_provider_driver = amphora
enabled_provider_drivers = amphora:The Octavia Amphora driver (no VM on the local cloud)

[database]
connection = $(mc_db_url octavia)

[controller_worker]
amphora_driver = amphora_noop_driver
compute_driver = minicloud_compute_driver
network_driver = allowed_address_pairs_driver
image_driver = image_noop_driver
volume_driver = volume_noop_driver
loadbalancer_topology = SINGLE
workers = 1
# opened even with noop compute (the default path /etc/octavia/certs/ca_01.pem: ERROR)
client_ca = $MC/etc/octavia/certs/ca.pem

[certificates]
cert_generator = local_cert_generator
ca_certificate = $MC/etc/octavia/certs/ca.pem
ca_private_key = $MC/etc/octavia/certs/ca.key

[task_flow]
# a jobboard needs Redis or ZooKeeper
jobboard_enabled = false

[oslo_concurrency]
lock_path = $MC/state/octavia/lock

[oslo_messaging_notifications]
driver = noop

[neutron]
region_name = RegionOne
valid_interfaces = public

EOF
        _authtoken_section octavia
        echo
        _auth_section service_auth octavia
    } >"$MC/etc/octavia/octavia.conf"
    printf '[DEFAULT]\nlog_file = %s/logs/octavia-api.log\n' "$MC" >"$MC/etc/octavia/octavia-api.conf"
    printf '[DEFAULT]\nlog_file = %s/logs/octavia-worker.log\n' "$MC" >"$MC/etc/octavia/octavia-worker.conf"
    # Octavia's WSGI app reads its config files from sys.argv.
    _uwsgi octavia-api "${MC_OCTAVIA_PORT}" <<EOF
module = octavia.wsgi.api:application
pyargv = --config-file $MC/etc/octavia/octavia.conf --config-file $MC/etc/octavia/octavia-api.conf
EOF

    # --- clouds.yaml ---------------------------------------------------------------------------
    cat >"$MC/clouds.yaml" <<EOF
# Written by tests/minicloud/minicloud. Use: export OS_CLIENT_CONFIG_FILE=$MC/clouds.yaml
clouds:
  minicloud:
    auth:
      auth_url: ${MC_AUTH_URL}
      username: demo
      password: ${MC_PASSWORD}
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
  # the demo user on a cloud without Octavia, as a client sees it: openstacksdk's
  # has_load_balancer hides the load-balancer service of the catalog
  minicloud-no-octavia:
    auth:
      auth_url: ${MC_AUTH_URL}
      username: demo
      password: ${MC_PASSWORD}
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
    has_load_balancer: false
  minicloud-admin:
    auth:
      auth_url: ${MC_AUTH_URL}
      username: admin
      password: ${MC_PASSWORD}
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
    chmod 600 "$MC/clouds.yaml"
}
