#!/bin/sh
# Build the offline rootfs of a pglab Debian host as a tar on stdout.
#
# Everything a lab host will ever install comes in here, because lab networks
# are internal: PostgreSQL is installed and its cluster created; pgBackRest is
# only *downloaded*, into a local apt repository, so that the tutorial's
# `apt update` / `apt -y install pgbackrest` really runs inside the host.
# The recipe's files go in here too, so the image is one layer plus metadata.
#
# usage: rootfs.sh SUITE PG_MAJOR MIRROR_URI RECIPE_DIR > rootfs.tar
# MIRROR_URI is read by pglab from the host's own apt sources; no host name
# is ever written here. What was installed is written to RECIPE_DIR/image.env
# (and /etc/pglab/image in the host) for the image's labels.
set -eu
suite=$1 pg=$2 mirror=$3 recipe=$4

# Nothing a lab reads: documentation, manuals, translations. LLVM is only
# PostgreSQL's JIT (llvmjit.so goes with it, so JIT is off, not broken).
set --
for p in '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*' \
         '/usr/lib/*/libLLVM*' '/usr/lib/*/libz3*' '/usr/lib/postgresql/*/lib/llvmjit*' \
         '/usr/lib/postgresql/*/lib/bitcode/*'; do
  set -- "$@" "--dpkgopt=path-exclude=$p"
done

exec mmdebstrap \
  --variant=apt \
  --format=tar \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt=force-unsafe-io \
  "$@" \
  --include="systemd,systemd-sysv,dbus,postgresql-$pg,postgresql-client-$pg,openssh-server,openssh-client,sudo,cron,procps,iproute2,iptables,iputils-ping,nano,less,ca-certificates,apt-utils" \
  --customize-hook='mkdir -p "$1/opt/pglab/apt/partial"' \
  --customize-hook='chroot "$1" apt-get install -y --download-only -o Dir::Cache::archives=/opt/pglab/apt pgbackrest' \
  --customize-hook='rm -rf "$1/opt/pglab/apt/partial" "$1/opt/pglab/apt/lock"' \
  --customize-hook='chroot "$1" sh -c "cd /opt/pglab/apt && apt-ftparchive packages . > Packages"' \
  --customize-hook="mkdir -p \"\$1/etc/pglab\" && { \
      . \"\$1/etc/os-release\"; echo \"os=\$PRETTY_NAME\"; \
      echo \"debian=\$(cat \"\$1/etc/debian_version\")\"; \
      echo \"suite=$suite\"; \
      echo \"archive_date=\$(sed -n 's/^Date: //p' \"\$1\"/var/lib/apt/lists/*_dists_${suite}_*Release | head -n1)\"; \
      echo \"postgresql=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' postgresql-$pg)\"; \
      echo \"pgbackrest=\$(chroot \"\$1\" sh -c 'dpkg-deb -f /opt/pglab/apt/pgbackrest_*.deb Version')\"; \
      echo \"systemd=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' systemd)\"; \
      echo \"openssh=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' openssh-server)\"; \
      echo \"packages=\$({ chroot \"\$1\" dpkg-query -W -f '\${Package}=\${Version}\\n'; ls \"\$1/opt/pglab/apt\"; } | LC_ALL=C sort | sha256sum | cut -c1-16)\"; \
    } > \"\$1/etc/pglab/image\" && ! grep -q '=\$' \"\$1/etc/pglab/image\" && cp \"\$1/etc/pglab/image\" \"$recipe/image.env\"" \
  --customize-hook='rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*' \
  --customize-hook='echo "deb [trusted=yes] file:/opt/pglab/apt ./" > "$1/etc/apt/sources.list.d/pglab-local.list"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  --customize-hook='for u in tmp.mount getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service systemd-firstboot.service systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer dpkg-db-backup.timer logrotate.timer systemd-tmpfiles-clean.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook='sed -i "s/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/" "$1/etc/pam.d/sshd" "$1/etc/pam.d/cron"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --groups sudo dba' \
  --customize-hook='echo pglab > "$1/etc/hostname"' \
  --customize-hook="install -D -m 0440 \"$recipe/sudoers-dba\" \"\$1/etc/sudoers.d/dba\"" \
  --customize-hook="install -D -m 0644 \"$recipe/journald-pglab.conf\" \"\$1/etc/systemd/journald.conf.d/pglab.conf\"" \
  --customize-hook="install -D -m 0644 \"$recipe/sshd-pglab.conf\" \"\$1/etc/ssh/sshd_config.d/pglab.conf\"" \
  --customize-hook="install -D -m 0644 \"$recipe/ssh-hostkeys.conf\" \"\$1/etc/systemd/system/ssh.service.d/pglab-hostkeys.conf\"" \
  "$suite" - "deb $mirror $suite main"
