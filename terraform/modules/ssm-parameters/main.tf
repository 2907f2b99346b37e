locals {
  parameters = merge([
    for svc, keys in var.secrets : { for k in keys : "${svc}/${k}" => { service = svc, key = k } }
  ]...)
}

resource "aws_ssm_parameter" "secret" {
  for_each = local.parameters

  name        = "${var.prefix}/${each.key}"
  description = "${each.value.service}: ${each.value.key} (read by External Secrets)"
  type        = "SecureString"
  key_id      = var.kms_key_id
  # A placeholder keeps the real secret out of Terraform state and plans;
  # operators set it with `aws ssm put-parameter --overwrite`, and the
  # services refuse placeholder secrets outside development.
  # The pull secret's placeholder must already be valid JSON: the API server refuses a
  # kubernetes.io/dockerconfigjson Secret that is not.
  value = each.value.key == "dockerconfigjson" ? jsonencode({ auths = {} }) : "CHANGE_ME"
  tier  = "Standard"
  tags  = merge(var.tags, { Service = each.value.service })

  lifecycle {
    ignore_changes = [value]
  }
}
