"""Identity: the operator's IAM user and key, the roles Lambda assumes, SNS topics."""

from __future__ import annotations

import json
from typing import Any

from .context import World, tag_list
from .story import OPERATOR_USER

LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def create_role(world: World, name: str, statements: list[dict[str, Any]], managed: tuple[str, ...] = ()) -> str:
    """A role Lambda assumes: the shared managed policies attached, its resource access inline."""
    iam = world.client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST, Tags=tag_list(world.tags))
    for policy_arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName=f"{name}-policy",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    arn: str = role["Role"]["Arn"]
    return arn


class Identity:
    """IAM (the operator) and SNS."""

    def __init__(self, world: World) -> None:
        self.world = world
        # The operator's key, once `seed_identity` ran: what the gate's commands sign with.
        self.access_key: dict[str, str] = {}

    def seed_identity(self) -> None:
        """The operator's IAM user and key: moto maps a key it issued to the key's account."""
        iam = self.world.client("iam")
        iam.create_user(UserName=OPERATOR_USER, Tags=tag_list(self.world.tags))
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        self.access_key = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    def seed_topics(self) -> None:
        w = self.world
        sns = w.client("sns")
        topics = dict.fromkeys([*w.env.alarm_topics.values(), *(n for _, n in w.names("sns_topic"))])
        for topic in topics:
            arn = sns.create_topic(Name=topic, Tags=tag_list(w.tags))["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=w.ops_email)
