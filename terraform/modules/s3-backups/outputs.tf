output "bucket_name" {
  description = "Name of the backup bucket (CloudNativePG spec.backup.barmanObjectStore.destinationPath s3://<name>/)."
  value       = aws_s3_bucket.backups.bucket
}

output "bucket_arn" {
  description = "ARN of the backup bucket (the postgres IRSA role's policy)."
  value       = aws_s3_bucket.backups.arn
}
