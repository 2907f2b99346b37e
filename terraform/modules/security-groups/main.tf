resource "aws_security_group" "bastion" {
  name        = "${var.name}-bastion"
  description = "SSH entry point for Ansible; the only host with port 22 open to operators"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-bastion" })
}

resource "aws_security_group" "control_plane" {
  name        = "${var.name}-control-plane"
  description = "Kubernetes control plane (API server, etcd, scheduler, controller-manager)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-control-plane" })
}

resource "aws_security_group" "workers" {
  name        = "${var.name}-workers"
  description = "Kubernetes worker nodes"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-workers" })
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Public ALB managed by the AWS Load Balancer Controller (attached via ingress annotation)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })
}

locals {
  node_sgs = {
    control_plane = aws_security_group.control_plane.id
    workers       = aws_security_group.workers.id
  }

  # Traffic every node must accept from every other node (both directions,
  # control plane <-> workers and within each group). Calico's BGP (179),
  # Typha (5473) and the encapsulation are here because a missing one of them
  # is the classic "pods on different nodes cannot talk" failure. BGP stays
  # open in VXLAN mode too so switching back to IPIP needs no SG change first.
  encapsulation_ports = {
    IPIP  = { ipip = { protocol = "4", from = null, to = null, description = "Calico IP-in-IP encapsulated pod traffic" } }
    VXLAN = { vxlan = { protocol = "udp", from = 4789, to = 4789, description = "Calico VXLAN encapsulated pod traffic" } }
  }

  node_mesh_ports = merge({
    kubelet = { protocol = "tcp", from = 10250, to = 10250, description = "kubelet API (logs, exec, metrics-server)" }
    bgp     = { protocol = "tcp", from = 179, to = 179, description = "Calico BGP peering" }
    typha   = { protocol = "tcp", from = 5473, to = 5473, description = "Calico Typha (felix -> typha)" }
  }, local.encapsulation_ports[var.calico_encapsulation])

  node_mesh_rules = merge([
    for dst_name, dst_id in local.node_sgs : merge([
      for src_name, src_id in local.node_sgs : {
        for port_name, port in local.node_mesh_ports :
        "${dst_name}-${port_name}-from-${src_name}" => merge(port, { sg = dst_id, source_sg = src_id })
      }
    ]...)
  ]...)

  control_plane_rules = {
    api-from-workers  = { protocol = "tcp", from = 6443, to = 6443, source_sg = aws_security_group.workers.id, description = "API server from kubelets and pods" }
    api-from-self     = { protocol = "tcp", from = 6443, to = 6443, source_sg = aws_security_group.control_plane.id, description = "API server from control plane components" }
    etcd-from-self    = { protocol = "tcp", from = 2379, to = 2380, source_sg = aws_security_group.control_plane.id, description = "etcd client and peer" }
    cm-sched-from-wkr = { protocol = "tcp", from = 10257, to = 10259, source_sg = aws_security_group.workers.id, description = "controller-manager/scheduler metrics for Prometheus on the monitoring node" }
    ssh-from-bastion  = { protocol = "tcp", from = 22, to = 22, source_sg = aws_security_group.bastion.id, description = "Ansible via the bastion" }
  }

  worker_rules = {
    ssh-from-bastion = { protocol = "tcp", from = 22, to = 22, source_sg = aws_security_group.bastion.id, description = "Ansible via the bastion" }
    nodeport-from-alb = {
      protocol    = "tcp"
      from        = var.nodeport_range.from
      to          = var.nodeport_range.to
      source_sg   = aws_security_group.alb.id
      description = "NodePort targets of the ALB (instance target type); nothing else may reach this range"
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "node_mesh" {
  for_each = local.node_mesh_rules

  security_group_id            = each.value.sg
  referenced_security_group_id = each.value.source_sg
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  description                  = each.value.description
}

resource "aws_vpc_security_group_ingress_rule" "control_plane" {
  for_each = local.control_plane_rules

  security_group_id            = aws_security_group.control_plane.id
  referenced_security_group_id = each.value.source_sg
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  description                  = each.value.description
}

resource "aws_vpc_security_group_ingress_rule" "api_from_admins" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.control_plane.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443
  description       = "kubectl / Argo CD bootstrap from operators"
}

resource "aws_vpc_security_group_ingress_rule" "workers" {
  for_each = local.worker_rules

  security_group_id            = aws_security_group.workers.id
  referenced_security_group_id = each.value.source_sg
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  description                  = each.value.description
}

resource "aws_vpc_security_group_ingress_rule" "bastion_ssh" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.bastion.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  description       = "SSH from operators"
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = { for pair in setproduct(var.ingress_cidrs, [80, 443]) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value[0]
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
  description       = "Public HTTP(S); HTTP only to redirect to HTTPS"
}

# The ALB may only talk to the NodePort range on workers, which keeps a
# misconfigured target group from reaching anything else.
resource "aws_vpc_security_group_egress_rule" "alb_to_nodeports" {
  security_group_id            = aws_security_group.alb.id
  referenced_security_group_id = aws_security_group.workers.id
  ip_protocol                  = "tcp"
  from_port                    = var.nodeport_range.from
  to_port                      = var.nodeport_range.to
  description                  = "ALB to NodePort targets"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  for_each = {
    bastion       = aws_security_group.bastion.id
    control_plane = aws_security_group.control_plane.id
    workers       = aws_security_group.workers.id
  }

  security_group_id = each.value
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "Package mirrors, container registries and AWS APIs (through NAT for private nodes)"
}
