terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: each environment's bucket/table come from
  # backend/<env>.hcl at init time, so dev and prod never share state.
  backend "s3" {}
}
