"""Storage: S3 buckets and the site's files, SQS queues, DynamoDB tables, Secrets Manager."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from .context import World, chunks, iso, tag_list
from .story import ERRORS, LEADS, SENDERS


class Storage:
    """S3, SQS, DynamoDB and Secrets Manager."""

    def __init__(self, world: World) -> None:
        self.world = world

    # -- S3 --------------------------------------------------------------------------------

    def seed_buckets(self) -> None:
        w = self.world
        s3 = w.client("s3")
        for _, bucket in w.names("s3_bucket"):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if w.env.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": w.env.region}
            s3.create_bucket(**kwargs)
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )

    def seed_website_objects(self) -> None:
        """The site's files and a bucket policy that lets the distribution (only) read them."""
        w = self.world
        bucket = w.website_bucket()
        if bucket is None:
            return
        s3 = w.client("s3")
        files = {
            "index.html": ("text/html", "<!doctype html><title>Kanjona</title><h1>Find your next home</h1>\n"),
            "error.html": ("text/html", "<!doctype html><title>Kanjona</title><h1>Page not found</h1>\n"),
            "assets/app.js": ("application/javascript", "document.title = 'Kanjona';\n"),
        }
        for key, (ctype, body) in files.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=ctype)
        statement: dict[str, Any] = {
            "Sid": "AllowCloudFrontRead",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        if w.distribution is not None:
            statement["Condition"] = {"StringEquals": {"AWS:SourceArn": w.distribution.arn}}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))

    # -- SQS -------------------------------------------------------------------------------

    def seed_queues(self) -> None:
        w = self.world
        sqs = w.client("sqs")
        dlq = w.dlq_key()
        if dlq is not None:
            # Inspecting a DLQ must not hide its messages from the next look: the runbook's
            # receive-message uses --visibility-timeout 0, the queue's default matches it.
            url = sqs.create_queue(
                QueueName=w.scope[dlq],
                Attributes={"MessageRetentionPeriod": str(14 * 86400), "VisibilityTimeout": "0"},
                tags=w.tags,
            )["QueueUrl"]
            sqs.send_message_batch(QueueUrl=url, Entries=self._dlq_messages())
        for key, name in w.names("sqs_queue"):
            if key == dlq:
                continue
            attributes = {"VisibilityTimeout": "180", "MessageRetentionPeriod": str(4 * 86400)}
            if dlq is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": w.scope[f"{dlq}.arn"], "maxReceiveCount": 3}
                )
            sqs.create_queue(QueueName=name, Attributes=attributes, tags=w.tags)

    def _dlq_messages(self) -> list[dict[str, Any]]:
        """The last three leads whose processing failed, as the API queued them."""
        entries = []
        for i, r in enumerate(self.world.failed_invocations()):
            outcome = r.kind
            name, user = SENDERS[i % len(SENDERS)]
            body: dict[str, Any] = {
                "leadId": r.lead,
                "funnelId": "real-estate",
                "name": name,
                "email": f"{user}@example.com",
                "phone": f"+1-555-01{50 + i}",
                "message": "Interested in the 3-bedroom listing",
                "submittedAt": iso(r.start),
            }
            if outcome in ("validation", "request"):
                body["email"] = f"{user}(at)example"  # what the ValidationError was about
            entries.append(
                {
                    "Id": f"m{i}",
                    "MessageBody": json.dumps(body),
                    "MessageAttributes": {
                        "source": {"DataType": "String", "StringValue": "api"},
                        "errorType": {"DataType": "String", "StringValue": ERRORS[outcome].split(":")[0]},
                    },
                }
            )
        return entries

    # -- DynamoDB --------------------------------------------------------------------------

    def seed_tables(self) -> None:
        w = self.world
        ddb = w.client("dynamodb")
        for _, table in w.names("dynamodb_table"):
            ddb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "funnelId", "createdAt")
                ],
                BillingMode="PAY_PER_REQUEST",
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "funnel-createdAt-index",
                        "KeySchema": [
                            {"AttributeName": "funnelId", "KeyType": "HASH"},
                            {"AttributeName": "createdAt", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                Tags=tag_list(w.tags),
            )
            ddb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            for batch in chunks(self._lead_items(), 25):
                ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in batch]})

    def _lead_items(self) -> list[dict[str, Any]]:
        w = self.world
        items = []
        for offset, minutes, name, status in LEADS:
            lead = w.lead_id(offset)
            created = iso(w.now - timedelta(minutes=minutes))
            first = name.split()[0].lower()
            items.append(
                {
                    "pk": {"S": f"LEAD#{lead}"},
                    "sk": {"S": f"LEAD#{lead}"},
                    "leadId": {"S": lead},
                    "funnelId": {"S": "real-estate"},
                    "name": {"S": name},
                    "email": {"S": f"{first}@example.com"},
                    "phone": {"S": f"+1-555-01{offset:02d}"},
                    "status": {"S": status},
                    "source": {"S": "website"},
                    "createdAt": {"S": created},
                    "updatedAt": {"S": created},
                }
            )
            # The lead's history lives in its item collection (same pk).
            for n, event in enumerate(("SUBMITTED", "NOTIFIED")):
                at = iso(w.now - timedelta(minutes=minutes) + timedelta(seconds=2 * n))
                items.append(
                    {
                        "pk": {"S": f"LEAD#{lead}"},
                        "sk": {"S": f"EVENT#{at}#{event}"},
                        "type": {"S": event},
                        "createdAt": {"S": at},
                    }
                )
        return items

    # -- Secrets Manager -------------------------------------------------------------------

    def seed_secrets(self) -> None:
        w = self.world
        sm = w.client("secretsmanager")
        for key, name in w.names("secret"):
            value = {
                "accountSid": "AC" + hashlib.sha256(f"{w.env.account}/{name}/sid".encode()).hexdigest()[:32],
                "authToken": hashlib.sha256(f"{w.env.account}/{name}/token".encode()).hexdigest()[:32],
                "fromNumber": "+15555550100",
            }
            sm.create_secret(
                Name=name,
                Description=w.catalog.resources[key].description or name,
                SecretString=json.dumps(value),
                Tags=tag_list(w.tags),
            )
