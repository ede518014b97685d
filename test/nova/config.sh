# shellcheck shell=bash
# Configuration files of the control plane (sourced by test/nova/nova). All
# of them live under the state directory; daemons are pointed at them with
# --config-file, uwsgi ini files or the OS_*_CONFIG_* variables their WSGI
# entry points read. Files holding passwords are mode 600.

# write_secrets: random passwords, created once per state directory so that
# a warm start finds the same database and Keystone users.
write_secrets() {
	local name
	(
		umask 077
		for name in DB_PASSWORD RABBIT_PASSWORD ADMIN_PASSWORD SERVICE_PASSWORD DEMO_PASSWORD; do
			printf "%s='%s'\n" "$name" "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
		done >"$SECRETS.tmp"
		mv -f "$SECRETS.tmp" "$SECRETS"
	)
}

# private_file PATH: create PATH empty with mode 600 (before it is filled).
private_file() {
	install -m 600 /dev/null "$1"
}

db_url() {
	printf 'mysql+pymysql://openstack:%s@localhost/%s?unix_socket=%s&charset=utf8\n' \
		"$DB_PASSWORD" "$1" "$SOCK"
}

transport_url() {
	printf 'rabbit://openstack:%s@%s:%s/\n' "$RABBIT_PASSWORD" "$ADDR" "$P_RABBIT"
}

# ks_auth SECTION USER: a keystoneauth password section for a service user.
ks_auth() {
	cat <<EOF
[$1]
auth_type = password
auth_url = http://$ADDR:$P_KEYSTONE/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $SERVICE_PASSWORD
region_name = RegionOne
EOF
}

authtoken() {
	ks_auth keystone_authtoken "$1"
	cat <<EOF
www_authenticate_uri = http://$ADDR:$P_KEYSTONE/v3

EOF
}

# uwsgi_ini NAME PORT WSGI_FILE PROCESSES ENV...: an http-socket uwsgi
# server. "Connection: close" because keep-alive connections reused by
# pooled clients are reset by uwsgi's http-socket (ECONNRESET otherwise).
uwsgi_ini() {
	local name=$1 port=$2 file=$3 procs=$4 e
	shift 4
	{
		cat <<EOF
[uwsgi]
plugins = python3
master = true
die-on-term = true
no-orphans = true
lazy-apps = true
enable-threads = true
thunder-lock = true
http-socket = $ADDR:$port
add-header = Connection: close
buffer-size = 65535
listen = 100
processes = $procs
threads = 1
wsgi-file = $file
chdir = $DATA
procname-prefix-spaced = computeha-nova-$name
EOF
		for e in "$@"; do
			printf 'env = %s\n' "$e"
		done
	} >"$ETC/$name-uwsgi.ini"
}

# RABBIT_ENV: environment of rabbitmq-server and rabbitmqctl (used by nova).
# shellcheck disable=SC2034
rabbit_env() {
	RABBIT_ENV=(
		"RABBITMQ_NODENAME=rabbit-$NETNS@localhost"
		"RABBITMQ_NODE_IP_ADDRESS=$ADDR"
		"RABBITMQ_NODE_PORT=$P_RABBIT"
		"RABBITMQ_DIST_PORT=25672"
		"RABBITMQ_MNESIA_BASE=$DATA/rabbitmq/mnesia"
		"RABBITMQ_LOG_BASE=$LOGD/rabbitmq"
		"RABBITMQ_CONFIG_FILE=$ETC/rabbitmq.conf"
		"RABBITMQ_ADVANCED_CONFIG_FILE=$ETC/rabbitmq-advanced.config"
		"RABBITMQ_ENABLED_PLUGINS_FILE=$ETC/rabbitmq-enabled-plugins"
		"RABBITMQ_CONF_ENV_FILE=$ETC/rabbitmq-env.conf"
		"RABBITMQ_PID_FILE=$RUN/rabbitmq.pidfile"
	)
}

