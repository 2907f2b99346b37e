variable "bucket_name" {
  description = "Globally unique name of the PostgreSQL backup bucket (base backups + WAL archive)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept before it expires (a safety net beyond CloudNativePG's own retention)."
  type        = number
  default     = 14

  validation {
    condition     = var.noncurrent_version_days > 0
    error_message = "noncurrent_version_days must be positive."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket (dev only; prod backups outlive the cluster)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
