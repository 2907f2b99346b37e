variable "name" {
  description = "Name prefix for the security groups (e.g. eco2-dev)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the security groups belong to."
  type        = string
}

variable "admin_cidrs" {
  description = "CIDRs allowed to reach the bastion over SSH and the Kubernetes API on 6443 (operators, CI runners)."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0 && alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0))])
    error_message = "admin_cidrs needs at least one valid IPv4 CIDR; 0.0.0.0/0 is accepted but should only be used for throw-away test clusters."
  }
}

variable "ingress_cidrs" {
  description = "CIDRs allowed to reach the public ALB on 80/443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "nodeport_range" {
  description = "Kubernetes NodePort range; the ALB forwards to NodePort targets, so only it may reach this range on workers."
  type = object({
    from = number
    to   = number
  })
  default = { from = 30000, to = 32767 }

  validation {
    condition     = var.nodeport_range.from <= var.nodeport_range.to && var.nodeport_range.from >= 1024
    error_message = "nodeport_range.from must be >= 1024 and not greater than nodeport_range.to."
  }
}

variable "calico_encapsulation" {
  description = "Calico's encapsulation for pod traffic between nodes: IPIP (IP protocol 4, routes exchanged over BGP) or VXLAN (UDP 4789). Decides which of the two is opened between nodes; must match the cni role."
  type        = string
  default     = "IPIP"

  validation {
    condition     = contains(["IPIP", "VXLAN"], var.calico_encapsulation)
    error_message = "calico_encapsulation must be IPIP or VXLAN."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