write_configs() {
	local f
	mkdir -p "$ETC/nova" "$ETC/placement" "$DATA/keystone" "$DATA/glance/images" \
		"$DATA/glance/staging" "$DATA/glance/tasks" "$DATA/glance/cache" "$DATA/neutron" \
		"$DATA/nova/instances" "$DATA/lock" "$DATA/compute"
	rabbit_env

	# RabbitMQ: the default user is created on the first boot only.
	f=$ETC/rabbitmq.conf
	private_file "$f"
	cat >"$f" <<EOF
listeners.tcp.default = $ADDR:$P_RABBIT
loopback_users = none
default_user = openstack
default_pass = $RABBIT_PASSWORD
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
disk_free_limit.absolute = 50MB
log.file.level = warning
log.console = false
EOF
	echo '[].' >"$ETC/rabbitmq-enabled-plugins"
	echo '[].' >"$ETC/rabbitmq-advanced.config"
	: >"$ETC/rabbitmq-env.conf"

	f=$ETC/keystone.conf
	private_file "$f"
	cat >"$f" <<EOF
[DEFAULT]
use_stderr = true
[database]
connection = $(db_url keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[fernet_receipts]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
[cache]
enabled = false
EOF
	uwsgi_ini keystone "$P_KEYSTONE" /usr/bin/keystone-wsgi-public 2 \
		"OS_KEYSTONE_CONFIG_FILES=$ETC/keystone.conf"

	f=$ETC/placement/placement.conf
	private_file "$f"
	{
		cat <<EOF
[DEFAULT]
use_stderr = true
[api]
auth_strategy = keystone
[placement_database]
connection = $(db_url placement)
[oslo_concurrency]
lock_path = $DATA/lock
EOF
		authtoken placement
	} >"$f"
	uwsgi_ini placement "$P_PLACEMENT" /usr/bin/placement-api 2 \
		"OS_PLACEMENT_CONFIG_DIR=$ETC/placement"

	f=$ETC/glance-api.conf
	private_file "$f"
	{
		cat <<EOF
[DEFAULT]
use_stderr = true
bind_host = $ADDR
bind_port = $P_GLANCE
workers = 1
enabled_backends = file:file
image_cache_dir = $DATA/glance/cache
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $DATA/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks
[database]
connection = $(db_url glance)
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/lock
EOF
		authtoken glance
	} >"$f"

	# neutron-server: ML2 without mechanism drivers or agents is enough for
	# servers booted with "networks: none"; nova still asks neutron for
	# ports on every show, list and evacuation. The router plugin is needed
	# for GET /v2.0/ports to answer at all.
	f=$ETC/neutron.conf
	private_file "$f"
	{
		cat <<EOF
[DEFAULT]
use_stderr = true
bind_host = $ADDR
bind_port = $P_NEUTRON
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $(transport_url)
state_path = $DATA/neutron
api_paste_config = /etc/neutron/api-paste.ini
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[database]
connection = $(db_url neutron)
[oslo_concurrency]
lock_path = $DATA/lock
[agent]
root_helper =
EOF
		authtoken neutron
		ks_auth nova nova
	} >"$f"
	cat >"$ETC/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vlan
tenant_network_types =
mechanism_drivers =
extension_drivers =
[ml2_type_flat]
flat_networks = *
EOF

	# The fake virt driver that forgets a live-migrated instance on its
	# source, as a real hypervisor does: plain fake.FakeDriver keeps it, and
	# an evacuation back to that host later fails with InstanceExists. Its
	# live migration takes 5 s.
	f=$ETC/nova/nova.conf
	private_file "$f"
	{
		cat <<EOF
[DEFAULT]
use_stderr = true
debug = $( [[ ${NOVA_DEBUG:-0} == 1 ]] && echo true || echo false)
host = control
my_ip = $ADDR
transport_url = $(transport_url)
state_path = $DATA/nova
instances_path = $DATA/nova/instances
compute_driver = fake.FakeLiveMigrateDriver
report_interval = 5
service_down_time = 20
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[oslo_concurrency]
lock_path = $DATA/lock
[vnc]
enabled = false
[spice]
enabled = false
[service_user]
send_service_user_token = false
[glance]
valid_interfaces = public
[cinder]
os_region_name = RegionOne
EOF
		authtoken nova
		ks_auth placement nova
		echo 'valid_interfaces = public'
		ks_auth neutron nova
		echo 'valid_interfaces = public'
	} >"$f"
	uwsgi_ini nova-api "$P_NOVA" /usr/bin/nova-api-wsgi 2 \
		"OS_NOVA_CONFIG_DIR=$ETC/nova" "OS_NOVA_CONFIG_FILES=/etc/nova/api-paste.ini;nova.conf"
}

# write_compute_conf HOST DIR DRIVER: what differs for one compute host.
# DRIVER fake: the fake driver (nova.conf's). DRIVER libvirt: the libvirt
# driver and real qemu guests, run inside a host that has a libvirtd of its
# own (lab up --libvirt) and the shared storage: instance files and the image
# cache live there, as with NFS or Ceph in a cloud, so that an evacuated VM
# finds its disk.
write_compute_conf() {
	local host=$1 cdir=$2 driver=${3:-fake} ip
	{
		cat <<EOF
[DEFAULT]
debug = $( [[ ${NOVA_DEBUG:-0} == 1 ]] && echo true || echo false)
host = $host
state_path = $cdir
[oslo_concurrency]
lock_path = $cdir/lock
EOF
		case $driver in
		fake)
			echo "[DEFAULT]"
			echo "instances_path = $cdir/instances"
			;;
		libvirt)
			ip=$(ip -4 -o addr show dev mgmt 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4; exit}') || ip=''
			cat <<EOF
[DEFAULT]
compute_driver = libvirt.LibvirtDriver
instances_path = $GUEST_INSTANCES
${ip:+my_ip = $ip}
[libvirt]
virt_type = $(virt_type)
connection_uri = qemu:///system
cpu_mode = none
# Shared by every host: none of them may remove a base image another uses.
[image_cache]
remove_unused_base_images = false
# nova-compute runs as root: privsep's helper needs no sudo or rootwrap.
[nova_sys_admin]
helper_command = privsep-helper --config-file $ETC/nova/nova.conf --config-file $cdir/compute.conf
EOF
			;;
		*) die "unknown compute driver '$driver' (fake or libvirt)" ;;
		esac
	} >"$cdir/compute.conf"
}

