output "backend_config" {
  description = "Contents for backend/<environment>.hcl."
  value       = <<-EOT
    bucket         = "${module.state_backend.bucket}"
    key            = "eco2/terraform.tfstate"
    region         = "${var.aws_region}"
    dynamodb_table = "${module.state_backend.dynamodb_table}"
    encrypt        = true
  EOT
}
