"""S3 for zoopipe: s3:// URLs for every file adapter and an S3 path syncer
(`pip install "zoopipe-core[s3]"`). Importing this package does not import s3fs or boto."""
