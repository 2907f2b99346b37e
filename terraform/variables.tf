variable "environment" {
  description = "Deployment environment; also the Terraform workspace name."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "aws_region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "ap-northeast-2"
}

variable "availability_zones" {
  description = "AZs for subnets; nodes are spread over them."
  type        = list(string)
  default     = ["ap-northeast-2a", "ap-northeast-2c"]
}

variable "vpc_cidr" {
  description = "VPC CIDR. Must not overlap pod_cidr or service_cidr."
  type        = string
  default     = "10.20.0.0/16"
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (dev) instead of one per AZ (prod)."
  type        = bool
  default     = true
}

variable "calico_encapsulation" {
  description = "Calico encapsulation (IPIP or VXLAN); opens the matching port between nodes and is passed to the cni role through the inventory."
  type        = string
  default     = "IPIP"
}

variable "pod_cidr" {
  description = "Calico IP pool / kubeadm podSubnet."
  type        = string
  default     = "192.168.0.0/16"

  validation {
    condition     = can(cidrhost(var.pod_cidr, 0))
    error_message = "pod_cidr must be a valid IPv4 CIDR."
  }
}

variable "service_cidr" {
  description = "kubeadm serviceSubnet."
  type        = string
  default     = "10.96.0.0/12"

  validation {
    condition     = can(cidrhost(var.service_cidr, 0))
    error_message = "service_cidr must be a valid IPv4 CIDR."
  }
}

variable "domain_name" {
  description = "Existing Route53 public hosted zone (e.g. eco2.example.com). It is looked up, not created, because the registrar delegation is done once by hand."
  type        = string
}

variable "admin_cidrs" {
  description = "Operator/CI CIDRs allowed to SSH to the bastion and reach the Kubernetes API."
  type        = list(string)
}

variable "ssh_public_key" {
  description = "OpenSSH public key for the nodes' default user (Ansible's key)."
  type        = string
}

variable "ami_id" {
  description = "AMI for all instances; null picks the latest Canonical Ubuntu 22.04 image."
  type        = string
  default     = null
}

variable "bastion_instance_type" {
  description = "Instance type of the bastion."
  type        = string
  default     = "t3.micro"
}

variable "control_plane_instance_type" {
  description = "Instance type of the control plane."
  type        = string
  default     = "t3.large"
}

variable "node_groups" {
  description = "Worker groups (Ansible group name => count, instance type, Kubernetes labels and taints). See modules/ec2."
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
}

variable "images_bucket_name" {
  description = "Globally unique name of the images bucket."
  type        = string
}

variable "oidc_bucket_name" {
  description = "Globally unique name of the bucket hosting the IRSA OIDC discovery documents."
  type        = string
}

variable "cors_allowed_origins" {
  description = "Web client origins allowed to upload images with presigned PUTs."
  type        = list(string)
}

variable "backups_bucket_name" {
  description = "Globally unique name of the PostgreSQL backup bucket (WAL archive + base backups)."
  type        = string
}

variable "backups_force_destroy" {
  description = "Allow terraform destroy to empty and delete the backup bucket (dev only)."
  type        = bool
  default     = false
}

variable "images_force_destroy" {
  description = "Allow terraform destroy to empty and delete the images bucket (dev only; prod keeps user uploads)."
  type        = bool
  default     = false
}

variable "enable_cloudfront" {
  description = "Put CloudFront (OAC, HTTPS only) in front of the images bucket."
  type        = bool
  default     = true
}

variable "images_subdomain" {
  description = "Host label of the CloudFront custom domain under domain_name; null keeps the *.cloudfront.net name."
  type        = string
  default     = "images"
}

variable "extra_tags" {
  description = "Extra tags added to every resource."
  type        = map(string)
  default     = {}
}
