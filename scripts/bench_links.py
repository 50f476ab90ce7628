"""How long the link check takes on the real site: builds it once, then times the check alone."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.data.load import load  # noqa: E402
from runbook.site import links  # noqa: E402
from runbook.site.build import site_url  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--site", type=Path, help="an already built site (default: build one)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    cat, url = load(ROOT / "runbook_data"), site_url(ROOT / "mkdocs.yml")
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp:
        site, rendered = args.site, None
        if site is None:
            start = time.perf_counter()
            proc = links.build(ROOT / "mkdocs.yml", Path(tmp))
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            print(f"site build: {time.perf_counter() - start:.2f} s")
            site, rendered = Path(tmp) / "site", Path(tmp) / "rendered"
        times, problems = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            problems = links.check(site, ROOT, cat, url, rendered)
            times.append(time.perf_counter() - start)
        pages = links.read_site(site)
    count = sum(len(p.links) for p in pages.values())
    print(
        f"link check: {count} links on {len(pages)} pages, {len(problems)} problem(s); "
        f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms over {args.runs} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
