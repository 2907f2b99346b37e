variable "bucket_name" {
  description = "Globally unique name of the Terraform state bucket for one environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "lock_table_name" {
  description = "Name of the DynamoDB table Terraform uses for state locking."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days to keep superseded state versions (the undo history for a bad apply)."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
