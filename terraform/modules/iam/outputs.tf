output "control_plane_instance_profile" {
  description = "Instance profile name for the control plane."
  value       = aws_iam_instance_profile.node["control-plane"].name
}

output "worker_instance_profile" {
  description = "Instance profile name for workers."
  value       = aws_iam_instance_profile.node["worker"].name
}

output "oidc_issuer_url" {
  description = "Service-account token issuer; kubeadm passes it to the API server as --service-account-issuer."
  value       = "https://${local.oidc_issuer_host}"
}

output "oidc_bucket" {
  description = "Bucket where the Ansible kubernetes role publishes the OIDC discovery document and JWKS."
  value       = aws_s3_bucket.oidc.bucket
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC identity provider."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "irsa_role_arns" {
  description = "IRSA role ARN per controller; goes into the eks.amazonaws.com/role-arn annotation of each service account."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}
