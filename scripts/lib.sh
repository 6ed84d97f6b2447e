# Shared helpers for rblkback's scripts. Source it; it defines no side effects.

# Where expensive, deterministic build outputs live: outside the repository, so a fresh
# clone on the same machine reuses them. Override with RBLKBACK_CACHE.
RBLKBACK_CACHE=${RBLKBACK_CACHE:-/var/cache/rblkback}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLVM_SUFFIX=-19

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${LOG_TAG:-rblkback}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# need TOOL [hint]: fail early, naming the missing tool and how to get it.
need() {
  command -v "$1" >/dev/null 2>&1 || die "required tool '$1' not found${2:+ ($2)}; run scripts/install-deps"
}

# hash_inputs FILE... : a short, stable key over file contents and extra strings from stdin.
hash_inputs() {
  { for f in "$@"; do printf '== %s\n' "$(basename "$f")"; cat "$f"; done; cat; } | sha256sum | cut -c1-16
}

# run_with_progress LOGFILE LABEL CMD...: runs CMD with output to LOGFILE, printing a progress
# line every 30 s (elapsed time and the last line of the log) so long steps are visibly alive.
run_with_progress() {
  local logfile=$1 label=$2; shift 2
  local start=$SECONDS last=$SECONDS
  "$@" >"$logfile" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - last >= ${PROGRESS_EVERY:-30} )) && kill -0 "$pid" 2>/dev/null; then
      last=$SECONDS
      log "$label: $((SECONDS - start))s, $(tail -n 1 "$logfile" | cut -c1-100)"
    fi
  done
  if ! wait "$pid"; then
    tail -n 60 "$logfile" >&2
    die "$label failed after $((SECONDS - start))s (full log: $logfile)"
  fi
  log "$label: done in $((SECONDS - start))s"
}
