# Partial S3 backend configuration for dev: terraform init -backend-config=backend/dev.hcl
# Created by the terraform/bootstrap root (see docs/deployment.md).
bucket         = "eco2-terraform-state-dev"
key            = "eco2/terraform.tfstate"
region         = "ap-northeast-2"
dynamodb_table = "eco2-terraform-locks-dev"
encrypt        = true
