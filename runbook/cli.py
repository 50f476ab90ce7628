"""`runbook` command line: check, verify, export-alarms. User errors print located lines, exit 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from runbook.data.load import load, load_cached
from runbook.errors import Loc, Problem, RunbookError, github_annotation, shown_path

PROJECT = Path(__file__).resolve().parent.parent


def _check(args: argparse.Namespace) -> int:
    from runbook.data.rules import warnings
    from runbook.site.build import site_url

    # Alarm descriptions are measured with the site_url they will link to, as the export builds them.
    try:
        catalog = load_cached(args.data, site_url(args.mkdocs) if args.mkdocs.is_file() else None)
    except RunbookError as err:
        if args.site is None:
            raise
        # A built site is scanned too: its secrets are reported with the data's problems, all at once.
        raise RunbookError(err.problems + _site_secrets(args.site)) from None
    if args.site is not None and (problems := _site_secrets(args.site)):
        raise RunbookError(problems)
    # Warnings (valid but unfinished data, e.g. a placeholder contact) are printed, not failed on.
    found = warnings(catalog)
    for w in found:
        if args.format == "github":
            print(github_annotation(w.loc, w.message.removeprefix("warning: "), level="warning"))
        print(w, file=sys.stderr)
    if found:
        print(f"{len(found)} warning(s)", file=sys.stderr)
    print(
        f"runbook data OK: {len(catalog.environments)} environments, {len(catalog.alarms)} alarms, "
        f"{len(catalog.pages)} procedure pages, {len(catalog.commands())} commands"
    )
    if args.site is not None:
        print(f"built site OK: no secrets in {shown_path(args.site)}")
    return 0


def _site_secrets(site: Path) -> list[Problem]:
    from runbook.site import secret_scan

    if not site.is_dir():
        return [Problem(Loc(shown_path(site)), "--site: not a folder (a built site, e.g. mkdocs build's site/)")]
    return secret_scan.site_problems(site)


def _emit(text: str, out: str | None) -> None:
    """A generated file: written atomically to `out`, else to standard output."""
    from runbook.export.fsio import write_atomic

    if out:
        write_atomic(Path(out), text)
    else:
        sys.stdout.write(text)


def _export(args: argparse.Namespace) -> int:
    from runbook.export import alarms
    from runbook.site.build import site_url

    catalog = load(args.data)
    text = alarms.render_alarms(catalog, args.env, args.format, site_url(args.mkdocs))
    _emit(text, args.out)
    return 0


def _iam_policy(args: argparse.Namespace) -> int:
    from runbook.access import policy
    from runbook.export.alarms import environment
    from runbook.gate import run as gate

    environment(load(args.data), args.env, "iam-policy")
    # The site's blocks as the gate takes them: the policy covers what the gate runs.
    p = gate.plan(args.mkdocs, None, [args.env], None)
    try:
        document = policy.policy(p.catalog, args.env, args.role, gate.policy_blocks(p, args.env))
    finally:
        p.close()
    text = policy.render(document, args.env, args.role, args.format)
    _emit(text, args.out)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from runbook.export.alarms import environment
    from runbook.site import publish

    catalog = load(args.data)  # data with failing checks is refused here, located
    environment(catalog, args.env, "publish")
    return publish.publish(catalog, args.env, args.site, args.report, dry_run=args.dry_run)


def _merge_reports(args: argparse.Namespace) -> int:
    import json

    from runbook.export.fsio import write_atomic
    from runbook.gate import reports

    try:
        parts = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.reports]
        merged = reports.merge(parts)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"runbook merge-reports: {exc}", file=sys.stderr)
        return 1
    write_atomic(args.out, json.dumps(merged, indent=2) + "\n")
    s = merged["summary"]
    print(f"{len(merged['results'])} results from {len(parts)} report(s): {s['passed']} passed, "
          f"{s['failed']} failed, {s['skipped']} skipped, {s['xfailed']} xfailed, {s['xpassed']} xpassed")
    return 1 if s["failed"] or s["xpassed"] else 0


def _schema(args: argparse.Namespace) -> int:
    from runbook.data import schema

    for path in schema.write(args.out):
        print(path)
    return 0


def _links(args: argparse.Namespace) -> int:
    from runbook.site import links

    problems, summary = links.run(args.mkdocs, args.site, args.record)
    for line in problems:
        print(line)
    print(summary, file=sys.stderr)
    return 1 if problems else 0


def _verify(args: argparse.Namespace) -> int:
    from runbook.gate import run as gate

    return gate.main(args)


def _drill(args: argparse.Namespace) -> int:
    from runbook.drill import cli

    return cli.main(args)


def _shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"{text!r}: give K/N with 1 <= K <= N, e.g. 2/4")
    return int(k), int(n)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runbook", description=__doc__)
    p.add_argument("--data", type=Path, default=PROJECT / "runbook_data", help="runbook_data folder")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate runbook_data/ and report every problem")
    c.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml", help="where site_url is read")
    c.add_argument("--site", type=Path, metavar="DIR",
                   help="also scan a built site for secrets (its text files, less the theme's own), "
                        "e.g. before publishing it")
    c.add_argument("--format", choices=["text", "github"], default="text",
                   help="github: also print each problem as a GitHub Actions annotation on its line")
    c.set_defaults(func=_check)

    e = sub.add_parser("export-alarms", help="write CloudWatch alarm definitions for one environment")
    e.add_argument("--env", required=True)
    e.add_argument("--format", choices=["terraform", "cloudformation"], required=True)
    e.add_argument("--out", help="file to write (atomically); default: standard output")
    e.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml", help="where site_url is read")
    e.set_defaults(func=_export)

    i = sub.add_parser("iam-policy", help="write the least-privilege IAM policy the runbook's commands need")
    i.add_argument("--env", required=True)
    i.add_argument("--role", choices=["read", "write"], default="read",
                   help="read: investigation (Read/List actions); write: also the state-changing resolutions")
    i.add_argument("--format", choices=["json", "terraform", "cloudformation"], default="json",
                   help="policy JSON, Terraform aws_iam_policy_document JSON, or a CloudFormation template")
    i.add_argument("--out", help="file to write (atomically); default: standard output")
    i.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml", help="the site whose blocks it covers")
    i.set_defaults(func=_iam_policy)

    u = sub.add_parser("publish", help="copy the built site to the runbook's bucket and invalidate its CDN")
    u.add_argument("--env", required=True)
    u.add_argument("--site", type=Path, default=Path("site"), help="the built site (default: site/)")
    u.add_argument("--report", type=Path, help="the gate's JSON report: publishing refuses one with a failure")
    u.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    u.set_defaults(func=_publish)

    m = sub.add_parser("merge-reports", help="one report from the reports of a run's shards (--shard K/N)")
    m.add_argument("reports", nargs="+", metavar="REPORT")
    m.add_argument("--out", type=Path, required=True, help="the merged report (written atomically)")
    m.set_defaults(func=_merge_reports)

    s = sub.add_parser("schema", help="write the JSON Schemas of the data files (for editors)")
    s.add_argument("--out", type=Path, default=PROJECT / "runbook_data" / "schema")
    s.set_defaults(func=_schema)

    k = sub.add_parser("links", help="check every link of the built site and the published URLs")
    k.add_argument("--site", type=Path, help="an already built site (default: build one into a temp dir)")
    k.add_argument("--record", action="store_true", help="rewrite docs/published-urls.txt from the site")
    k.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml")
    k.set_defaults(func=_links)

    v = sub.add_parser("verify", help="run every command of the site against moto")
    v.add_argument("--env", action="append", dest="envs", metavar="ENV", help="repeatable; default: all")
    v.add_argument("--static-only", action="store_true",
                   help="only the static tier: nothing runs against moto (block expansion runs in bubblewrap)")
    v.add_argument("--docs", type=Path, help="another docs folder (default: the site's)")
    v.add_argument("--page", action="append", dest="pages", metavar="GLOB", help="only pages matching")
    v.add_argument("--report", type=Path, help="write a JSON report here")
    v.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml")
    v.add_argument("--jobs", type=int, default=0, help="parallel sandboxes (default: CPU count)")
    v.add_argument("--format", choices=["text", "github"], default="text",
                   help="github: each failure as a GitHub Actions annotation on the YAML (or page) line")
    v.add_argument("--no-cache", action="store_true", help="run every block, whatever the cache holds")
    v.add_argument("--cache-dir", type=Path, default=PROJECT / ".cache" / "verify",
                   help="where passing results are kept, by block, world and versions")
    v.add_argument("--shard", type=_shard, metavar="K/N", help="only the K-th of N fixed parts of the blocks")
    v.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    v.add_argument("--summary", type=Path, metavar="FILE",
                   help="append a Markdown table per page and environment (default: $GITHUB_STEP_SUMMARY if set)")
    v.set_defaults(func=_verify)

    d = sub.add_parser("drill", help="simulate each alarm's incident and follow its page: the steps must find "
                                     "the cause, the resolution must fix it")
    d.add_argument("--alarm", action="append", dest="alarms", metavar="ID", help="repeatable; default: every drill")
    d.add_argument("--env", action="append", dest="envs", metavar="ENV", help="repeatable; default: all")
    d.add_argument("--mkdocs", type=Path, default=PROJECT / "mkdocs.yml")
    d.add_argument("--jobs", type=int, default=0, help="parallel sandboxes (default: CPU count)")
    d.add_argument("--format", choices=["text", "github"], default="text",
                   help="github: also each failure as a GitHub Actions annotation on its YAML line")
    d.set_defaults(func=_drill)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RunbookError as err:
        if getattr(args, "format", "text") == "github":
            for problem in err.problems:
                print(problem.github())
        print(err, file=sys.stderr)
        print(f"{len(err.problems)} problem(s) found", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
