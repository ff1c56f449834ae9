"""Regenerate the SVG screenshots of docs/monitoring.md from a seeded database.

    PYTHONPATH=. python tools/monitor_screenshots.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Creates a scratch database on that server (its user needs CREATEDB), seeds it
with the data of the monitor's tests (tests/integration/monitor_seed.py:
tasks in every status, workers of several ages, workflows in every status),
drives `horsies monitor` with textual's pilot, writes docs/images/monitor-*.svg
and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
SIZE = (160, 48)


async def _shoot(url: str) -> None:
    from horsies.monitor import MonitorApp
    from tests.integration.monitor_seed import make_app, seed_all

    app = make_app(url)
    app.get_broker().ensure_schema()
    ids = seed_all(app, url)
    monitor = MonitorApp(app.get_broker(), listen_url=None)
    OUT.mkdir(parents=True, exist_ok=True)

    async with monitor.run_test(size=SIZE) as pilot:

        async def settle(check: object = None) -> None:
            for _ in range(100):
                await pilot.pause(0.05)
                if not monitor.loading_now:
                    break
            await pilot.pause(0.2)

        for key, name in (("1", "dashboard"), ("2", "workers"), ("3", "tasks"),
                          ("4", "workflows"), ("5", "maintenance")):
            await pilot.press(key)
            await settle()
            monitor.save_screenshot(f"monitor-{name}.svg", str(OUT))
        monitor.open_workflow([ids["workflows"]["RUNNING"]], ids["workflows"]["RUNNING"])
        await settle()
        monitor.save_screenshot("monitor-workflow-detail.svg", str(OUT))
        await pilot.press("escape")
        monitor.open_task([ids["tasks"]["f1"]], ids["tasks"]["f1"])
        await settle()
        monitor.save_screenshot("monitor-task-detail.svg", str(OUT))
    app.get_broker().close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True,
                        help="a server whose user may create databases")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    name = f"horsies_screenshots_{secrets.token_hex(3)}"
    server = args.database_url
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from tests.conftest import with_database

        asyncio.run(_shoot(with_database(server, name)))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('monitor-*.svg')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
