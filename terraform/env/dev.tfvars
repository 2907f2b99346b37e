# dev: the full 14-node shape on smaller instances and one NAT gateway.
environment        = "dev"
aws_region         = "ap-northeast-2"
availability_zones = ["ap-northeast-2a", "ap-northeast-2c"]
vpc_cidr           = "10.20.0.0/16"
single_nat_gateway = true

domain_name = "eco2.example.com"
# Replace with the operators' egress CIDRs before the first apply.
admin_cidrs    = ["203.0.113.0/24"]
ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEco2DevPlaceholderKeyReplaceMeBeforeApplyX eco2-dev"

images_bucket_name    = "eco2-dev-images"
oidc_bucket_name      = "eco2-dev-oidc"
backups_bucket_name   = "eco2-dev-pg-backups"
backups_force_destroy = true
cors_allowed_origins  = ["https://dev.eco2.example.com", "http://localhost:5173", "https://localhost:5173"]
enable_cloudfront     = true
images_force_destroy  = true

control_plane_instance_type = "t3.large"

# 1 control plane + 13 workers = 14 nodes.
node_groups = {
  api = {
    count         = 4
    instance_type = "t3.medium"
    labels        = { "eco2.io/role" = "api" }
  }
  worker_storage = {
    count         = 2
    instance_type = "t3.medium"
    labels        = { "eco2.io/role" = "worker-storage" }
  }
  worker_ai = {
    count         = 2
    instance_type = "t3.large"
    labels        = { "eco2.io/role" = "worker-ai" }
    taints        = [{ key = "eco2.io/role", value = "worker-ai", effect = "NoSchedule" }]
  }
  postgresql = {
    count         = 1
    instance_type = "t3.large"
    volume_size   = 50
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "postgresql" }
    taints        = [{ key = "eco2.io/data", value = "postgresql", effect = "NoSchedule" }]
  }
  redis = {
    count         = 1
    instance_type = "t3.medium"
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "redis" }
    taints        = [{ key = "eco2.io/data", value = "redis", effect = "NoSchedule" }]
  }
  rabbitmq = {
    count         = 1
    instance_type = "t3.medium"
    labels        = { "eco2.io/role" = "data", "eco2.io/data" = "rabbitmq" }
    taints        = [{ key = "eco2.io/data", value = "rabbitmq", effect = "NoSchedule" }]
  }
  monitoring = {
    count         = 1
    instance_type = "t3.large"
    volume_size   = 50
    labels        = { "eco2.io/role" = "monitoring" }
    taints        = [{ key = "eco2.io/role", value = "monitoring", effect = "NoSchedule" }]
  }
  ingress = {
    count         = 1
    instance_type = "t3.medium"
    labels        = { "eco2.io/role" = "ingress" }
  }
}
