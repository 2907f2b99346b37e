resource "aws_s3_bucket" "images" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { Name = var.bucket_name })
}

resource "aws_s3_bucket_public_access_block" "images" {
  bucket = aws_s3_bucket.images.id

  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_cors_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  cors_rule {
    # Browsers upload with a presigned PUT that signs Content-Type, so the
    # preflight must allow that header or the upload fails before it starts.
    allowed_methods = ["PUT", "GET", "HEAD"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["Content-Type"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3000
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    id     = "tier-then-expire"
    status = "Enabled"

    filter {}

    transition {
      days          = var.transition_to_ia_days
      storage_class = "STANDARD_IA"
    }

    expiration {
      days = var.expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Client uploads land under incoming/ and are copied out by the image service once verified
  # (write-once uploads, docs/scan.md); whatever is left there is never served. The service sweeps
  # it; this rule is the backstop.
  rule {
    id     = "expire-incoming"
    status = "Enabled"

    filter {
      prefix = "incoming/"
    }

    expiration {
      days = 2
    }
  }
}

# ---------------------------------------------------------------------------
# CloudFront (optional)
# ---------------------------------------------------------------------------

locals {
  custom_domain = var.enable_cloudfront && var.cloudfront_domain_name != null
}

resource "aws_cloudfront_origin_access_control" "images" {
  count = var.enable_cloudfront ? 1 : 0

  name                              = var.bucket_name
  description                       = "CloudFront reads ${var.bucket_name} with SigV4; the bucket stays private"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_acm_certificate" "cloudfront" {
  count    = local.custom_domain ? 1 : 0
  provider = aws.us_east_1

  domain_name       = var.cloudfront_domain_name
  validation_method = "DNS"
  tags              = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "cloudfront_cert_validation" {
  for_each = local.custom_domain ? {
    for o in aws_acm_certificate.cloudfront[0].domain_validation_options : o.domain_name => o
  } : {}

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "cloudfront" {
  count    = local.custom_domain ? 1 : 0
  provider = aws.us_east_1

  certificate_arn         = aws_acm_certificate.cloudfront[0].arn
  validation_record_fqdns = [for r in aws_route53_record.cloudfront_cert_validation : r.fqdn]
}

# User bytes are served with the type the image service verified and never as a document: the same
# headers as the embedded file route (services/common/blobs.py FILE_SECURITY_HEADERS).
resource "aws_cloudfront_response_headers_policy" "images" {
  count = var.enable_cloudfront ? 1 : 0

  name    = "${var.bucket_name}-security"
  comment = "nosniff, no framing, no referrer, sandboxed CSP for uploaded images"

  security_headers_config {
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }
    content_security_policy {
      content_security_policy = "default-src 'none'; img-src 'self'; sandbox; frame-ancestors 'none'"
      override                = true
    }
  }
}

resource "aws_cloudfront_distribution" "images" {
  count = var.enable_cloudfront ? 1 : 0

  enabled         = true
  is_ipv6_enabled = true
  comment         = "Eco2 images (${var.bucket_name})"
  price_class     = var.cloudfront_price_class
  aliases         = local.custom_domain ? [var.cloudfront_domain_name] : []

  origin {
    origin_id                = "s3-images"
    domain_name              = aws_s3_bucket.images.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.images[0].id
  }

  default_cache_behavior {
    target_origin_id       = "s3-images"
    viewer_protocol_policy = "https-only"
    allowed_methods        = ["GET", "HEAD", "OPTIONS"]
    cached_methods         = ["GET", "HEAD"]
    compress               = true
    # AWS managed "CachingOptimized" policy.
    cache_policy_id            = "658327ea-f89d-4fab-a63d-7e88639e58f6"
    response_headers_policy_id = aws_cloudfront_response_headers_policy.images[0].id
  }

  # Before verification a cdn_url answers S3's 403 (the public key does not exist yet, and OAC may
  # not list the bucket): not cached, so the image shows as soon as the upload is verified.
  dynamic "custom_error_response" {
    for_each = toset([403, 404])
    content {
      error_code            = custom_error_response.value
      error_caching_min_ttl = 0
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_domain
    acm_certificate_arn            = local.custom_domain ? aws_acm_certificate_validation.cloudfront[0].certificate_arn : null
    ssl_support_method             = local.custom_domain ? "sni-only" : null
    minimum_protocol_version       = local.custom_domain ? "TLSv1.2_2021" : "TLSv1"
  }

  tags = var.tags
}

resource "aws_route53_record" "cloudfront_alias" {
  for_each = local.custom_domain ? toset(["A", "AAAA"]) : toset([])

  zone_id = var.route53_zone_id
  name    = var.cloudfront_domain_name
  type    = each.value

  alias {
    name                   = aws_cloudfront_distribution.images[0].domain_name
    zone_id                = aws_cloudfront_distribution.images[0].hosted_zone_id
    evaluate_target_health = false
  }
}

data "aws_iam_policy_document" "images" {
  count = var.enable_cloudfront ? 1 : 0

  statement {
    sid     = "CloudFrontOAC"
    actions = ["s3:GetObject"]
    # Verified objects only: the incoming/ prefix (unverified client uploads) is never readable.
    resources = [for prefix in ["scan", "chat", "my", "generated"] : "${aws_s3_bucket.images.arn}/${prefix}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.images[0].arn]
    }
  }
}

resource "aws_s3_bucket_policy" "images" {
  count = var.enable_cloudfront ? 1 : 0

  bucket = aws_s3_bucket.images.id
  policy = data.aws_iam_policy_document.images[0].json

  depends_on = [aws_s3_bucket_public_access_block.images]
}
