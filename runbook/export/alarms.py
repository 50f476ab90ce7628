"""Catalog × environment → CloudWatch alarm definitions (boto3 kwargs, Terraform JSON, CloudFormation)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from runbook.data import placeholders
from runbook.data.alarm_text import description, description_problem
from runbook.data.model import Alarm, Catalog, Environment, Metric
from runbook.errors import Loc, Problem, RunbookError

__all__ = ["FORMATS", "put_metric_alarm_kwargs", "render_alarms"]
FORMATS = ("terraform", "cloudformation")


# ------------------------------------------------------------------ boto3 put_metric_alarm


def environment(catalog: Catalog, env: str, command: str = "export-alarms") -> Environment:
    """The named environment; an unknown name is a located error of `runbook <command>`."""
    try:
        return catalog.env(env)
    except KeyError:
        known = ", ".join(e.name for e in catalog.environments)
        first = catalog.environments[0].loc or Loc("runbook_data/environments.yaml")
        raise RunbookError(
            [Problem(first, f"runbook {command}: unknown environment '{env}' (known: {known})")]
        ) from None


def _text(catalog: Catalog, env: str, text: str, deployed: Mapping[str, str] | None = None) -> str:
    """A pattern filled in for one environment (operator inputs stay visible as <name>).

    A deploy-time name (`{api.id}`) takes its value from `deployed`, else becomes `${api_id}`,
    which the file formats turn into a variable or parameter.
    """

    def fill(name: str) -> str:
        if deployed is not None and name in deployed:
            return deployed[name]
        if name in placeholders.deploy_names(catalog):
            return "${" + placeholders.deploy_variable(name) + "}"
        return f"<{name}>"

    return placeholders.substitute(text, catalog.scope(env), fill)


def _dimensions(
    catalog: Catalog, env: str, m: Metric, deployed: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    return [{"Name": k, "Value": _text(catalog, env, v, deployed)} for k, v in m.dimensions.items()]


def _metric_stat(catalog: Catalog, env: str, m: Metric, deployed: Mapping[str, str] | None = None) -> dict[str, Any]:
    stat: dict[str, Any] = {
        "Metric": {
            "Namespace": m.namespace,
            "MetricName": m.name,
            "Dimensions": _dimensions(catalog, env, m, deployed),
        },
        "Period": m.period,
        "Stat": m.extended_statistic or m.statistic,
    }
    if m.unit:
        stat["Unit"] = m.unit
    return stat


def _kwargs(
    catalog: Catalog, alarm: Alarm, env: Environment, site_url: str, deployed: Mapping[str, str] | None
) -> dict[str, Any]:
    topic = _text(catalog, env.name, env.alarm_topics[alarm.severity])
    arn = f"arn:aws:sns:{env.region}:{env.account}:{topic}"
    out: dict[str, Any] = {
        "AlarmName": _text(catalog, env.name, alarm.name),
        "AlarmDescription": description(catalog, alarm, env.name, site_url),
        "ActionsEnabled": True,
        "AlarmActions": [arn],
        "OKActions": [arn],
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
        "Threshold": catalog.threshold(alarm, env.name),
        "ComparisonOperator": alarm.comparison,
        "TreatMissingData": alarm.treat_missing_data,
    }
    if alarm.metric is not None:
        m = alarm.metric
        out.update(
            MetricName=m.name,
            Namespace=m.namespace,
            Dimensions=_dimensions(catalog, env.name, m, deployed),
            Period=m.period,
        )
        if m.extended_statistic:
            out["ExtendedStatistic"] = m.extended_statistic
        else:
            out["Statistic"] = m.statistic
        if m.unit:
            out["Unit"] = m.unit
    else:
        queries = []
        for q in alarm.metrics:
            query: dict[str, Any] = {"Id": q.id, "ReturnData": q.return_data}
            if q.metric is not None:
                query["MetricStat"] = _metric_stat(catalog, env.name, q.metric, deployed)
            else:
                query["Expression"] = q.expression
            if q.label:
                query["Label"] = _text(catalog, env.name, q.label)
            queries.append(query)
        out["Metrics"] = queries
    return out


def put_metric_alarm_kwargs(
    catalog: Catalog, env: str, site_url: str, deployed: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The exact `put_metric_alarm` arguments of every alarm in one environment, in catalog order.

    `deployed` gives deploy-time values such as {"api.id": "a1b2c3"}; without it they stay
    `${api_id}` for the file formats to declare as inputs.
    """
    chosen = environment(catalog, env)
    out = [_kwargs(catalog, a, chosen, site_url, deployed) for a in catalog.alarms]
    problems = [
        p
        for a, kw in zip(catalog.alarms, out, strict=True)
        if (p := description_problem(a, env, kw["AlarmDescription"])) is not None
    ]
    if problems:
        raise RunbookError(problems)
    return out


