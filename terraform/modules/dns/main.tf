resource "aws_acm_certificate" "this" {
  domain_name               = var.certificate_domain
  subject_alternative_names = var.certificate_sans
  validation_method         = "DNS"
  tags                      = var.tags

  lifecycle {
    # The ALB keeps referencing the old certificate until the new one exists.
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  # Keyed by domain name because record names are only known after the
  # certificate exists. A wildcard and its apex share one validation record,
  # hence allow_overwrite.
  for_each = {
    for o in aws_acm_certificate.this.domain_validation_options : o.domain_name => o
  }

  zone_id         = var.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_route53_record" "a" {
  for_each = var.a_records

  zone_id = var.zone_id
  name    = each.key
  type    = "A"
  ttl     = var.record_ttl
  records = [each.value]
}
