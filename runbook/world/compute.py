"""Compute: Lambda functions (versions, live alias), the HTTP API and its domain, Synthetics canaries."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta
from typing import Any

from . import functions
from .context import World, iso
from .identity import create_role
from .story import CANARY_PERIOD_MINUTES, LIVE_ALIAS, LIVE_VERSION, RESERVED_CONCURRENCY, canary_runs


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.py", source)
    return buf.getvalue()


def _handler_source(function: str, release: str) -> str:
    return (
        f'"""{function} ({release}): the gate\'s stand-in, answers what it was given."""\n\n'
        f'RELEASE = "{release}"\n\n\n'
        "def handler(event, context):\n"
        '    return {"statusCode": 200, "release": RELEASE, "event": event}\n'
    )


class Compute:
    """Lambda, API Gateway and Synthetics."""

    def __init__(self, world: World) -> None:
        self.world = world

    # -- Lambda ----------------------------------------------------------------------------

    def _function_statements(self, key: str) -> list[dict[str, Any]]:
        w = self.world
        statements: list[dict[str, Any]] = []
        tables = [w.scope[f"{k}.arn"] for k, _ in w.names("dynamodb_table")]
        if tables and "replay" not in key:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                    "Resource": tables + [f"{t}/index/*" for t in tables],
                }
            )
        queues = [w.scope[f"{k}.arn"] for k, _ in w.names("sqs_queue")]
        if queues:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage", "sqs:GetQueueAttributes"],
                    "Resource": queues,
                }
            )
        secrets = [w.arn("secretsmanager", f"secret:{n}-*") for _, n in w.names("secret")]
        if secrets and "replay" not in key:
            statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets})
        return statements

    def _function_environment(self) -> dict[str, str]:
        w = self.world
        variables = {"ENV": w.env.name, "LOG_LEVEL": "INFO"}
        for key, name in w.names("dynamodb_table"):
            variables[f"{key.upper()}_NAME"] = name
        for key, _ in w.names("sqs_queue"):
            variables[f"{key.upper()}_URL"] = w.scope[f"{key}.url"]
        for key, name in w.names("secret"):
            variables[f"{key.upper()}_ID"] = name
        return variables

    def seed_functions(self) -> None:
        w = self.world
        functions.install(w)  # what invoking them does (the DLQ replay)
        lam = w.client("lambda")
        # What AWSLambdaBasicExecutionRole + AWSXRayDaemonWriteAccess grant (moto's server does
        # not load AWS managed policies by default): one customer managed policy.
        basic = w.client("iam").create_policy(
            PolicyName=f"{w.prefix}-lambda-basic-execution",
            Description="Logs and X-Ray for the platform's Lambda functions",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": "*",
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                            "Resource": "*",
                        },
                    ],
                }
            ),
        )["Policy"]["Arn"]
        lead = w.lead_handler()
        for key, function in w.names("lambda_function"):
            role = create_role(w, f"{function}-role", self._function_statements(key), managed=(basic,))
            is_lead = function == lead
            lam.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": _zip(_handler_source(function, "1.4.0"))},
                Description=w.catalog.resources[key].description,
                Timeout=30 if is_lead else 60,
                MemorySize=512 if is_lead else 256,
                TracingConfig={"Mode": "Active"},
                Environment={"Variables": self._function_environment()},
                Tags=w.tags,
            )
            lam.publish_version(FunctionName=function, Description="release 1.4.0")
            # A version is published only when the code changed: deploy the next release.
            lam.update_function_code(FunctionName=function, ZipFile=_zip(_handler_source(function, "1.5.0")))
            lam.publish_version(FunctionName=function, Description="release 1.5.0")
            lam.create_alias(
                FunctionName=function, Name=LIVE_ALIAS, FunctionVersion=LIVE_VERSION, Description="serves traffic"
            )
            if is_lead:
                lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=RESERVED_CONCURRENCY)
                main_queues = [k for k, _ in w.names("sqs_queue") if k != w.dlq_key()]
                for qkey in main_queues[:1]:
                    lam.create_event_source_mapping(
                        EventSourceArn=w.scope[f"{qkey}.arn"],
                        FunctionName=f"{function}:{LIVE_ALIAS}",
                        BatchSize=10,
                        Enabled=True,
                    )

    # -- API Gateway v2 --------------------------------------------------------------------

    def seed_api(self) -> None:
        w = self.world
        apis = w.names("http_api")
        if not apis:
            return
        gw = w.client("apigatewayv2")
        lead = w.lead_handler()
        access_logs = w.names("log_group")
        log_arn = next(
            (w.scope[f"{k}.arn"] for k, n in access_logs if "api" in k or "api-gateway" in n),
            access_logs[0][0] if access_logs else None,
        )
        for i, (key, name) in enumerate(apis):
            api = gw.create_api(
                Name=name,
                ProtocolType="HTTP",
                Description=w.catalog.resources[key].description,
                CorsConfiguration={
                    "AllowOrigins": [f"https://{w.site_host()}"],
                    "AllowMethods": ["GET", "POST", "OPTIONS"],
                    "AllowHeaders": ["content-type", "x-amzn-trace-id"],
                    "MaxAge": 3600,
                },
                Tags=w.tags,
            )
            if i == 0:
                w.api_id = api["ApiId"]
            w.deployed[f"{key}.id"] = api["ApiId"]
            routes = ("POST /leads", "GET /health")
            if lead is not None:
                integration = gw.create_integration(
                    ApiId=api["ApiId"],
                    IntegrationType="AWS_PROXY",
                    IntegrationMethod="POST",
                    IntegrationUri=f"{w.function_arn(lead)}:{LIVE_ALIAS}",
                    PayloadFormatVersion="2.0",
                    TimeoutInMillis=29000,
                    Description="lead handler (live alias)",
                )
                for route in routes:
                    gw.create_route(
                        ApiId=api["ApiId"], RouteKey=route, Target=f"integrations/{integration['IntegrationId']}"
                    )
            stage_settings: dict[str, Any] = {
                "DefaultRouteSettings": {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100.0},
                "Tags": w.tags,
            }
            if log_arn:
                stage_settings["AccessLogSettings"] = {
                    "DestinationArn": log_arn,
                    "Format": json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "ip": "$context.identity.sourceIp",
                            "requestTime": "$context.requestTime",
                            "httpMethod": "$context.httpMethod",
                            "routeKey": "$context.routeKey",
                            "status": "$context.status",
                            "protocol": "$context.protocol",
                            "responseLength": "$context.responseLength",
                            "integrationLatency": "$context.integrationLatency",
                            "integrationErrorMessage": "$context.integrationErrorMessage",
                        }
                    ),
                }
            gw.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True, **stage_settings)
            gw.create_stage(ApiId=api["ApiId"], StageName=w.env.name, AutoDeploy=False, **stage_settings)
            host = w.env.values.get("api_host")
            if i == 0 and isinstance(host, str):
                domain = gw.create_domain_name(
                    DomainName=host,
                    DomainNameConfigurations=[
                        {
                            "EndpointType": "REGIONAL",
                            "CertificateArn": w.arn("acm", f"certificate/{uuid.UUID(int=w.rng.getrandbits(128))}"),
                            "SecurityPolicy": "TLS_1_2",
                        }
                    ],
                    Tags=w.tags,
                )
                config = (domain.get("DomainNameConfigurations") or [{}])[0]
                target = (
                    config.get("ApiGatewayDomainName") or f"d-{w.hexid(10)}.execute-api.{w.env.region}.amazonaws.com"
                )
                w.api_domain_target = (target, config.get("HostedZoneId") or "Z1UJRXOUMOOFQ8")
                gw.create_api_mapping(DomainName=host, ApiId=api["ApiId"], Stage="$default")

    # -- Synthetics ------------------------------------------------------------------------

    def seed_canaries(self) -> None:
        w = self.world
        canaries = w.names("canary")
        if not canaries:
            return
        syn = w.client("synthetics")
        bucket = w.artifacts_bucket() or w.website_bucket() or "canary-artifacts"
        role = create_role(
            w,
            f"{w.prefix}-canary-role",
            [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetBucketLocation"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
            ],
        )
        for key, canary in canaries:
            is_api = "api" in key
            script = "apiCanaryBlueprint.handler" if is_api else "pageLoadBlueprint.handler"
            syn.create_canary(
                Name=canary,
                Code={"Handler": script, "ZipFile": _zip(f"# {canary}: {w.catalog.resources[key].description}\n")},
                ArtifactS3Location=f"s3://{bucket}/canary/{w.env.region}/{canary}",
                ExecutionRoleArn=role,
                Schedule={"Expression": f"rate({CANARY_PERIOD_MINUTES} minutes)"},
                RunConfig={"TimeoutInSeconds": 60, "MemoryInMB": 1024, "ActiveTracing": True},
                SuccessRetentionPeriodInDays=31,
                FailureRetentionPeriodInDays=31,
                RuntimeVersion="syn-nodejs-puppeteer-9.1",
                Tags=w.tags,
            )
            self._canary_artifacts(bucket, canary, is_api)

    def _canary_artifacts(self, bucket: str, canary: str, is_api: bool) -> None:
        w = self.world
        if w.artifacts_bucket() is None:
            return
        s3 = w.client("s3")
        key = next(k for k, n in w.names("canary") if n == canary)
        runs = canary_runs(key)
        # The last failed run (if any) and the latest one: a report and a HAR or a screenshot each.
        for minutes, passed in [r for r in runs if not r[1]][-1:] + runs[-1:]:
            t = w.now - timedelta(minutes=minutes)
            prefix = f"canary/{w.env.region}/{canary}/{t:%Y/%m/%d/%H}/{t:%M-%S}-{t.microsecond // 1000:03d}"
            status = "PASSED" if passed else "FAILED"
            report = {
                "canaryName": canary,
                "status": status,
                "startTime": iso(t),
                "endTime": iso(t + timedelta(seconds=1 if passed else 29)),
            }
            files = {f"SyntheticsReport-{status}.json": ("application/json", json.dumps(report))}
            if is_api:
                files[f"{canary}.har.html"] = ("text/html", "<html><body>HAR of GET /health</body></html>\n")
            else:
                files[f"01-page-loaded-{'succeeded' if passed else 'failed'}.png"] = ("image/png", "\x89PNG\r\n")
            for name, (ctype, body) in files.items():
                s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body.encode(), ContentType=ctype)
