#!/bin/sh
# Build the offline rootfs of a pglab object-store host (kind `s3`) as a tar
# on stdout: systemd, stunnel and the S3 server (pglab-s3d: s3s-fs with what
# a lab needs, docker/s3/pglab-s3d.*), nothing else. The server's binary comes
# from BIN_DIR (built by pglab with the building machine's cargo, every
# crate pinned by its lockfile) and must run on this
# suite's glibc: a hook runs it once in the chroot, so a binary that cannot
# fails the build, not a lab. Its units are enabled here but start only once
# pglab has written the lab's key and certificate (ConditionPathExists), so
# pglab starts them without a daemon-reload, and a restarted host serves
# again by itself; its objects are files under /var/lib/pglab-s3.
#
# usage: rootfs.sh SUITE MIRROR_URI RECIPE_DIR BIN_DIR > rootfs.tar
# What was installed is written to RECIPE_DIR/image.env (and /etc/pglab/image).
set -eu
suite=$1 mirror=$2 recipe=$3 bin=$4

set --
for p in '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*'; do
  set -- "$@" "--dpkgopt=path-exclude=$p"
done

exec mmdebstrap \
  --variant=apt \
  --format=tar \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt=force-unsafe-io \
  "$@" \
  --include="systemd,systemd-sysv,dbus,ca-certificates,curl,procps,iproute2,stunnel4" \
  --customize-hook="install -D -m 0755 \"$bin/pglab-s3d\" \"\$1/usr/local/bin/pglab-s3d\"" \
  --customize-hook='chroot "$1" /usr/local/bin/pglab-s3d --version >/dev/null' \
  --customize-hook='mkdir -p "$1/var/lib/pglab-s3"' \
  --customize-hook="mkdir -p \"\$1/etc/pglab/s3\" && { \
      . \"\$1/etc/os-release\"; echo \"os=\$PRETTY_NAME\"; \
      echo \"debian=\$(cat \"\$1/etc/debian_version\")\"; \
      echo \"suite=$suite\"; \
      echo \"archive_date=\$(sed -n 's/^Date: //p' \"\$1\"/var/lib/apt/lists/*_dists_${suite}_*Release | head -n1)\"; \
      echo \"s3s_fs=\$(sed -n '/^name = \"s3s-fs\"/{n;s/^version = \"\\(.*\\)\"/\\1/p}' \"$recipe/server/Cargo.lock\")\"; \
      echo \"stunnel=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' stunnel4)\"; \
      echo \"systemd=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' systemd)\"; \
      echo \"packages=\$({ chroot \"\$1\" dpkg-query -W -f '\${Package}=\${Version}\\n'; sha256sum \"\$1/usr/local/bin/pglab-s3d\" | cut -c1-64; } | LC_ALL=C sort | sha256sum | cut -c1-16)\"; \
    } > \"\$1/etc/pglab/image\" && ! grep -q '=\$' \"\$1/etc/pglab/image\" && cp \"\$1/etc/pglab/image\" \"$recipe/image.env\"" \
  --customize-hook='rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  --customize-hook='for u in tmp.mount getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service systemd-firstboot.service systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook='echo pglab > "$1/etc/hostname"' \
  --customize-hook="install -D -m 0644 \"$recipe/journald-pglab.conf\" \"\$1/etc/systemd/journald.conf.d/pglab.conf\"" \
  --customize-hook="install -D -m 0644 \"$recipe/pglab-s3.service\" \"\$1/etc/systemd/system/pglab-s3.service\"" \
  --customize-hook="install -D -m 0644 \"$recipe/pglab-s3-tls.service\" \"\$1/etc/systemd/system/pglab-s3-tls.service\"" \
  --customize-hook='mkdir -p "$1/etc/systemd/system/multi-user.target.wants" && for u in pglab-s3.service pglab-s3-tls.service; do ln -sf "/etc/systemd/system/$u" "$1/etc/systemd/system/multi-user.target.wants/$u"; done' \
  --customize-hook="install -D -m 0644 \"$recipe/stunnel.conf\" \"\$1/etc/pglab/s3/stunnel.conf\"" \
  --customize-hook="install -D -m 0755 \"$recipe/pglab-s3-scan\" \"\$1/usr/local/sbin/pglab-s3-scan\"" \
  "$suite" - "deb $mirror $suite main"
