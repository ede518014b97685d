# shellcheck shell=bash
# "nova install": the Debian 12 packages of a Nova control plane (sourced by
# test/nova/nova). Package scripts must neither start daemons nor create
# databases, users or endpoints: every daemon runs later from private
# configuration under the state directory.

NOVA_PACKAGES=(
	mariadb-server rabbitmq-server
	keystone placement-api glance-api
	# neutron-server is run from python3-neutron (pulled in by
	# neutron-common) with a launcher, as nova-compute is from python3-nova.
	neutron-common
	nova-api nova-conductor nova-scheduler
	python3-novaclient python3-openstackclient
	uwsgi-plugin-python3
	# ip netns, nsenter/unshare, ss, ps
	iproute2 util-linux procps curl
)

# Debconf questions of openstack-pkg-tools and dbconfig-common: answered
# "no" so that postinst scripts touch no database, queue or Keystone.
nova_preseed() {
	local p q
	{
		# Templates are named after the source package (nova/, novaapi/,
		# glance/, ...) and dbconfig-common's after the binary package.
		for p in keystone placement glance neutron nova novaapi \
			placement-common placement-api glance-common glance-api \
			neutron-common nova-common nova-api nova-conductor nova-scheduler; do
			for q in configure_db configure_rabbit configure_ksat configure_api-endpoint \
				configure_nova configure_neutron configure_placement \
				register-endpoint create-admin-tenant dbconfig-install dbconfig-upgrade; do
				printf '%s %s/%s boolean false\n' "$p" "$p" "$q"
			done
		done
	} | debconf-set-selections
}

nova_missing() {
	local p
	for p in "${NOVA_PACKAGES[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || echo "$p"
	done
}

cmd_install() {
	[[ $# -eq 0 ]] || usage
	need_root
	local todo i policy=/usr/sbin/policy-rc.d own_policy=0 attempts=4 t0
	t0=$(now_ms)
	mapfile -t todo < <(nova_missing)
	if [[ ${#todo[@]} -eq 0 ]]; then
		note "all packages already installed"
		return 0
	fi
	note "installing: ${todo[*]}"
	export DEBIAN_FRONTEND=noninteractive
	nova_preseed
	# postinst scripts must not start MariaDB, RabbitMQ or any OpenStack
	# service on the machine: deny every action while installing. An
	# existing policy-rc.d is kept as it is and never removed.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# temporary, from test/nova install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	# shellcheck disable=SC2064
	trap "[[ $own_policy == 1 ]] && grep -q 'from test/nova install' $policy 2>/dev/null && rm -f $policy" EXIT
	local -a apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -q)
	for ((i = 1; ; i++)); do
		if "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${todo[@]}"; then
			break
		fi
		((i < attempts)) || die "apt-get failed after $attempts attempts"
		note "apt-get failed (attempt $i of $attempts), retrying in $((i * 5))s"
		sleep $((i * 5))
		dpkg --configure -a || true
	done
	mapfile -t todo < <(nova_missing)
	[[ ${#todo[@]} -eq 0 ]] || die "still not installed: ${todo[*]}"
	note "installed in $(($(now_ms) - t0)) ms"
}
