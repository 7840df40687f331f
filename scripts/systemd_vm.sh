#!/usr/bin/env bash
# botfleet's `systemd --user` agent path against a real systemd host: a Debian bookworm VM
# (debootstrap + qemu) that tests/integration/test_remote_systemd.py provisions
# through the api, like any VPS.
#
#   scripts/systemd_vm.sh build        build the image into the cache (once; a no-op when built)
#   scripts/systemd_vm.sh prepare      install qemu, build if needed, print the image's directory
#   scripts/systemd_vm.sh [PYTEST...]  the test through scripts/test.sh (arguments go to pytest);
#                                      the same as BOTFLEET_TEST_SYSTEMD_VM=1 scripts/test.sh ...
#
# The image lies in $BOTFLEET_SYSTEMD_VM_CACHE (default: var/systemd-vm): image.raw (ext4 root
# file system, never written by tests: each boot runs on a qcow2 overlay), vmlinuz, initrd.img,
# id_ed25519 (the key of the VM's users `bot` and `nolinger`), stamp (digest of the recipe below: a changed
# recipe rebuilds). Building needs root (debootstrap) and Debian's package mirror
# (BOTFLEET_SYSTEMD_VM_MIRROR). The guest runs under software emulation by default
# (BOTFLEET_SYSTEMD_VM_ACCEL=tcg): the nested KVM of the machines this was written on hangs the
# guest's kernel before its first console line; BOTFLEET_SYSTEMD_VM_ACCEL=kvm where KVM works.
# Any failure (no root, mirror unreachable, qemu missing) stops the script with its reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh

CACHE="${BOTFLEET_SYSTEMD_VM_CACHE:-$PWD/var/systemd-vm}"
MIRROR="${BOTFLEET_SYSTEMD_VM_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,polkitd,openssh-server,python3,python3-venv,cron,linux-image-amd64,initramfs-tools,iproute2,procps,ca-certificates

fail() { log "systemd VM: $*"; exit 1; }

# The image recipe: everything build_image does depends only on this function and PACKAGES.
recipe_digest() {
    { declare -f build_image configure_rootfs; echo "$PACKAGES"; } | sha256sum | cut -d' ' -f1
}

configure_rootfs() {
    local root="$1" key="$2"
    echo systemd-vm >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 systemd-vm\n' >"$root/etc/hosts"
    echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
    # user-mode networking (qemu's DHCP); the NIC is virtio.
    printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-dhcp.network"
    chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
    chroot "$root" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
    # Normal users, as botfleet provisions hosts (no sudo: nothing it does needs root).
    # `nolinger` may not turn lingering on (a polkit rule, as some hosts have): the agent must
    # fall back to running detached there.
    local user uid=1000
    for user in bot nolinger; do
        chroot "$root" useradd --create-home --shell /bin/bash --uid "$uid" "$user"
        install -d -m 700 -o "$uid" -g "$uid" "$root/home/$user/.ssh"
        install -m 600 -o "$uid" -g "$uid" "$key.pub" "$root/home/$user/.ssh/authorized_keys"
        uid=$((uid + 1))
    done
    cat >"$root/etc/polkit-1/rules.d/10-botfleet-nolinger.rules" <<'EOF'
polkit.addRule(function(action, subject) {
    if (action.id == "org.freedesktop.login1.set-self-linger" && subject.user == "nolinger") {
        return polkit.Result.NO;
    }
});
EOF
    printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n' \
        >"$root/etc/ssh/sshd_config.d/botfleet-test.conf"
    # Host keys made here are baked into the image: the test scans and accepts them per run.
    chroot "$root" ssh-keygen -A >/dev/null
    rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"  # made fresh at first boot
}

build_image() {
    local work="$CACHE.building"
    rm -rf "$work" && mkdir -p "$work"
    log "systemd VM: debootstrap bookworm into $work/rootfs ($MIRROR)"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log: $work/debootstrap.log)"; }
    ssh-keygen -q -t ed25519 -N '' -C botfleet-systemd-vm -f "$work/id_ed25519"
    configure_rootfs "$work/rootfs" "$work/id_ed25519"
    cp "$(readlink -f "$work/rootfs/vmlinuz")" "$work/vmlinuz"
    cp "$(readlink -f "$work/rootfs/initrd.img")" "$work/initrd.img"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    log "systemd VM: mkfs.ext4 -d rootfs"
    truncate -s 3G "$work/image.raw"
    mkfs.ext4 -q -F -L root -d "$work/rootfs" "$work/image.raw"
    rm -rf "$work/rootfs"
    recipe_digest >"$work/stamp"
    rm -rf "$CACHE" && mv "$work" "$CACHE"
}

ensure_image() {
    if [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$(recipe_digest)" ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || fail "building the image needs root (debootstrap, chroot)"
    ensure_debian_packages debootstrap:debootstrap mkfs.ext4:e2fsprogs
    local started=$SECONDS
    build_image
    log "systemd VM: image built in $((SECONDS - started)) s into $CACHE"
}

ensure_qemu() {
    ensure_debian_packages qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils socat:socat
    if [ "${BOTFLEET_SYSTEMD_VM_ACCEL:-tcg}" = kvm ]; then
        [ -r /dev/kvm ] && [ -w /dev/kvm ] || fail "BOTFLEET_SYSTEMD_VM_ACCEL=kvm but /dev/kvm is missing or not usable by $(id -un)"
    fi
}

case "${1:-}" in
    build) ensure_image ;;
    prepare) ensure_qemu; ensure_image; echo "$CACHE" ;;
    *)
        # scripts/test.sh prepares the VM (this script's `prepare`) and runs the test with it.
        export BOTFLEET_TEST_SYSTEMD_VM=1
        exec scripts/test.sh tests/integration/test_remote_systemd.py "$@"
        ;;
esac
