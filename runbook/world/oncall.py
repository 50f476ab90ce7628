"""The on-call engineer's IAM users: one per role, holding only the runbook's policy.

The gate seeds a world with moto's access control off, then creates these users (in the
environment's account) with the policy of `runbook iam-policy` as moto checks it, and turns
access control on: from then on every request is authorised against the signing user's
policies, so a block that needs an action its role lacks fails with AccessDenied.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from runbook.data.load import load_kept

from .context import World
from .story import OPERATOR_USER

__all__ = ["seed_oncall", "set_auth"]


def set_auth(endpoint_url: str, count: str) -> None:
    """moto's INITIAL_NO_AUTH_ACTION_COUNT on the running server: "inf" (off) or "0" (on now).
    The body is the bare number (moto's /moto-api/reset-auth)."""
    request = urllib.request.Request(endpoint_url + "/moto-api/reset-auth", data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        response.read()


def seed_oncall(endpoint_url: str, data_root: str, env: str, site_url: str,
                policies: dict[str, dict[str, Any]], catalog: str = "") -> dict[str, dict[str, str]]:
    """A user per role ({"read": policy document, ...}) in env's account; their access keys
    (`catalog` as for runbook.world.seed)."""
    world = World(endpoint_url, load_kept(data_root, catalog), env, site_url)
    iam = world.client("iam")
    # The gate's own identity (its reads of the state an undo restores) keeps every permission.
    iam.put_user_policy(UserName=OPERATOR_USER, PolicyName="gate", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    keys: dict[str, dict[str, str]] = {}
    for role, document in policies.items():
        user = f"kanjona-{env}-oncall-{role}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=f"runbook-{role}", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[role] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    return keys
