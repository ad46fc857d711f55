#!/usr/bin/env bash
# Install a one-node SLURM (Debian's slurm-wlm: slurmctld + slurmd) and munge
# with apt-get, for the `slurm` tests and for trying the SLURM profile on one
# machine. Idempotent: does nothing when the daemons are already installed.
# Needs root and apt-get; exits 2 (with the reason on stderr) without them, so
# callers can tell "cannot install here" from a failed install.
# The daemons are not started here: prefix_study.slurm_local does that per
# test, with its own config under a temporary directory.
set -euo pipefail
PACKAGES=(slurmctld slurmd slurm-client munge)
have_all() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null \
        && command -v mungekey >/dev/null
}
if have_all; then
    echo "slurm: already installed ($(slurmctld -V))"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "slurm: apt-get not found; install ${PACKAGES[*]} with your package manager" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "slurm: not root and no password-less sudo; run as root: $0" >&2
        exit 2
    fi
else
    SUDO=
fi
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: no mail server, no slurmdbd/MariaDB (the executor
# plugin works without accounting, see README "SLURM").
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
# Debian starts the packaged services where systemd runs; we run our own.
for svc in slurmctld slurmd munge; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
have_all || { echo "slurm: install finished but a daemon is missing" >&2; exit 1; }
echo "slurm: installed $(slurmctld -V) in $(( $(date +%s) - start )) s"
