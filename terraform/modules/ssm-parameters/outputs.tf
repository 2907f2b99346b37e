output "parameter_names" {
  description = "Full names of the SecureString parameters, for the ExternalSecret manifests."
  value       = sort([for p in aws_ssm_parameter.secret : p.name])
}
