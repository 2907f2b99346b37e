output "bastion_sg_id" {
  description = "Security group of the bastion host."
  value       = aws_security_group.bastion.id
}

output "control_plane_sg_id" {
  description = "Security group of the control plane node(s)."
  value       = aws_security_group.control_plane.id
}

output "workers_sg_id" {
  description = "Security group of the worker nodes."
  value       = aws_security_group.workers.id
}

output "alb_sg_id" {
  description = "Security group to attach to the ALB (alb.ingress.kubernetes.io/security-groups annotation)."
  value       = aws_security_group.alb.id
}
