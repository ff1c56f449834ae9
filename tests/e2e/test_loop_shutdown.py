"""Event loops that end right after a send: `asyncio.run(send_async(...))` in a
script must exit, whatever the library's connections were doing."""

from __future__ import annotations

import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.integration.test_unreachable import APP, run_script

SEND_AND_WAIT = textwrap.dedent('''
    import asyncio
    from probe_app import app, probe_add

    app.get_broker().ensure_schema()  # the async pool's first use is then the send


    async def main():
        handle = (await probe_add.send_async(1, 2)).ok_value
        await handle.get_async(timeout_ms=1)


    asyncio.run(main())
''')


def test_two_hundred_processes_each_running_one_loop_all_exit(
    pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "probe_app.py").write_text(APP)

    def one(_: int) -> int:
        try:
            return run_script(SEND_AND_WAIT, tmp_path, pg_url, timeout=30).returncode
        except subprocess.TimeoutExpired:
            return -1  # hung at the loop's shutdown

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(one, range(200)))
    assert codes.count(0) == 200, f"{codes.count(-1)} hung, others: {set(codes) - {0, -1}}"
