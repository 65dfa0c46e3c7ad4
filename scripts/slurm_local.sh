#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for lmlab's SLURM tests (tests/e2e/test_slurm.py). Run as root.
#   bash scripts/slurm_local.sh start    # install the Debian packages if needed, configure, start; idempotent
#   bash scripts/slurm_local.sh stop
#   bash scripts/slurm_local.sh status
# One node (this host, all its CPUs), one partition `debug`, accounting off, no cgroups (works in containers).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm-local

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd munge slurm-client
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm
    cat > "$CONF" <<CONF
ClusterName=lmlab-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job may start again after this many seconds (default 120: a preemption test would wait 2 min)
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

start() {
    install_packages
    write_config
    if [ ! -s /etc/munge/munge.key ]; then
        (command -v mungekey >/dev/null && mungekey --create --force) || create-munge-key -f
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    mkdir -p /run/munge && chown munge:munge /run/munge
    pgrep -x munged >/dev/null || su -s /bin/sh munge -c munged 2>/dev/null || munged --force
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
            sinfo
            return 0
        fi
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "slurm_local: the node did not become idle; see /var/log/slurm/" >&2
    sinfo >&2 || true
    return 1
}

stop() {
    scancel --user=root >/dev/null 2>&1 || true
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x munged || true
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
