# shellcheck shell=bash
# Helpers shared by the end-to-end suites (run.sh, hostile/run.sh), sourced by both:
#
#   results     section, record, pass, fail, skip, info, die, check, summary
#   processes   starttime, alive, start_bg, descendants, wait_gone, stop, stop_all,
#               kill_leftovers, leftovers, check_leftovers
#   waits       wait_until
#   setup       apt_install
#
# Before sourcing, the caller sets (under set -euo pipefail, bash 4.4 or later):
#   STATE           the pid file: "pid starttime name" of the run's processes, "DIR - dir" of its
#                   temp dir, so that the next run stops what a killed run left behind
#   WORKDIR_PREFIX  the run's temp dir is "$WORKDIR_PREFIX.XXXXXX" (mktemp); kill_leftovers
#                   removes only directories named so
#   KEEP            1: keep the temp dir even on success
# Sourcing sets STARTED_AT, W="" and RESULTS=/dev/null (the caller sets W and RESULTS once its
# temp dir exists) and the bookkeeping of start_bg: PID (name -> pid) and ORDER (names, oldest
# first). The caller holds its lock on fd 9; start_bg closes it for the processes it starts.

: "${STATE:?set STATE before sourcing lib.sh}" "${WORKDIR_PREFIX:?set WORKDIR_PREFIX before sourcing lib.sh}" \
    "${KEEP:?set KEEP before sourcing lib.sh}"

STARTED_AT=$(date +%s)
W=""
RESULTS=/dev/null
declare -gA PID=()
ORDER=()

# ------------------------------------------------------------------------------------------------
# Results: one PASS/FAIL/SKIP/INFO line per check, on stdout and in $RESULTS

section() { printf '\n=== %s\n' "$*"; }
record() { printf '%s\n' "$*"; printf '%s\n' "$*" >>"$RESULTS"; }
pass() { record "PASS: $*"; }
fail() { record "FAIL: $*"; }
skip() { record "SKIP: $*"; }
info() { record "INFO: $*"; }
die() {
    fail "$*"
    exit 1
}
check() { # check DESCRIPTION COMMAND...: PASS when the command succeeds
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

summary() { # summary RC LOG...: the counts; on any failure (or RC != 0) the FAIL lines and the
    #         last lines of each LOG in $W, then exit 1. Called by the suite's cleanup (set +e).
    local rc=$1 passes fails f
    shift
    passes=$(grep -c '^PASS:' "$RESULTS" 2>/dev/null)
    fails=$(grep -c '^FAIL:' "$RESULTS" 2>/dev/null)
    echo "checks passed: ${passes:-0}, failed: ${fails:-0}, time: $(($(date +%s) - STARTED_AT))s"
    if [[ ${fails:-0} -gt 0 || $rc -ne 0 ]]; then
        grep '^FAIL:' "$RESULTS"
        [[ $rc -eq 0 ]] || echo "the run stopped early (exit status $rc)"
        for f in "$@"; do
            if [[ -s $W/$f ]]; then
                echo "--- last lines of $W/$f"
                tail -n 15 "$W/$f"
            fi
        done
        echo "RESULT: FAIL (logs kept in $W)"
        exit 1
    fi
    if [[ $KEEP == 1 ]]; then echo "logs kept in $W"; else rm -rf "$W"; fi
    echo "RESULT: PASS"
}

# ------------------------------------------------------------------------------------------------
# Processes: started in the background, tracked by pid, stopped by pid.

starttime() { # field 22 of /proc/PID/stat (the comm field may contain spaces: cut after ')')
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

alive() { kill -0 "$1" 2>/dev/null; }

start_bg() { # start_bg NAME LOGFILE COMMAND...
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 9>&- & # fd 9 holds the suite's lock: not for the servers
    local pid=$!
    PID[$name]=$pid
    ORDER+=("$name")
    echo "$pid $(starttime "$pid" || echo 0) $name" >>"$STATE"
}

descendants() { # pids of all descendants of $1
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

wait_gone() { # wait_gone PID TENTHS: bounded wait until the process is gone
    local i
    for ((i = 0; i < $2; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    ! alive "$1"
}

stop() { # stop NAME [SIGNAL]: signal, bounded wait, then SIGKILL; returns 1 if it needed SIGKILL
    local name=$1 sig=${2:-TERM} pid rc=0 kids k
    pid=${PID[$name]:-}
    [[ -n $pid ]] || return 0
    kids=$(descendants "$pid")
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 150; then
        kill -KILL "$pid" 2>/dev/null || true
        rc=1
    fi
    wait "$pid" 2>/dev/null || true
    for k in $kids; do
        wait_gone "$k" 50 || kill -KILL "$k" 2>/dev/null || true
    done
    unset "PID[$name]"
    return "$rc"
}

stop_all() { # stop every process start_bg started that is still running, newest first, quietly
    local i
    for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
        stop "${ORDER[i]}" >/dev/null 2>&1 || true
    done
}

kill_leftovers() { # processes and temp dir recorded by an earlier run killed before its cleanup
    [[ -s $STATE ]] || return 0
    local pid st name
    while read -r pid st name; do
        if [[ $name == dir && $pid == "$WORKDIR_PREFIX".* ]]; then
            rm -rf "$pid"
        elif [[ -d /proc/$pid && $(starttime "$pid" || echo x) == "$st" ]]; then
            echo "stopping $name (pid $pid) left over by an earlier run"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 100 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$STATE"
    : >"$STATE"
}

leftovers() { # processes of this run still alive (recorded pids, anything mentioning the temp dir)
    local pid st name p cmd
    if [[ -s $STATE ]]; then
        while read -r pid st name; do
            if [[ $name != dir && -d /proc/$pid && $(starttime "$pid" || echo x) == "$st" ]]; then echo "$pid ($name)"; fi
        done <"$STATE"
    fi
    for p in /proc/[0-9]*; do
        # The braces silence the redirection too: a process may end while the loop runs.
        cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        if [[ -n $W && $cmd == *"$W"* ]]; then echo "${p#/proc/} ($cmd)"; fi
    done
}

check_leftovers() { # PASS when no process of this run is left; then the pid file is emptied
    local leftover
    leftover=$(leftovers | sort -u)
    if [[ -z $leftover ]]; then
        pass "no process of the suite is left"
    else
        fail "processes of the suite still running: $(echo "$leftover" | tr '\n' ' ')"
    fi
    : >"$STATE"
}

# ------------------------------------------------------------------------------------------------
# Bounded waits

wait_until() { # wait_until TRIES SLEEP COMMAND...: retry a command, bounded
    local tries=$1 pause=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep "$pause"
    done
    return 1
}

# ------------------------------------------------------------------------------------------------
# Setup

apt_install() { # apt_install PACKAGE...: install them with apt-get (none: nothing to do); the
    #             package lists are updated only when the install fails
    (($#)) || return 0
    section "Installing $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$@"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "$@"
    fi
}
