output "bastion_public_ip" {
  description = "Elastic IP of the bastion (Ansible's ProxyJump host)."
  value       = aws_eip.bastion.public_ip
}

output "control_plane" {
  description = "The control plane node: name, private IP, public (elastic) IP, instance ID and Kubernetes providerID."
  value = {
    name        = "control-plane-1"
    instance_id = aws_instance.control_plane.id
    provider_id = "aws:///${aws_instance.control_plane.availability_zone}/${aws_instance.control_plane.id}"
    private_ip  = aws_instance.control_plane.private_ip
    public_ip   = aws_eip.control_plane.public_ip
  }
}

output "workers" {
  description = "Workers keyed by hostname (e.g. api-1): group, private IP, instance ID, providerID, labels and taints."
  value = {
    for key, w in local.workers : replace(key, "_", "-") => {
      group       = w.group
      instance_id = aws_instance.worker[key].id
      # kubelet --provider-id: the AWS Load Balancer Controller registers instance targets by it.
      provider_id = "aws:///${aws_instance.worker[key].availability_zone}/${aws_instance.worker[key].id}"
      private_ip  = aws_instance.worker[key].private_ip
      labels      = w.labels
      taints      = w.taints
    }
  }
}

output "instance_ids" {
  description = "Every Kubernetes node's instance ID (control plane first)."
  value       = concat([aws_instance.control_plane.id], [for w in aws_instance.worker : w.id])
}
