#!/usr/bin/env bash
# Tear an Eco2 environment down in the reverse order of bootstrap_cluster.sh:
# first the in-cluster objects that own AWS resources Terraform does not know
# about (ALBs, EBS volumes, Route53 records made by controllers), then Terraform.
set -Eeuo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") --env dev|prod [options]

Destroy the Eco2 cluster of one environment:
  1. cluster-cleanup  delete the Argo CD root app (cascading to every app), then
                      every Ingress, LoadBalancer Service and PVC, so the AWS
                      Load Balancer Controller, ExternalDNS and the EBS CSI
                      driver remove the ALBs, records and volumes they created
                      (left behind, they keep the VPC from being deleted)
  2. terraform        terraform destroy with env/<env>.tfvars

Options:
  --env ENV                 dev or prod (required)
  --yes                     do not ask for confirmation
  --allow-prod              required to destroy prod (even with --yes)
  --skip-cluster-cleanup    go straight to terraform destroy (cluster already gone
                            or unreachable)
  --dry-run                 print every command, run nothing
  -h, --help                show this help

Without --yes the script asks you to type the environment name; with no
terminal to ask on, it refuses.
USAGE
}

ENV=""
ASSUME_YES=0
ALLOW_PROD=0
SKIP_CLEANUP=0

while (($#)); do
  case "$1" in
    --env)
      (($# >= 2)) || die "--env needs a value (dev or prod)"
      ENV="$2"
      shift 2
      ;;
    --env=*)
      ENV="${1#--env=}"
      shift
      ;;
    --yes | -y) ASSUME_YES=1; shift ;;
    --allow-prod) ALLOW_PROD=1; shift ;;
    --skip-cluster-cleanup) SKIP_CLEANUP=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

validate_env "${ENV}"

if [[ "${ENV}" == "prod" ]] && ((!ALLOW_PROD)); then
  die "refusing to destroy prod without --allow-prod"
fi

KUBECONFIG_PATH="${ECO2_ANSIBLE_DIR}/artifacts/${ENV}/kubeconfig"
CLEANUP_TIMEOUT="${ECO2_CLEANUP_TIMEOUT:-600s}"

CURRENT_STEP="preflight"
tools=(terraform)
((SKIP_CLEANUP)) || tools+=(kubectl)
require_tools "${tools[@]}"

if ((!ASSUME_YES && !DRY_RUN)); then
  printf 'This destroys every resource of the %s environment (nodes, data volumes, buckets).\n' "${ENV}" >&2
  printf 'Type the environment name (%s) to continue: ' "${ENV}" >&2
  answer=""
  read -r answer || die "no confirmation received (no terminal?); pass --yes to destroy without asking"
  [[ "${answer}" == "${ENV}" ]] || die "confirmation did not match '${ENV}'; nothing was destroyed"
fi

# --- 1. cluster-cleanup ----------------------------------------------------------
if ((SKIP_CLEANUP)); then
  skip_step cluster-cleanup "--skip-cluster-cleanup"
else
  begin_step cluster-cleanup "delete in-cluster owners of AWS resources"
  if ((!DRY_RUN)) && [[ ! -f "${KUBECONFIG_PATH}" ]]; then
    die "step 'cluster-cleanup' failed: ${KUBECONFIG_PATH} not found; rerun with --skip-cluster-cleanup if the cluster is already gone"
  fi
  k=(kubectl --kubeconfig "${KUBECONFIG_PATH}")
  # The root app's resources finalizer cascades the delete to every child app.
  run "${k[@]}" -n argocd delete application eco2-root --ignore-not-found --wait --timeout="${CLEANUP_TIMEOUT}"
  run "${k[@]}" delete ingress --all --all-namespaces --wait --timeout="${CLEANUP_TIMEOUT}"
  run "${k[@]}" delete service --all-namespaces --field-selector spec.type=LoadBalancer --wait --timeout="${CLEANUP_TIMEOUT}"
  run "${k[@]}" delete pvc --all --all-namespaces --wait --timeout="${CLEANUP_TIMEOUT}"
fi

# --- 2. terraform ----------------------------------------------------------------
begin_step terraform "terraform destroy"
tf_init "${ENV}"
# The typed confirmation above replaces Terraform's own prompt.
tf destroy -input=false "-var-file=env/${ENV}.tfvars" -auto-approve

CURRENT_STEP="done"
log "environment '${ENV}' destroyed$( ((DRY_RUN)) && printf ' (dry run)')"
