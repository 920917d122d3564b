"""bucketdav benchmark: the gateway against direct S3 reads and rclone serve webdav."""
