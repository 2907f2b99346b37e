#!/usr/bin/env bash
# Shared helpers for bootstrap_cluster.sh and destroy_cluster.sh (sourced).
# The variables defined here are read by the scripts that source this file.
# shellcheck disable=SC2034

# Repository root, from this file's location, so the scripts work from any cwd.
ECO2_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ECO2_REPO_ROOT
ECO2_TF_DIR="${ECO2_REPO_ROOT}/terraform"
ECO2_ANSIBLE_DIR="${ECO2_REPO_ROOT}/ansible"

DRY_RUN=0
CURRENT_STEP="startup"

# Anything that fails outside run() (mkdir, mv, ...) still names its step.
on_error() {
  printf 'ERROR: step %s failed (exit %s) at line %s\n' "'${CURRENT_STEP}'" "$1" "$2" >&2
}
trap 'on_error $? $LINENO' ERR

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# Quote a command the way a shell would read it back, for logs and --dry-run.
quote_cmd() {
  local out="" arg
  for arg in "$@"; do
    out+="$(printf '%q' "${arg}") "
  done
  printf '%s' "${out% }"
}

# Run one command of the current step; on failure name the step and command.
run() {
  if ((DRY_RUN)); then
    printf '[dry-run] %s: %s\n' "${CURRENT_STEP}" "$(quote_cmd "$@")"
    return 0
  fi
  log "${CURRENT_STEP}: $(quote_cmd "$@")"
  local rc=0
  "$@" || rc=$?
  if ((rc != 0)); then
    die "step '${CURRENT_STEP}' failed (exit ${rc}): $(quote_cmd "$@")"
  fi
}

begin_step() {
  CURRENT_STEP="$1"
  log "step ${CURRENT_STEP}: $2"
}

skip_step() {
  log "step $1: skipped ($2)"
}

# Fail before doing anything if a tool a selected step needs is missing.
require_tools() {
  local missing=() tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
  done
  if ((${#missing[@]})); then
    die "step 'preflight' failed: required tool(s) not on PATH: ${missing[*]} (see docs/deployment.md#prerequisites)"
  fi
}

validate_env() {
  case "$1" in
    dev | prod) ;;
    "") die "--env is required (dev or prod)" ;;
    *) die "--env must be dev or prod, got '$1'" ;;
  esac
}

tf() {
  run terraform -chdir="${ECO2_TF_DIR}" "$@"
}

# init against the environment's backend and select its workspace; the root
# refuses to plan when workspace and environment disagree.
tf_init() {
  local env="$1"
  tf init -input=false -reconfigure -backend-config="backend/${env}.hcl"
  tf workspace select -or-create "${env}"
}
