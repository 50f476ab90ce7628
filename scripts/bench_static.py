#!/usr/bin/env python3
"""Time the static gate's AWS CLI v2 validation: mean ms per aws command, reusing one worker.

    .venv/bin/python scripts/bench_static.py [--rounds N] [--show]

Prints figures only: worker start-up, per-command mean/median/p95 through the worker,
and one whole shell block (bash expansion + validation) per command.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.gate.static.checker import StaticChecker  # noqa: E402

# ~50 commands of the kind an operations runbook holds (all valid for the CLI v2).
COMMANDS = [
    "logs filter-log-events --log-group-name /aws/lambda/orders-api --start-time 1700000000000"
    " --filter-pattern ERROR --max-items 50",
    "logs tail /aws/lambda/orders-api --since 1h --format short",
    "logs describe-log-groups --log-group-name-prefix /aws/lambda/",
    "logs get-log-events --log-group-name /aws/lambda/x --log-stream-name 's/1' --limit 100",
    "logs start-query --log-group-name /aws/lambda/x --start-time 1700000000 --end-time 1700003600"
    " --query-string 'fields @timestamp, @message | filter @message like /ERROR/ | limit 20'",
    "logs get-query-results --query-id 12345678-1234-1234-1234-123456789012",
    "cloudwatch get-metric-statistics --namespace AWS/Lambda --metric-name Errors"
    " --dimensions Name=FunctionName,Value=orders-api --start-time 2024-01-01T00:00:00Z"
    " --end-time 2024-01-01T01:00:00Z --period 300 --statistics Sum Maximum",
    "cloudwatch describe-alarms --state-value ALARM --alarm-name-prefix orders-",
    "cloudwatch set-alarm-state --alarm-name orders-5xx --state-value OK --state-reason test",
    "cloudwatch get-metric-data --start-time 2024-01-01T00:00:00Z --end-time 2024-01-01T01:00:00Z"
    " --metric-data-queries '[{\"Id\":\"e\",\"MetricStat\":{\"Metric\":{\"Namespace\":\"AWS/SQS\","
    "\"MetricName\":\"ApproximateNumberOfMessagesVisible\",\"Dimensions\":[{\"Name\":\"QueueName\","
    "\"Value\":\"orders-dlq\"}]},\"Period\":60,\"Stat\":\"Maximum\"}}]'",
    "dynamodb get-item --table-name orders --key '{\"pk\": {\"S\": \"order#1\"}}'",
    "dynamodb query --table-name orders --key-condition-expression 'pk = :pk'"
    " --expression-attribute-values '{\":pk\": {\"S\": \"order#1\"}}' --limit 10",
    "dynamodb describe-table --table-name orders",
    "dynamodb describe-continuous-backups --table-name orders",
    "dynamodb restore-table-to-point-in-time --source-table-name orders --target-table-name"
    " orders-restored --restore-date-time 2024-01-01T00:00:00Z",
    "dynamodb update-item --table-name orders --key '{\"pk\":{\"S\":\"a\"}}'"
    " --update-expression 'SET #s = :s' --expression-attribute-names '{\"#s\":\"status\"}'"
    " --expression-attribute-values '{\":s\":{\"S\":\"PAID\"}}' --return-values ALL_NEW",
    "dynamodb wait table-exists --table-name orders",
    "sqs get-queue-url --queue-name orders-dlq",
    "sqs get-queue-attributes --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"
    " --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible",
    "sqs receive-message --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"
    " --max-number-of-messages 10 --visibility-timeout 30 --wait-time-seconds 1",
    "sqs change-message-visibility --queue-url https://sqs.us-east-1.amazonaws.com/1/q"
    " --receipt-handle AQEBzbVv --visibility-timeout 0",
    "sqs purge-queue --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq",
    "lambda get-function --function-name orders-api",
    "lambda get-function-configuration --function-name orders-api --qualifier live",
    "lambda list-versions-by-function --function-name orders-api --max-items 20",
    "lambda update-alias --function-name orders-api --name live --function-version 7",
    "lambda put-function-concurrency --function-name orders-api --reserved-concurrent-executions 50",
    "lambda invoke --function-name orders-api --payload '{\"ping\": true}'"
    " --cli-binary-format raw-in-base64-out out.json",
    "lambda update-function-configuration --function-name orders-api --timeout 30 --memory-size 512"
    " --environment 'Variables={LOG_LEVEL=debug,FEATURE_X=on}'",
    "lambda list-event-source-mappings --function-name orders-api",
    "xray get-trace-summaries --start-time 1700000000 --end-time 1700003600"
    " --filter-expression 'service(\"orders-api\") AND responsetime > 5'",
    "xray batch-get-traces --trace-ids 1-5759e988-bd862e3fe1be46a994272793",
    "apigateway get-rest-apis",
    "apigatewayv2 get-apis",
    "apigateway get-stages --rest-api-id a1b2c3d4e5",
    "apigateway create-deployment --rest-api-id a1b2c3d4e5 --stage-name prod --description rollback",
    "secretsmanager describe-secret --secret-id prod/orders/db",
    "secretsmanager rotate-secret --secret-id prod/orders/db",
    "secretsmanager get-secret-value --secret-id prod/orders/db --version-stage AWSPREVIOUS",
    "ssm get-parameter --name /orders/prod/feature-flags --with-decryption",
    "ssm put-parameter --name /orders/prod/maintenance --value on --type String --overwrite",
    "sts get-caller-identity --query Account --output text",
    "s3 ls s3://orders-artifacts/releases/ --recursive --human-readable --summarize",
    "s3api head-object --bucket orders-artifacts --key releases/v7.zip",
    "s3api list-object-versions --bucket orders-artifacts --prefix releases/ --max-items 10",
    "cloudformation describe-stacks --stack-name orders-prod",
    "cloudformation describe-stack-events --stack-name orders-prod --max-items 20",
    "cloudformation detect-stack-drift --stack-name orders-prod",
    "events put-events --entries '[{\"Source\":\"orders\",\"DetailType\":\"test\",\"Detail\":\"{}\"}]'",
    "ecs describe-services --cluster prod --services orders",
    "ec2 describe-instances --filters Name=tag:Name,Values=orders-* Name=instance-state-name,"
    "Values=running --query 'Reservations[].Instances[].InstanceId' --output text",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="passes over the commands (default 3)")
    ap.add_argument("--show", action="store_true", help="print any command that was rejected")
    ap.add_argument("--aws-cli", default=None, help="AWS CLI v2 (default: $RUNBOOK_AWS_CLI)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    with StaticChecker(args.aws_cli) as checker:
        start_ms = (time.perf_counter() - t0) * 1000
        argvs = [tuple(shlex.split(c)) for c in COMMANDS]
        warm = time.perf_counter()
        rejected = []
        for argv in argvs:  # first pass: loads each service model once
            answer = checker.validate_aws(argv)
            if not answer.get("ok"):
                rejected.append((argv, answer.get("error")))
        first_pass_ms = (time.perf_counter() - warm) * 1000 / len(argvs)
        times = []
        for _ in range(args.rounds):
            for argv in argvs:
                t = time.perf_counter()
                checker.validate_aws(argv)
                times.append((time.perf_counter() - t) * 1000)
        blocks = []
        for command in COMMANDS:
            t = time.perf_counter()
            checker.check_shell("aws " + command + "\n")
            blocks.append((time.perf_counter() - t) * 1000)

    times.sort()
    print(f"AWS CLI v2 worker start-up (incl. version check): {start_ms:.0f} ms")
    print(f"commands: {len(argvs)}, rounds: {args.rounds}")
    print(f"first pass (cold service models): {first_pass_ms:.1f} ms/command")
    print(f"warm: mean {statistics.mean(times):.1f} ms/command, median "
          f"{statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms")
    print(f"whole shell block (bash -n, shellcheck, expansion, validation): mean "
          f"{statistics.mean(blocks):.1f} ms/block")
    print(f"rejected: {len(rejected)}")
    if args.show:
        for argv, error in rejected:
            print("  aws", shlex.join(argv), "->", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
