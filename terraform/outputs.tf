output "ansible_inventory" {
  description = "Ansible inventory (YAML) of every node with its group, labels and taints; the bootstrap script writes it to ansible/inventory/<env>/hosts.yml."
  value       = yamlencode(local.inventory)
}

output "bastion_public_ip" {
  description = "Bastion elastic IP."
  value       = module.nodes.bastion_public_ip
}

output "api_endpoint" {
  description = "DNS name of the Kubernetes API (control plane elastic IP)."
  value       = local.api_fqdn
}

output "vpc_id" {
  description = "VPC ID (AWS Load Balancer Controller --aws-vpc-id)."
  value       = module.vpc.vpc_id
}

output "alb_security_group_id" {
  description = "Security group for the ALB ingress annotation."
  value       = module.security_groups.alb_sg_id
}

output "certificate_arn" {
  description = "ACM certificate for the ALB listener."
  value       = module.dns.certificate_arn
}

output "irsa_role_arns" {
  description = "IRSA role ARNs for the controllers' service accounts."
  value       = module.iam.irsa_role_arns
}

output "images_bucket" {
  description = "Images bucket name."
  value       = module.images.bucket_name
}

output "images_public_base_url" {
  description = "CloudFront base URL for images (null when CloudFront is off)."
  value       = module.images.public_base_url
}

output "ssm_parameter_names" {
  description = "SecureString parameters External Secrets reads."
  value       = module.secrets.parameter_names
}

output "backups_bucket" {
  description = "PostgreSQL backup bucket (platform/cr postgres destinationPath)."
  value       = module.backups.bucket_name
}
