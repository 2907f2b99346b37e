variable "prefix" {
  description = "Path prefix of every parameter, e.g. /eco2/dev. External Secrets reads <prefix>/<service>/<key>."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+[^/]$", var.prefix))
    error_message = "prefix must start with / and must not end with /."
  }
}

variable "secrets" {
  description = "Secret keys per service, e.g. { auth = [\"jwt-private-key\"] }. Values are set out of band, never in Terraform."
  type        = map(list(string))

  validation {
    condition = alltrue(flatten([
      for svc, keys in var.secrets : [for k in keys : can(regex("^[a-z0-9-]+$", svc)) && can(regex("^[a-z0-9-]+$", k))]
    ]))
    error_message = "Service names and secret keys must be lowercase kebab-case (they become SSM path segments and Kubernetes keys)."
  }
}

variable "kms_key_id" {
  description = "KMS key for the SecureStrings; null uses the account's aws/ssm key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
