terraform {
  required_version = ">= 1.6.0"

  # Local state on purpose: this root creates the remote backend everything
  # else uses, so it cannot live in it. Keep terraform.tfstate of this root
  # somewhere safe (it only holds a bucket and a table).
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "eco2"
      Environment = var.environment
      ManagedBy   = "terraform"
      Stack       = "state-backend"
    }
  }
}
