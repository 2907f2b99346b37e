variable "bucket_name" {
  description = "Globally unique name of the images bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "cors_allowed_origins" {
  description = "Client origins allowed to PUT images straight to the bucket with presigned URLs."
  type        = list(string)

  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : can(regex("^https?://[^/]+$", o))])
    error_message = "Each origin must be scheme://host[:port] with no path or trailing slash (browsers compare origins exactly)."
  }
}

variable "transition_to_ia_days" {
  description = "Days after which objects move to STANDARD_IA."
  type        = number
  default     = 30
}

variable "expiration_days" {
  description = "Days after which uploaded images are deleted."
  type        = number
  default     = 90

  validation {
    condition     = var.expiration_days > 0
    error_message = "expiration_days must be positive."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket. Only for environments whose images are disposable (dev)."
  type        = bool
  default     = false
}

variable "enable_cloudfront" {
  description = "Serve images through CloudFront with Origin Access Control (HTTPS only). Off only where CloudFront is unavailable (the emulator in tests)."
  type        = bool
  default     = true
}

variable "cloudfront_domain_name" {
  description = "Custom domain for the distribution (e.g. images.example.com); null uses the *.cloudfront.net name."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Hosted zone for the custom domain's alias record and its certificate validation."
  type        = string
  default     = null
}

variable "cloudfront_price_class" {
  description = "CloudFront price class; PriceClass_200 covers Korea without paying for every edge."
  type        = string
  default     = "PriceClass_200"

  validation {
    condition     = contains(["PriceClass_All", "PriceClass_200", "PriceClass_100"], var.cloudfront_price_class)
    error_message = "cloudfront_price_class must be PriceClass_All, PriceClass_200 or PriceClass_100."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
