# driver-lib.sh: helpers of dom0's test drivers (functional, hostile, bench), sourced by
# each after it sets DRIVER (its name in progress and check lines) and OUT (its output
# directory). Checks go to $OUT/checks.txt ("PASS|FAIL|INFO DRIVER: text"), counted in NFAIL.
# shellcheck shell=bash

NFAIL=0

# progress TEXT: a line on dom0's console (the host shows it as it comes) and in progress.log.
progress() {
  local line="[dom0 $(date +%H:%M:%S)] $DRIVER: $*"
  echo "$line"
  echo "$line" >>/rig/out/progress.log
}

# note TEXT: a line of the driver's log.txt.
note() { echo "$(date +%H:%M:%S) $*" >>"$OUT/log.txt"; }

# record PASS|FAIL|INFO TEXT: one line of checks.txt (INFO: reported, not asserted). A failure
# also shows up at once on the host, which prints every line at the end.
record() {
  echo "$1 $DRIVER: $2" >>"$OUT/checks.txt"
  note "$1 $2"
  [[ $1 == FAIL ]] && { NFAIL=$((NFAIL + 1)); progress "FAIL $2"; }
  return 0
}

# check TEXT CMD...: PASS if CMD succeeds, else FAIL; TEXT carries the numbers.
check() {
  local text=$1
  shift
  if "$@"; then record PASS "$text"; else record FAIL "$text"; fi
}

# save_failure_state: Xen's domains and the rig's xenstore nodes when a driver gives up, so
# that the host can show why.
save_failure_state() {
  { xl list; echo; xenstore-ls -f /local/domain 2>/dev/null | grep -E 'rig-|/state|hotplug'; } \
    >"$OUT/xen-state-at-failure.txt" 2>&1
}

# now_s: the time in seconds, to 0.1 ms; elapsed T0: seconds since T0, to 0.1 s.
now_s() { echo "${EPOCHREALTIME:0:14}"; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# refcnt: the backend module's use count (MODDIR: its /sys/module directory), or "none".
refcnt() { cat "$MODDIR/refcnt" 2>/dev/null || echo none; }

# field LINE KEY: the value of KEY=... in a "key=value ..." line, or NA.
field() {
  local kv
  for kv in $1; do [[ $kv == "$2="* ]] && { echo "${kv#*=}"; return; }; done
  echo NA
}
