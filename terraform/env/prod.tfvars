# prod: same shape as dev, larger instances, one NAT gateway per AZ.
environment        = "prod"
aws_region         = "ap-northeast-2"
availability_zones = ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]
vpc_cidr           = "10.30.0.0/16"
single_nat_gateway = false

domain_name    = "eco2.example.com"
admin_cidrs    = ["203.0.113.0/24"]
ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEco2ProdPlaceholderKeyReplaceMeBeforeApply eco2-prod"

images_bucket_name   = "eco2-prod-images"
oidc_bucket_name     = "eco2-prod-oidc"
backups_bucket_name  = "eco2-prod-pg-backups"
cors_allowed_origins = ["https://eco2.example.com", "https://www.eco2.example.com"]
enable_cloudfront    = true

control_plane_instance_type = "m6i.large"

# 1 control plane + 19 workers = 20 nodes. The data stores run three replicas each with required
# pod anti-affinity (platform/cr/prod), so each needs three nodes of its own.
node_groups = {
  api = {
    count         = 4
    instance_type = "m6i.large"
    labels        = { "eco2.io/role" = "api" }
  }
  worker_storage = {
    count         = 2
    instance_type = "m6i.large"
    labels        = { "eco2.io/role" = "worker-storage" }
  }
  worker_ai = {
    count         = 2
    instance_type = "c6i.xlarge"
    labels        = { "eco2.io/role" = "worker-ai" }
    taints        = [{ key = "eco2.io/role", value = "worker-ai", effect = "NoSchedule" }]
  }
  postgresql = {
    count         = 3
    instance_type = "r6i.large"
    volume_size   = 100
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "postgresql" }
    taints        = [{ key = "eco2.io/data", value = "postgresql", effect = "NoSchedule" }]
  }
  redis = {
    count         = 3
    instance_type = "r6i.large"
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "redis" }
    taints        = [{ key = "eco2.io/data", value = "redis", effect = "NoSchedule" }]
  }
  rabbitmq = {
    count         = 3
    instance_type = "m6i.large"
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "rabbitmq" }
    taints        = [{ key = "eco2.io/data", value = "rabbitmq", effect = "NoSchedule" }]
  }
  monitoring = {
    count         = 1
    instance_type = "m6i.xlarge"
    volume_size   = 100
    labels        = { "eco2.io/role" = "monitoring" }
    taints        = [{ key = "eco2.io/role", value = "monitoring", effect = "NoSchedule" }]
  }
  ingress = {
    count         = 1
    instance_type = "m6i.large"
    labels        = { "eco2.io/role" = "ingress" }
  }
}
