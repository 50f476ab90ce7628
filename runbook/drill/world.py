"""A drill's scenario in the world (run inside the gate's worker, through Sandbox.call): the
fault's metric data, log events and resource state on top of the seeded story, the alarm put
in ALARM, and, after the resolution, the recovery condition read back.

Everything is made with the world's own building blocks (its clients, its placeholders, the
alarm export's definitions), so a scenario names resources as the pages do.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jmespath

from runbook.data.load import load_cached
from runbook.data.model import Drill, WorldCall
from runbook.data.placeholders import PLACEHOLDER
from runbook.export.alarms import put_metric_alarm_kwargs
from runbook.world.context import World, ms

from .findings import reveal

__all__ = ["apply", "recovered"]


def _world(endpoint_url: str, data_root: str, env: str, site_url: str) -> World:
    """env's world as seeding left it, with the deploy-time ids (which moto picked) looked up."""
    world = World(endpoint_url, load_cached(data_root), env, site_url)
    names = {name: key for key, name in world.scope.items() if key in world.catalog.resources}
    for api in world.client("apigatewayv2").get_apis().get("Items", []):
        if api["Name"] in names:
            world.deployed[f"{names[api['Name']]}.id"] = api["ApiId"]
    items = world.client("cloudfront").list_distributions().get("DistributionList", {}).get("Items", [])
    for dist in items:
        if dist.get("Comment") in names:
            world.deployed[f"{names[dist['Comment']]}.id"] = dist["Id"]
    return world


def _drill(world: World, alarm_id: str) -> Drill:
    drill = world.catalog.alarm(alarm_id).drill
    if drill is None:
        raise ValueError(f"alarm '{alarm_id}' has no drill")
    return drill


def _fill(world: World, value: Any, saved: dict[str, str]) -> Any:
    """Placeholders filled in every string of a call's parameters (saved values first)."""
    if isinstance(value, str):
        value = PLACEHOLDER.sub(lambda m: saved.get(m.group(1), m.group(0)), value)
        return world.text(value)
    if isinstance(value, dict):
        return {k: _fill(world, v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(world, v, saved) for v in value]
    return value


def _call(world: World, call: WorldCall, saved: dict[str, str]) -> Any:
    service, operation = call.call.split(".")
    method = getattr(world.client(service), operation)
    for n in range(1, call.repeat + 1):
        answer = method(**_fill(world, call.params, {**saved, "n": str(n)}))
    answer.pop("ResponseMetadata", None)
    for name, expression in call.save.items():
        saved[name] = str(jmespath.search(expression, answer))
    return answer


def _log_group(world: World, pattern: str) -> str:
    """The group of that name, or the first one it is the prefix of (a canary's group)."""
    name = world.text(pattern)
    groups = world.client("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    exact = [g["logGroupName"] for g in groups if g["logGroupName"] == name]
    if exact or not groups:
        return name
    return str(groups[0]["logGroupName"])


def _publish(world: World, alarm_id: str, drill: Drill) -> None:
    """The scenario's metric data, one value a minute up to a minute ago, as the alarm sees it."""
    alarm = world.catalog.alarm(alarm_id)
    kwargs = next(kw for kw in put_metric_alarm_kwargs(world.catalog, world.env.name, world.site_url,
                                                       deployed=world.deployed)
                  if kw["AlarmName"] == world.text(alarm.name))
    if "Metrics" in kwargs:
        metrics = {q["Id"]: q["MetricStat"]["Metric"] | {"Unit": q["MetricStat"].get("Unit")}
                   for q in kwargs["Metrics"] if "MetricStat" in q}
    else:
        metrics = {"metric": {"Namespace": kwargs["Namespace"], "MetricName": kwargs["MetricName"],
                              "Dimensions": kwargs["Dimensions"], "Unit": kwargs.get("Unit")}}
    top = world.now.replace(second=0, microsecond=0)
    cw = world.client("cloudwatch")
    for key, minutes in drill.metric_data.items():
        metric = metrics[key]
        data: list[dict[str, Any]] = []
        for i, value in enumerate(minutes):
            if value is None:
                continue
            datum: dict[str, Any] = {"MetricName": metric["MetricName"], "Dimensions": metric["Dimensions"],
                                     "Timestamp": top - timedelta(minutes=len(minutes) - i)}
            if isinstance(value, list):
                datum["Values"] = [float(v) for v in value]
            else:
                datum["Value"] = float(value)
            if metric.get("Unit"):
                datum["Unit"] = metric["Unit"]
            data.append(datum)
        for start in range(0, len(data), 500):
            cw.put_metric_data(Namespace=metric["Namespace"], MetricData=data[start:start + 500])


def _write_logs(world: World, alarm_id: str, drill: Drill) -> None:
    logs = world.client("logs")
    for n, entry in enumerate(drill.logs):
        group = _log_group(world, entry.group)
        stream = f"{world.now:%Y/%m/%d}/drill-{alarm_id}-{n}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        message = world.text(entry.message)
        times = sorted(ms(world.now - timedelta(seconds=20 + k * entry.every)) for k in range(entry.count))
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t, "message": message} for t in times])


def apply(endpoint_url: str, data_root: str, env: str, site_url: str, alarm_id: str, reason: str) -> dict[str, Any]:
    """Make the drill's incident happen in env's seeded world; the values its calls saved."""
    world = _world(endpoint_url, data_root, env, site_url)
    drill = _drill(world, alarm_id)
    saved: dict[str, str] = {}
    for call in drill.state:
        _call(world, call, saved)
    _publish(world, alarm_id, drill)
    _write_logs(world, alarm_id, drill)
    world.client("cloudwatch").set_alarm_state(
        AlarmName=world.text(world.catalog.alarm(alarm_id).name), StateValue="ALARM", StateReason=reason[:1000])
    return {"saved": saved}


def recovered(endpoint_url: str, data_root: str, env: str, site_url: str, alarm_id: str,
              saved: dict[str, str]) -> dict[str, Any]:
    """Whether the drill's recovery condition holds now: {"ok": bool, "answer": JSON text}."""
    world = _world(endpoint_url, data_root, env, site_url)
    check = _drill(world, alarm_id).recovered
    try:
        answer = _call(world, check, dict(saved))
    except Exception as exc:  # noqa: BLE001 - a failed read is a failed recovery, said as such
        return {"ok": False, "answer": f"{type(exc).__name__}: {exc}"}
    text = json.dumps(answer, default=str, sort_keys=True)
    return {"ok": reveal(check, text).ok, "answer": text}
