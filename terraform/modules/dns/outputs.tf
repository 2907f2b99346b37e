output "certificate_arn" {
  description = "ARN of the validated certificate (for the ALB ingress annotation alb.ingress.kubernetes.io/certificate-arn)."
  value       = aws_acm_certificate_validation.this.certificate_arn
}

output "record_fqdns" {
  description = "FQDNs of the A records created."
  value       = [for r in aws_route53_record.a : r.fqdn]
}
