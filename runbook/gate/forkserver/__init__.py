"""A fork server for the AWS CLI v2: `cli/` runs under the CLI's own interpreter."""
