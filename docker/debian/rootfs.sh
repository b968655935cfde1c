#!/bin/sh
# Build the offline base rootfs of a pglab Debian host as a tar on stdout.
#
# Everything a lab host will ever install comes in here, because lab networks
# are internal: PostgreSQL is installed and its cluster created; pgBackRest is
# only *downloaded*, into a local apt repository, so that the tutorial's
# `apt update` / `apt -y install pgbackrest` really runs inside the host.
#
# usage: rootfs.sh SUITE PG_MAJOR MIRROR_URI > rootfs.tar
# MIRROR_URI is read by pglab from the host's own apt sources; no host name
# is ever written here.
set -eu
suite=$1 pg=$2 mirror=$3

exec mmdebstrap \
  --variant=apt \
  --format=tar \
  --include="systemd,systemd-sysv,dbus,postgresql-$pg,postgresql-client-$pg,openssh-server,openssh-client,sudo,cron,procps,iproute2,iptables,iputils-ping,nano,less,ca-certificates,apt-utils" \
  --customize-hook='mkdir -p "$1/opt/pglab/apt/partial"' \
  --customize-hook='chroot "$1" apt-get install -y --download-only -o Dir::Cache::archives=/opt/pglab/apt pgbackrest' \
  --customize-hook='rm -rf "$1/opt/pglab/apt/partial" "$1/opt/pglab/apt/lock"' \
  --customize-hook='chroot "$1" sh -c "cd /opt/pglab/apt && apt-ftparchive packages . > Packages"' \
  --customize-hook='rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*' \
  --customize-hook='echo "deb [trusted=yes] file:/opt/pglab/apt ./" > "$1/etc/apt/sources.list.d/pglab-local.list"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  --customize-hook='for u in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service systemd-firstboot.service systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer dpkg-db-backup.timer logrotate.timer systemd-tmpfiles-clean.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook='sed -i "s/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/" "$1/etc/pam.d/sshd" "$1/etc/pam.d/cron"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --groups sudo dba' \
  --customize-hook='echo pglab > "$1/etc/hostname"' \
  "$suite" - "deb $mirror $suite main"
