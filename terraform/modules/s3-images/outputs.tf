output "bucket_name" {
  description = "Name of the images bucket (the image service's S3 bucket setting)."
  value       = aws_s3_bucket.images.bucket
}

output "bucket_arn" {
  description = "ARN of the images bucket."
  value       = aws_s3_bucket.images.arn
}

output "public_base_url" {
  description = "Base URL clients load images from: the CloudFront domain when enabled, otherwise null (the service then hands out presigned GET URLs)."
  value = var.enable_cloudfront ? (
    local.custom_domain ? "https://${var.cloudfront_domain_name}" : "https://${aws_cloudfront_distribution.images[0].domain_name}"
  ) : null
}

output "cloudfront_distribution_id" {
  description = "CloudFront distribution ID (for invalidations), or null when disabled."
  value       = var.enable_cloudfront ? aws_cloudfront_distribution.images[0].id : null
}