# virt_type: kvm where this machine's KVM can run guests (the CPU offers
# vmx or svm and /dev/kvm opens), qemu (TCG, software emulation) otherwise;
# NOVA_VIRT_TYPE overrides. /dev/kvm alone proves nothing: in some VMs it
# opens, and guests started with it never run.
virt_type() {
	if [[ -n ${NOVA_VIRT_TYPE:-} ]]; then
		echo "$NOVA_VIRT_TYPE"
	elif [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qE '^flags.*\b(vmx|svm)\b' /proc/cpuinfo; then
		echo kvm
	else
		echo qemu
	fi
}

# write_clouds: clouds.yaml and admin-openrc for clients (mode 600).
write_clouds() {
	local f=$DIR/clouds.yaml
	private_file "$f"
	cat >"$f" <<EOF
clouds:
  computeha-admin:
    auth_type: password
    auth:
      auth_url: http://$ADDR:$P_KEYSTONE/v3
      username: admin
      password: $ADMIN_PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  computeha-demo:
    auth_type: password
    auth:
      auth_url: http://$ADDR:$P_KEYSTONE/v3
      username: demo
      password: $DEMO_PASSWORD
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
	f=$DIR/admin-openrc
	private_file "$f"
	cat >"$f" <<EOF
# Run clients inside the namespace: ip netns exec $NETNS openstack ...
export OS_AUTH_URL=http://$ADDR:$P_KEYSTONE/v3
export OS_USERNAME=admin
export OS_PASSWORD='$ADMIN_PASSWORD'
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
export OS_CLOUD=
EOF
}