# ------------------------------------------------------------------ file formats


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _terraform_dimensions(dims: list[dict[str, str]]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in dims}


def _terraform_query(q: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": q["Id"], "return_data": q["ReturnData"]}
    if "Label" in q:
        out["label"] = q["Label"]
    if "Expression" in q:
        out["expression"] = q["Expression"]
    if "MetricStat" in q:
        stat = q["MetricStat"]
        metric = {
            "metric_name": stat["Metric"]["MetricName"],
            "namespace": stat["Metric"]["Namespace"],
            "dimensions": _terraform_dimensions(stat["Metric"]["Dimensions"]),
            "period": stat["Period"],
            "stat": stat["Stat"],
        }
        if "Unit" in stat:
            metric["unit"] = stat["Unit"]
        out["metric"] = metric
    return out


def _terraform_alarm(kw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kw.items():
        if key == "Dimensions":
            out["dimensions"] = _terraform_dimensions(value)
        elif key == "Metrics":
            out["metric_query"] = [_terraform_query(q) for q in value]
        elif key == "OKActions":
            out["ok_actions"] = value
        else:
            out[_snake(key)] = value
    return out


def _tf_id(alarm_id: str) -> str:
    return alarm_id.replace("-", "_")


def _cfn_id(alarm_id: str) -> str:
    return "".join(part.capitalize() for part in alarm_id.split("-"))


def _map_strings(value: Any, fn: Callable[[str], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return fn(value) if isinstance(value, str) else value


def _deploy_inputs(catalog: Catalog, env: str, doc: Any) -> dict[str, str]:
    """Deploy-time variables the document uses (api_id → what it is), found by their `${...}` mark."""
    text = json.dumps(doc)
    out = {}
    for name, resource in placeholders.deploy_names(catalog).items():
        var = placeholders.deploy_variable(name)
        if "${" + var + "}" in text:
            attr = name.rsplit(".", 1)[1]
            out[var] = f"The {attr} of {_text(catalog, env, '{' + resource + '}')}, assigned by AWS at deploy time"
    return out


def _cfn_param(var: str) -> str:
    return "".join(part.capitalize() for part in var.split("_"))


def _cfn_value(s: str, variables: Mapping[str, str]) -> Any:
    for var in variables:
        if s == "${" + var + "}":
            return {"Ref": _cfn_param(var)}
    if any("${" + var + "}" in s for var in variables):
        for var in variables:
            s = s.replace("${" + var + "}", "${" + _cfn_param(var) + "}")
        return {"Fn::Sub": s}
    return s


def _tf_value(s: str, variables: Mapping[str, str]) -> str:
    for var in variables:
        s = s.replace("${" + var + "}", "${var." + var + "}")
    return s


def render_alarms(catalog: Catalog, env: str, fmt: str, site_url: str) -> str:
    """Every alarm of one environment as a Terraform JSON or CloudFormation JSON document."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    pairs = list(zip(catalog.alarms, put_metric_alarm_kwargs(catalog, env, site_url), strict=True))
    note = f"Generated by `runbook export-alarms --env {env}` from runbook_data/: edit the data, not this file."
    doc: dict[str, Any]
    if fmt == "terraform":
        alarms = {_tf_id(a.id): _terraform_alarm(kw) for a, kw in pairs}
        variables = _deploy_inputs(catalog, env, alarms)
        doc = {
            "//": note,
            "resource": {"aws_cloudwatch_metric_alarm": _map_strings(alarms, lambda s: _tf_value(s, variables))},
        }
        if variables:
            doc["variable"] = {v: {"type": "string", "description": d} for v, d in variables.items()}
    else:
        resources = {_cfn_id(a.id): {"Type": "AWS::CloudWatch::Alarm", "Properties": kw} for a, kw in pairs}
        variables = _deploy_inputs(catalog, env, resources)
        doc = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"Kanjona CloudWatch alarms ({env}). {note}",
            "Resources": _map_strings(resources, lambda s: _cfn_value(s, variables)),
        }
        if variables:
            doc["Parameters"] = {_cfn_param(v): {"Type": "String", "Description": d} for v, d in variables.items()}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
