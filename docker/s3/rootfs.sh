#!/bin/sh
# Build the offline rootfs of a pglab object-store host (kind `s3`) as a tar
# on stdout: systemd, Python and moto's S3 server in a venv, nothing else.
# The wheels come from WHEELS_DIR (downloaded by pglab with the building
# machine's pip, exactly the versions in requirements.txt) and are installed
# with no index: the host never reaches a network. Their bytecode is
# compiled hash-checked, not by time: mmdebstrap's tar clamps every mtime to
# the build's start, so pip's pycs looked stale and each start of the store
# compiled ~380 modules again (moto imported in 5 s instead of 1.6 s).
# The store's plain server (pglab-s3.service) is enabled here, so moto
# imports while the lab's hosts boot; its TLS front waits for the lab's
# certificate (pglab enables it then).
#
# usage: rootfs.sh SUITE MIRROR_URI RECIPE_DIR WHEELS_DIR > rootfs.tar
# What was installed is written to RECIPE_DIR/image.env (and /etc/pglab/image).
set -eu
suite=$1 mirror=$2 recipe=$3 wheels=$4

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
  --include="systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,curl,procps,iproute2,stunnel4" \
  --customize-hook="mkdir -p \"\$1/opt/pglab/wheels\" && cp \"$wheels\"/*.whl \"$recipe/requirements.txt\" \"\$1/opt/pglab/wheels/\"" \
  --customize-hook='chroot "$1" python3 -m venv /opt/pglab/s3' \
  --customize-hook='chroot "$1" /opt/pglab/s3/bin/pip install --quiet --no-index --disable-pip-version-check --find-links /opt/pglab/wheels -r /opt/pglab/wheels/requirements.txt' \
  --customize-hook='rm -rf "$1/opt/pglab/wheels"' \
  --customize-hook='chroot "$1" /opt/pglab/s3/bin/python -m compileall -q -f --invalidation-mode unchecked-hash /opt/pglab/s3/lib' \
  --customize-hook="mkdir -p \"\$1/etc/pglab/s3\" && { \
      . \"\$1/etc/os-release\"; echo \"os=\$PRETTY_NAME\"; \
      echo \"debian=\$(cat \"\$1/etc/debian_version\")\"; \
      echo \"suite=$suite\"; \
      echo \"archive_date=\$(sed -n 's/^Date: //p' \"\$1\"/var/lib/apt/lists/*_dists_${suite}_*Release | head -n1)\"; \
      echo \"python=\$(chroot \"\$1\" python3 -c 'import platform; print(platform.python_version())')\"; \
      echo \"moto=\$(chroot \"\$1\" /opt/pglab/s3/bin/python -c 'import moto; print(moto.__version__)')\"; \
      echo \"stunnel=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' stunnel4)\"; \
      echo \"systemd=\$(chroot \"\$1\" dpkg-query -W -f '\${Version}' systemd)\"; \
      echo \"packages=\$({ chroot \"\$1\" dpkg-query -W -f '\${Package}=\${Version}\\n'; chroot \"\$1\" /opt/pglab/s3/bin/pip freeze; } | LC_ALL=C sort | sha256sum | cut -c1-16)\"; \
    } > \"\$1/etc/pglab/image\" && ! grep -q '=\$' \"\$1/etc/pglab/image\" && cp \"\$1/etc/pglab/image\" \"$recipe/image.env\"" \
  --customize-hook='rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  --customize-hook='for u in tmp.mount getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service systemd-firstboot.service systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
  --customize-hook='echo pglab > "$1/etc/hostname"' \
  --customize-hook="install -D -m 0644 \"$recipe/journald-pglab.conf\" \"\$1/etc/systemd/journald.conf.d/pglab.conf\"" \
  --customize-hook="install -D -m 0644 \"$recipe/pglab-s3.service\" \"\$1/etc/systemd/system/pglab-s3.service\"" \
  --customize-hook="install -D -m 0644 \"$recipe/pglab-s3-tls.service\" \"\$1/etc/systemd/system/pglab-s3-tls.service\"" \
  --customize-hook='mkdir -p "$1/etc/systemd/system/multi-user.target.wants" && ln -sf /etc/systemd/system/pglab-s3.service "$1/etc/systemd/system/multi-user.target.wants/pglab-s3.service"' \
  --customize-hook="install -D -m 0644 \"$recipe/stunnel.conf\" \"\$1/etc/pglab/s3/stunnel.conf\"" \
  --customize-hook="install -D -m 0755 \"$recipe/pglab-s3-serve\" \"\$1/usr/local/sbin/pglab-s3-serve\"" \
  --customize-hook="install -D -m 0755 \"$recipe/pglab-s3-setup\" \"\$1/usr/local/sbin/pglab-s3-setup\"" \
  --customize-hook="install -D -m 0755 \"$recipe/pglab-s3-scan\" \"\$1/usr/local/sbin/pglab-s3-scan\"" \
  "$suite" - "deb $mirror $suite main"
