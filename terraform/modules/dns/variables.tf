variable "zone_id" {
  description = "Route53 hosted zone that holds the environment's records."
  type        = string
}

variable "certificate_domain" {
  description = "Primary name of the regional ACM certificate the ALB terminates TLS with (e.g. dev.example.com)."
  type        = string
}

variable "certificate_sans" {
  description = "Extra names on the certificate; a wildcard covers every service host the ingress serves."
  type        = list(string)
  default     = []
}

variable "a_records" {
  description = "Plain A records to create, FQDN => IPv4 (the Kubernetes API and bastion elastic IPs)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for ip in values(var.a_records) : can(cidrhost("${ip}/32", 0))])
    error_message = "Every a_records value must be an IPv4 address."
  }
}

variable "record_ttl" {
  description = "TTL in seconds of the A records."
  type        = number
  default     = 300
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
