variable "name" {
  description = "Name prefix for every resource in this VPC (e.g. eco2-dev)."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. Must not overlap the Calico pod CIDR or the service CIDR used by kubeadm."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr_block, 0))
    error_message = "cidr_block must be a valid IPv4 CIDR such as 10.20.0.0/16."
  }
}

variable "availability_zones" {
  description = "AZs to spread subnets over; one public and one private subnet is created per AZ."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "At least two availability zones are required (the ALB needs subnets in two AZs)."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all private subnets (cheaper, dev) instead of one per AZ (prod, survives an AZ loss)."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "Kubernetes cluster name; subnets are tagged kubernetes.io/cluster/<name> so the AWS Load Balancer Controller can discover them."
  type        = string
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
