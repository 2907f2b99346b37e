data "aws_region" "current" {}
data "aws_partition" "current" {}

# ---------------------------------------------------------------------------
# Instance profiles
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

locals {
  node_roles = toset(["control-plane", "worker"])
  # Node roles stay minimal: controllers and the domain pods that use AWS get their rights through
  # IRSA, so a pod on a node cannot borrow them via the instance role (IMDS answers pods: hop limit 2).
  node_managed_policies = {
    ssm = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ecr = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
  }
  node_policy_attachments = {
    for pair in setproduct(local.node_roles, keys(local.node_managed_policies)) :
    "${pair[0]}-${pair[1]}" => { role = pair[0], policy_arn = local.node_managed_policies[pair[1]] }
  }
}

resource "aws_iam_role" "node" {
  for_each = local.node_roles

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = local.node_policy_attachments

  role       = aws_iam_role.node[each.value.role].name
  policy_arn = each.value.policy_arn
}

resource "aws_iam_instance_profile" "node" {
  for_each = local.node_roles

  name = "${var.name}-${each.key}"
  role = aws_iam_role.node[each.key].name
  tags = var.tags
}

# ---------------------------------------------------------------------------
# IRSA on a self-managed cluster: the API server signs service-account tokens
# with issuer = this bucket's URL; the Ansible kubernetes role publishes the
# discovery document and JWKS here, and IAM trusts the bucket as an OIDC IdP.
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "oidc" {
  bucket = var.oidc_bucket_name
  # Holds only the two documents Ansible regenerates from the API server.
  force_destroy = true
  tags          = merge(var.tags, { Name = var.oidc_bucket_name })
}

resource "aws_s3_bucket_public_access_block" "oidc" {
  bucket = aws_s3_bucket.oidc.id

  # STS fetches the discovery document anonymously, so a bucket policy
  # granting public read on exactly two keys has to be allowed.
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = false
  restrict_public_buckets = false
}

data "aws_iam_policy_document" "oidc_public_read" {
  statement {
    sid     = "PublicReadDiscovery"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.oidc.arn}/.well-known/openid-configuration",
      "${aws_s3_bucket.oidc.arn}/openid/v1/jwks",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_s3_bucket_policy" "oidc" {
  bucket = aws_s3_bucket.oidc.id
  policy = data.aws_iam_policy_document.oidc_public_read.json

  depends_on = [aws_s3_bucket_public_access_block.oidc]
}

locals {
  oidc_issuer_host = "${aws_s3_bucket.oidc.bucket}.s3.${data.aws_region.current.name}.amazonaws.com"
}

resource "aws_iam_openid_connect_provider" "cluster" {
  url             = "https://${local.oidc_issuer_host}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.oidc_thumbprints
  tags            = var.tags
}

locals {
  # Role key -> the service accounts its trust policy names (one each, the images role several).
  irsa_trust = merge(
    { for key, account in var.irsa_service_accounts : key => [account] },
    { images = var.images_service_accounts },
  )
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_trust

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.cluster.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:sub"
      values   = [for account in each.value : "system:serviceaccount:${replace(account, "/", ":")}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa_trust

  name               = "${var.name}-${replace(each.key, "_", "-")}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
  tags               = merge(var.tags, { ServiceAccounts = join(" ", each.value) })
}

resource "aws_iam_role_policy" "aws_load_balancer_controller" {
  name   = "aws-load-balancer-controller"
  role   = aws_iam_role.irsa["aws_load_balancer_controller"].id
  policy = file("${path.module}/policies/aws-load-balancer-controller.json")
}

data "aws_iam_policy_document" "external_dns" {
  statement {
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [var.route53_zone_arn]
  }
  statement {
    actions   = ["route53:ListHostedZones", "route53:ListResourceRecordSets", "route53:ListTagsForResource"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "external_dns" {
  name   = "external-dns"
  role   = aws_iam_role.irsa["external_dns"].id
  policy = data.aws_iam_policy_document.external_dns.json
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    actions = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:DescribeParameters"]
    resources = [
      "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_parameter_prefix}/*",
    ]
  }
  statement {
    # SecureStrings use the account's aws/ssm key; decrypt only through SSM.
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "external-secrets"
  role   = aws_iam_role.irsa["external_secrets"].id
  policy = data.aws_iam_policy_document.external_secrets.json
}

resource "aws_iam_role_policy_attachment" "ebs_csi_driver" {
  role       = aws_iam_role.irsa["ebs_csi_driver"].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}

locals {
  # IRSA role -> the one bucket it may use and what it may do with the objects; nothing else in the
  # account. (The nodes' instance roles get no bucket rights: any pod can reach IMDS.)
  bucket_access = {
    # The image and scan pods: presigned uploads, reads, deletes of users' photos.
    images = {
      policy  = "images-bucket"
      bucket  = var.images_bucket_arn
      objects = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    }
    # barman-cloud in the PostgreSQL pods: WAL archive and base backups, and deleting what falls out
    # of the retention window.
    postgres_backup = {
      policy  = "postgres-backup"
      bucket  = var.backups_bucket_arn
      objects = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    }
    # The recovery cluster only reads: base backups and WAL of the cluster it restores.
    postgres_restore = {
      policy  = "postgres-restore"
      bucket  = var.backups_bucket_arn
      objects = ["s3:GetObject"]
    }
  }
}

data "aws_iam_policy_document" "bucket_access" {
  for_each = local.bucket_access

  statement {
    actions   = each.value.objects
    resources = ["${each.value.bucket}/*"]
  }
  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [each.value.bucket]
  }
}

resource "aws_iam_role_policy" "bucket_access" {
  for_each = local.bucket_access

  name   = each.value.policy
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.bucket_access[each.key].json
}
