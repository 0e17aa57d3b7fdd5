"""The AWS target's components: ECS Fargate, RDS, ElastiCache, S3 and CloudFront."""
