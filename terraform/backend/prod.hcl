# Partial S3 backend configuration for prod: terraform init -backend-config=backend/prod.hcl
# Created by the terraform/bootstrap root (see docs/deployment.md).
bucket         = "eco2-terraform-state-prod"
key            = "eco2/terraform.tfstate"
region         = "ap-northeast-2"
dynamodb_table = "eco2-terraform-locks-prod"
encrypt        = true
