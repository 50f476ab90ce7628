"""The static tier: every `aws` call parsed by the real CLI v2, every boto3 call checked on its model."""
