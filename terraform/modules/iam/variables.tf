variable "name" {
  description = "Name prefix for roles and profiles (e.g. eco2-dev)."
  type        = string
}

variable "oidc_bucket_name" {
  description = "Globally unique S3 bucket name that hosts the cluster's OIDC discovery document and JWKS (the IRSA issuer)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.oidc_bucket_name))
    error_message = "oidc_bucket_name must be a valid S3 bucket name."
  }
}

variable "oidc_thumbprints" {
  description = "Server certificate thumbprints of the issuer host. IAM ignores them for S3-hosted issuers (trusted CA), but the API still wants at least one."
  type        = list(string)
  default     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

variable "route53_zone_arn" {
  description = "ARN of the hosted zone ExternalDNS may change."
  type        = string
}

variable "ssm_parameter_prefix" {
  description = "SSM path prefix (e.g. /eco2/dev) that External Secrets may read."
  type        = string

  validation {
    condition     = startswith(var.ssm_parameter_prefix, "/") && !endswith(var.ssm_parameter_prefix, "/")
    error_message = "ssm_parameter_prefix must start with / and must not end with /."
  }
}

variable "images_bucket_arn" {
  description = "ARN of the images bucket; only the images IRSA role (images_service_accounts) may read and write it."
  type        = string
}

variable "backups_bucket_arn" {
  description = "ARN of the PostgreSQL backup bucket; only the postgres cluster's IRSA role may read and write it."
  type        = string
}

variable "irsa_service_accounts" {
  description = "Kubernetes service accounts (namespace/name) that assume each IRSA role. Must match the Helm values in the workloads layer."
  type = object({
    aws_load_balancer_controller = string
    external_dns                 = string
    external_secrets             = string
    ebs_csi_driver               = string
    postgres_backup              = string
    postgres_restore             = string
  })
  default = {
    aws_load_balancer_controller = "kube-system/aws-load-balancer-controller"
    external_dns                 = "external-dns/external-dns"
    external_secrets             = "external-secrets/external-secrets"
    ebs_csi_driver               = "kube-system/ebs-csi-controller-sa"
    # CloudNativePG runs every instance of a Cluster as a service account named after it.
    postgres_backup = "postgres/eco2-postgres"
    # The point-in-time recovery cluster (platform/cr/recovery) reads the same bucket.
    postgres_restore = "postgres/eco2-postgres-restore"
  }
}

variable "images_service_accounts" {
  description = "Kubernetes service accounts (namespace/name) of the pods that read and write the images bucket; they share the images IRSA role. Must match the domain Deployments that set IMAGE_S3_BUCKET."
  type        = list(string)
  default = [
    "image/image",
    "image/image-consumers",
    "scan/scan",
    "scan/scan-consumers",
    "scan/scan-worker",
  ]
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
