locals {
  name         = "eco2-${var.environment}"
  cluster_name = "eco2-${var.environment}"
  env_domain   = "${var.environment}.${var.domain_name}"
  api_fqdn     = "k8s.${local.env_domain}"
  bastion_fqdn = "bastion.${local.env_domain}"
  ssm_prefix   = "/eco2/${var.environment}"

  tags = merge(var.extra_tags, {
    Project     = "eco2"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

# Planning prod variables against the dev workspace (or the other way round)
# would replace one environment with the other; stop before any resource.
resource "terraform_data" "workspace_guard" {
  input = terraform.workspace

  lifecycle {
    precondition {
      condition     = terraform.workspace == var.environment
      error_message = "Workspace '${terraform.workspace}' does not match environment '${var.environment}': run `terraform workspace select ${var.environment}`."
    }
  }
}

data "aws_route53_zone" "main" {
  name         = var.domain_name
  private_zone = false
}

module "vpc" {
  source = "./modules/vpc"

  name               = local.name
  cluster_name       = local.cluster_name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
}

module "security_groups" {
  source = "./modules/security-groups"

  name                 = local.name
  vpc_id               = module.vpc.vpc_id
  admin_cidrs          = var.admin_cidrs
  calico_encapsulation = var.calico_encapsulation
}

module "images" {
  source = "./modules/s3-images"
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  bucket_name          = var.images_bucket_name
  cors_allowed_origins = var.cors_allowed_origins
  force_destroy        = var.images_force_destroy
  enable_cloudfront    = var.enable_cloudfront
  # Per environment (images.dev.<domain>, images.prod.<domain>): one alias can belong to one
  # distribution only, so a shared name would make the second environment's apply fail.
  cloudfront_domain_name = var.images_subdomain == null ? null : "${var.images_subdomain}.${local.env_domain}"
  route53_zone_id        = data.aws_route53_zone.main.zone_id
}

module "backups" {
  source = "./modules/s3-backups"

  bucket_name   = var.backups_bucket_name
  force_destroy = var.backups_force_destroy
}

module "iam" {
  source = "./modules/iam"

  name                 = local.name
  oidc_bucket_name     = var.oidc_bucket_name
  route53_zone_arn     = data.aws_route53_zone.main.arn
  ssm_parameter_prefix = local.ssm_prefix
  images_bucket_arn    = module.images.bucket_arn
  backups_bucket_arn   = module.backups.bucket_arn
}

module "nodes" {
  source = "./modules/ec2"

  name                           = local.name
  cluster_name                   = local.cluster_name
  ami_id                         = var.ami_id
  ssh_public_key                 = var.ssh_public_key
  public_subnet_ids              = module.vpc.public_subnet_ids
  private_subnet_ids             = module.vpc.private_subnet_ids
  bastion_sg_id                  = module.security_groups.bastion_sg_id
  control_plane_sg_id            = module.security_groups.control_plane_sg_id
  workers_sg_id                  = module.security_groups.workers_sg_id
  control_plane_instance_profile = module.iam.control_plane_instance_profile
  worker_instance_profile        = module.iam.worker_instance_profile
  bastion_instance_type          = var.bastion_instance_type
  control_plane_instance_type    = var.control_plane_instance_type
  node_groups                    = var.node_groups

  depends_on = [terraform_data.workspace_guard]
}

module "dns" {
  source = "./modules/dns"

  zone_id            = data.aws_route53_zone.main.zone_id
  certificate_domain = local.env_domain
  certificate_sans   = ["*.${local.env_domain}"]
  a_records = {
    (local.api_fqdn)     = module.nodes.control_plane.public_ip
    (local.bastion_fqdn) = module.nodes.bastion_public_ip
  }
}

module "secrets" {
  source = "./modules/ssm-parameters"

  prefix = local.ssm_prefix
  # Exactly the keys the ExternalSecrets in workloads/secrets read, no more (tests/deploy/test_chains.py
  # compares the two both ways); scripts/deployment/scaffold_domain.py adds a new service's keys here.
  secrets = jsondecode(file("${path.module}/ssm-parameters.json"))
}

locals {
  # The Ansible inventory, built as data and YAML-encoded so quoting and
  # indentation can never produce an inventory Ansible misreads.
  inventory = {
    all = {
      vars = {
        eco2_environment          = var.environment
        eco2_cluster_name         = local.cluster_name
        eco2_aws_region           = var.aws_region
        eco2_api_endpoint         = local.api_fqdn
        eco2_api_public_ip        = module.nodes.control_plane.public_ip
        eco2_pod_cidr             = var.pod_cidr
        eco2_calico_encapsulation = var.calico_encapsulation
        eco2_service_cidr         = var.service_cidr
        eco2_oidc_issuer_url      = module.iam.oidc_issuer_url
        eco2_oidc_bucket          = module.iam.oidc_bucket
        eco2_irsa_role_arns       = module.iam.irsa_role_arns
        eco2_images_bucket        = module.images.bucket_name
        eco2_certificate_arn      = module.dns.certificate_arn
        eco2_alb_security_group   = module.security_groups.alb_sg_id
        ansible_user              = "ubuntu"
        ansible_ssh_common_args   = "-o ProxyJump=ubuntu@${module.nodes.bastion_public_ip} -o StrictHostKeyChecking=accept-new"
      }
      children = {
        k8s_cluster = {
          children = {
            control_plane = {
              hosts = {
                (module.nodes.control_plane.name) = {
                  ansible_host = module.nodes.control_plane.private_ip
                  provider_id  = module.nodes.control_plane.provider_id
                  node_labels  = { "eco2.io/role" = "control-plane" }
                  node_taints  = []
                }
              }
            }
            workers = {
              children = {
                for group in keys(var.node_groups) : group => {
                  hosts = {
                    for host, w in module.nodes.workers : host => {
                      ansible_host = w.private_ip
                      provider_id  = w.provider_id
                      node_labels  = w.labels
                      node_taints  = w.taints
                    } if w.group == group
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
