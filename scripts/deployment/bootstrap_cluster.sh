#!/usr/bin/env bash
# Build an Eco2 cluster from nothing:
#   terraform (AWS) -> inventory (terraform output) -> ansible (kubeadm, Calico,
#   labels) -> argocd (Argo CD + root app, then wait for it to sync).
set -Eeuo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") --env dev|prod [options]

Bring up the Eco2 Kubernetes cluster for one environment, layer by layer:
  1. terraform  terraform init/workspace/apply with env/<env>.tfvars
  2. inventory  terraform output ansible_inventory > ansible/inventory/<env>/hosts.yml
  3. ansible    ansible-playbook site.yml (nodes, kubeadm, Calico, node labels)
  4. argocd     ansible-playbook site.yml --tags argocd (Argo CD + root app),
                then kubectl waits for the root app to sync

Options:
  --env ENV          dev or prod (required)
  --skip-terraform   do not init/apply Terraform (the inventory is still rendered
                     from the existing state)
  --skip-ansible     do not run the node/kubeadm playbook
  --skip-argocd      do not install Argo CD or apply the root app
  --auto-approve     pass -auto-approve to terraform apply (CI); otherwise
                     Terraform asks before changing anything
  --dry-run          print every command of every selected step, run nothing
  -h, --help         show this help

Environment:
  ECO2_ARGOCD_SYNC_TIMEOUT  how long to wait for the root app to sync (default 600s)
USAGE
}

ENV=""
SKIP_TERRAFORM=0
SKIP_ANSIBLE=0
SKIP_ARGOCD=0
AUTO_APPROVE=0

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
    --skip-terraform) SKIP_TERRAFORM=1; shift ;;
    --skip-ansible) SKIP_ANSIBLE=1; shift ;;
    --skip-argocd) SKIP_ARGOCD=1; shift ;;
    --auto-approve) AUTO_APPROVE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

validate_env "${ENV}"

INVENTORY="${ECO2_ANSIBLE_DIR}/inventory/${ENV}/hosts.yml"
KUBECONFIG_PATH="${ECO2_ANSIBLE_DIR}/artifacts/${ENV}/kubeconfig"
SYNC_TIMEOUT="${ECO2_ARGOCD_SYNC_TIMEOUT:-600s}"
export ANSIBLE_CONFIG="${ECO2_ANSIBLE_DIR}/ansible.cfg"

# --- preflight ---------------------------------------------------------------
CURRENT_STEP="preflight"
tools=(terraform)
((SKIP_ANSIBLE && SKIP_ARGOCD)) || tools+=(ansible-playbook)
((SKIP_ARGOCD)) || tools+=(kubectl)
require_tools "${tools[@]}"
[[ -f "${ECO2_TF_DIR}/env/${ENV}.tfvars" ]] || die "step 'preflight' failed: ${ECO2_TF_DIR}/env/${ENV}.tfvars not found"
log "bootstrapping '${ENV}'$( ((DRY_RUN)) && printf ' (dry run: nothing is executed)')"

# --- 1. terraform ------------------------------------------------------------
if ((SKIP_TERRAFORM)); then
  skip_step terraform "--skip-terraform"
else
  begin_step terraform "provision AWS (VPC, nodes, IAM, DNS, buckets)"
  tf_init "${ENV}"
  apply_args=(apply -input=false "-var-file=env/${ENV}.tfvars")
  ((AUTO_APPROVE)) && apply_args+=(-auto-approve)
  tf "${apply_args[@]}"
fi

# --- 2. inventory --------------------------------------------------------------
begin_step inventory "render the Ansible inventory from Terraform output"
# The terraform step already initialised the working directory.
((SKIP_TERRAFORM)) && tf_init "${ENV}"
if ((DRY_RUN)); then
  run terraform -chdir="${ECO2_TF_DIR}" output -raw ansible_inventory
  printf '[dry-run] inventory: write the output above to %s\n' "${INVENTORY}"
else
  mkdir -p "$(dirname "${INVENTORY}")"
  tmp_inventory="$(mktemp "${INVENTORY}.XXXXXX")"
  trap 'rm -f "${tmp_inventory}"' EXIT
  log "inventory: terraform output -raw ansible_inventory > ${INVENTORY}"
  if ! terraform -chdir="${ECO2_TF_DIR}" output -raw ansible_inventory >"${tmp_inventory}"; then
    die "step 'inventory' failed: terraform output -raw ansible_inventory (has the terraform step been applied for '${ENV}'?)"
  fi
  [[ -s "${tmp_inventory}" ]] || die "step 'inventory' failed: terraform returned an empty inventory"
  # Replace atomically so a failed run never leaves half an inventory behind.
  mv "${tmp_inventory}" "${INVENTORY}"
fi

# --- 3. ansible ----------------------------------------------------------------
if ((SKIP_ANSIBLE)); then
  skip_step ansible "--skip-ansible"
else
  begin_step ansible "configure nodes, kubeadm init/join, Calico, node labels"
  run ansible-playbook -i "${INVENTORY}" "${ECO2_ANSIBLE_DIR}/site.yml" --skip-tags argocd
fi

# --- 4. argocd -----------------------------------------------------------------
if ((SKIP_ARGOCD)); then
  skip_step argocd "--skip-argocd"
else
  begin_step argocd "install Argo CD and apply the root application"
  run ansible-playbook -i "${INVENTORY}" "${ECO2_ANSIBLE_DIR}/site.yml" --tags argocd
  run kubectl --kubeconfig "${KUBECONFIG_PATH}" -n argocd wait application/eco2-root \
    --for=jsonpath='{.status.sync.status}'=Synced --timeout="${SYNC_TIMEOUT}"
fi

CURRENT_STEP="done"
log "cluster '${ENV}' bootstrapped$( ((DRY_RUN)) && printf ' (dry run)'); kubeconfig: ${KUBECONFIG_PATH}"
