"""X-Ray: the trace segments of the lead handler's invocations and of the API in front of it."""

from __future__ import annotations

import json
from typing import Any

from .context import World, chunks
from .story import ERRORS, HTTP_STATUS, LIVE_ALIAS


class Traces:
    """X-Ray."""

    def __init__(self, world: World) -> None:
        self.world = world

    def seed_traces(self) -> None:
        w = self.world
        lead = w.lead_handler()
        if lead is None:
            return
        table = next((n for _, n in w.names("dynamodb_table")), None)
        api = next((n for _, n in w.names("http_api")), None)
        arn = w.function_arn(lead)
        docs = []
        for r in w.invocations:
            start = r.start.timestamp()
            end = start + r.duration / 1000
            segment: dict[str, Any] = {
                "name": lead,
                "id": r.segment_id,
                "trace_id": r.trace_id,
                "start_time": start,
                "end_time": end,
                "origin": "AWS::Lambda::Function",
                "aws": {
                    "account_id": w.env.account,
                    "function_arn": f"{arn}:{LIVE_ALIAS}",
                    "resource_names": [lead],
                    "request_id": r.request_id,
                },
                "annotations": {"leadId": r.lead, "funnelId": "real-estate"},
                "subsegments": [],
            }
            if r.outcome == "validation":
                segment["error"] = True
                segment["cause"] = {
                    "exceptions": [
                        {
                            "id": w.hexid(16),
                            "type": "ValidationError",
                            "message": ERRORS[r.kind].format(lead=r.lead, table=table).split(": ", 1)[1],
                        }
                    ]
                }
            elif r.outcome != "ok":
                segment["fault"] = True
                segment["cause"] = {
                    "exceptions": [
                        {
                            "id": w.hexid(16),
                            "type": ERRORS[r.kind].split(":")[0],
                            "message": ERRORS[r.kind].format(lead=r.lead, table=table),
                        }
                    ]
                }
            if table is not None and r.outcome != "validation":
                db_start = start + 0.02
                db_end = end - 0.01
                sub: dict[str, Any] = {
                    "name": "DynamoDB",
                    "id": w.hexid(16),
                    "start_time": db_start,
                    "end_time": db_end,
                    "namespace": "aws",
                    "aws": {
                        "operation": "PutItem",
                        "region": w.env.region,
                        "table_name": table,
                        "retries": 0 if r.outcome == "ok" else 3,
                    },
                    "http": {"response": {"status": 200 if r.outcome == "ok" else 400}},
                }
                if r.outcome == "dynamodb":
                    sub["throttle"] = True
                    sub["error"] = True
                if r.outcome == "timeout":
                    sub["fault"] = True
                segment["subsegments"].append(sub)
            docs.append(json.dumps(segment))
            if api is not None:
                docs.append(
                    json.dumps(
                        {
                            "name": f"{api}/$default",
                            "id": w.hexid(16),
                            "trace_id": r.trace_id,
                            "start_time": start - 0.01,
                            "end_time": end + 0.01,
                            "origin": "AWS::ApiGateway::Stage",
                            "http": {
                                "request": {
                                    "method": "POST",
                                    "url": f"https://{w.env.values.get('api_host', api)}/leads",
                                    "client_ip": r.ip,
                                },
                                "response": {"status": HTTP_STATUS[r.kind]},
                            },
                            **(
                                {"fault": True}
                                if HTTP_STATUS[r.kind] >= 500
                                else {"error": True}
                                if HTTP_STATUS[r.kind] >= 400
                                else {}
                            ),
                        }
                    )
                )
        xray = w.client("xray")
        for batch in chunks(docs, 50):
            result = xray.put_trace_segments(TraceSegmentDocuments=batch)
            if result.get("UnprocessedTraceSegments"):
                raise RuntimeError(f"X-Ray refused segments: {result['UnprocessedTraceSegments']}")
