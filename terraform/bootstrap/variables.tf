variable "aws_region" {
  description = "Region of the state bucket and lock table."
  type        = string
  default     = "ap-northeast-2"
}

variable "environment" {
  description = "Environment whose state this backend holds."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "state_bucket_name" {
  description = "State bucket name; must match bucket in backend/<environment>.hcl."
  type        = string
}

variable "lock_table_name" {
  description = "Lock table name; must match dynamodb_table in backend/<environment>.hcl."
  type        = string
  default     = "eco2-terraform-locks"
}
