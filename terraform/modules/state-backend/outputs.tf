output "bucket" {
  description = "State bucket name (backend \"s3\" bucket)."
  value       = aws_s3_bucket.state.bucket
}

output "dynamodb_table" {
  description = "Lock table name (backend \"s3\" dynamodb_table)."
  value       = aws_dynamodb_table.lock.name
}
