variable "name" {
  description = "Name prefix for instances (e.g. eco2-dev)."
  type        = string
}

variable "cluster_name" {
  description = "Kubernetes cluster name, tagged on every node so cloud controllers can find them."
  type        = string
}

variable "ami_id" {
  description = "AMI for every instance. null looks up the latest Ubuntu 22.04 LTS (amd64) published by Canonical."
  type        = string
  default     = null
}

variable "ssh_public_key" {
  description = "OpenSSH public key installed for the default user; Ansible connects with the matching private key."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) ", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256)."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets: the bastion and the control plane (API reachable from admin CIDRs) live here."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets the workers are spread over, round-robin."
  type        = list(string)
}

variable "bastion_sg_id" {
  description = "Security group of the bastion."
  type        = string
}

variable "control_plane_sg_id" {
  description = "Security group of the control plane."
  type        = string
}

variable "workers_sg_id" {
  description = "Security group of the workers."
  type        = string
}

variable "control_plane_instance_profile" {
  description = "IAM instance profile name for the control plane."
  type        = string
}

variable "worker_instance_profile" {
  description = "IAM instance profile name for the workers."
  type        = string
}

variable "bastion_instance_type" {
  description = "Instance type of the bastion (only forwards SSH)."
  type        = string
  default     = "t3.micro"
}

variable "control_plane_instance_type" {
  description = "Instance type of the single control plane node (kubeadm needs >= 2 vCPU, 2 GiB)."
  type        = string
  default     = "t3.medium"
}

variable "control_plane_volume_size" {
  description = "Root volume of the control plane in GiB (etcd lives here)."
  type        = number
  default     = 40
}

variable "node_groups" {
  description = <<-EOT
    Worker groups keyed by their Ansible group name. Each group gets `count`
    instances of `instance_type`; `labels` and `taints` are applied to the
    Kubernetes node by the node_labels Ansible role so workloads land on the
    nodes their nodeSelector/tolerations expect.
  EOT
  type = map(object({
    count         = number
    instance_type = string
    volume_size   = optional(number, 30)
    labels        = map(string)
    taints = optional(list(object({
      key    = string
      value  = string
      effect = string
    })), [])
  }))

  validation {
    condition     = alltrue([for k, g in var.node_groups : can(regex("^[a-z][a-z0-9_]*$", k)) && g.count >= 0])
    error_message = "node_groups keys must be valid Ansible group names (lowercase, digits, underscore) and counts must be >= 0."
  }

  validation {
    condition = alltrue(flatten([
      for g in values(var.node_groups) : [for t in g.taints : contains(["NoSchedule", "PreferNoSchedule", "NoExecute"], t.effect)]
    ]))
    error_message = "Taint effect must be NoSchedule, PreferNoSchedule or NoExecute."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
