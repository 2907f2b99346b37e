data "aws_ami" "ubuntu" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id

  # One entry per worker instance, e.g. "api-1" => {...}; the stable key keeps
  # scaling a group from replacing the instances of another group.
  workers = merge([
    for group, spec in var.node_groups : {
      for i in range(spec.count) : "${group}-${i + 1}" => {
        group         = group
        index         = i
        instance_type = spec.instance_type
        volume_size   = spec.volume_size
        labels        = spec.labels
        taints        = spec.taints
      }
    }
  ]...)

  # Metadata hop limit 2: the EBS CSI node plugin reads instance identity
  # from IMDS inside a pod (one extra hop). Tokens are still required.
  metadata_hop_limit = 2
}

resource "aws_key_pair" "this" {
  key_name   = "${var.name}-nodes"
  public_key = var.ssh_public_key
  tags       = var.tags
}

resource "aws_instance" "bastion" {
  ami                         = local.ami_id
  instance_type               = var.bastion_instance_type
  subnet_id                   = var.public_subnet_ids[0]
  vpc_security_group_ids      = [var.bastion_sg_id]
  key_name                    = aws_key_pair.this.key_name
  associate_public_ip_address = true

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 10
    encrypted   = true
  }

  tags = merge(var.tags, { Name = "${var.name}-bastion", Role = "bastion" })

  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_eip" "bastion" {
  domain   = "vpc"
  instance = aws_instance.bastion.id
  tags     = merge(var.tags, { Name = "${var.name}-bastion" })
}

resource "aws_instance" "control_plane" {
  ami                         = local.ami_id
  instance_type               = var.control_plane_instance_type
  subnet_id                   = var.public_subnet_ids[0]
  vpc_security_group_ids      = [var.control_plane_sg_id]
  key_name                    = aws_key_pair.this.key_name
  iam_instance_profile        = var.control_plane_instance_profile
  associate_public_ip_address = true
  # Calico routes pod traffic natively inside a subnet (IPIP CrossSubnet);
  # AWS drops packets whose source is a pod IP unless this check is off.
  source_dest_check = false

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = local.metadata_hop_limit
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.control_plane_volume_size
    encrypted   = true
  }

  tags = merge(var.tags, {
    Name                                        = "${var.name}-control-plane-1"
    Role                                        = "control-plane"
    "kubernetes.io/cluster/${var.cluster_name}" = "owned"
  })

  lifecycle {
    # A new AMI must never silently replace the only control plane (and etcd).
    ignore_changes = [ami]
  }
}

resource "aws_eip" "control_plane" {
  domain   = "vpc"
  instance = aws_instance.control_plane.id
  tags     = merge(var.tags, { Name = "${var.name}-control-plane-1" })
}

resource "aws_instance" "worker" {
  for_each = local.workers

  ami                    = local.ami_id
  instance_type          = each.value.instance_type
  subnet_id              = var.private_subnet_ids[each.value.index % length(var.private_subnet_ids)]
  vpc_security_group_ids = [var.workers_sg_id]
  key_name               = aws_key_pair.this.key_name
  iam_instance_profile   = var.worker_instance_profile
  source_dest_check      = false

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = local.metadata_hop_limit
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = each.value.volume_size
    encrypted   = true
  }

  tags = merge(var.tags, {
    Name                                        = "${var.name}-${replace(each.key, "_", "-")}"
    Role                                        = each.value.group
    "kubernetes.io/cluster/${var.cluster_name}" = "owned"
  })

  lifecycle {
    ignore_changes = [ami]
  }
}
