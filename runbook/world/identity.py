"""Identity: the operator's IAM user and key, the roles Lambda assumes, SNS topics."""

from __future__ import annotations

import json
from typing import Any

from .base import WorldBase, _tag_list
from .story import OPERATOR_USER

LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


class IdentityMixin(WorldBase):
    """IAM and SNS steps of `_World`."""

    # -- identity ----------------------------------------------------------------------------

    def seed_identity(self) -> dict[str, str]:
        """The operator's IAM user and key: moto maps a key it issued to the key's account."""
        iam = self.client("iam")
        iam.create_user(UserName=OPERATOR_USER, Tags=_tag_list(self.tags))
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    def role(self, name: str, statements: list[dict[str, Any]], managed: tuple[str, ...] = ()) -> str:
        """A role Lambda assumes: the shared managed policies attached, its resource access inline."""
        iam = self.client("iam")
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST, Tags=_tag_list(self.tags))
        for policy_arn in managed:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        if statements:
            iam.put_role_policy(
                RoleName=name,
                PolicyName=f"{name}-policy",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
        return role["Role"]["Arn"]

    # -- SNS -------------------------------------------------------------------------------

    def seed_topics(self) -> None:
        sns = self.client("sns")
        topics = dict.fromkeys([*self.env.alarm_topics.values(), *(n for _, n in self.names("sns_topic"))])
        for topic in topics:
            arn = sns.create_topic(Name=topic, Tags=_tag_list(self.tags))["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=self.ops_email)
