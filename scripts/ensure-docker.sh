#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install docker.io (and debootstrap, which the
# "debian" base-image provider needs) when missing, start dockerd in the background when no
# engine answers, and wait until it does. Idempotent; needs root only when something is missing.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_dockerd() {
  local logfile=${DOCKERD_LOG:-/var/log/dockerd.log}
  log "starting dockerd (log: $logfile)"
  nohup dockerd >"$logfile" 2>&1 &
  for _ in $(seq 1 60); do
    engine_answers && return 0
    sleep 1
  done
  log "dockerd did not answer within 60 s; last log lines:"
  tail -n 20 "$logfile" >&2 || true
  return 1
}

if ! command -v debootstrap >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
  install_packages
fi
if engine_answers; then
  log "engine already answers"
else
  start_dockerd
fi
docker version --format 'ensure-docker: engine {{.Server.Version}} answers' >&2
