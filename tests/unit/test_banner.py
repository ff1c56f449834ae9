"""The start-up banner (cli.md §11)."""

from __future__ import annotations

import hashlib
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest

from horsies.banner import (
    HORSE_LINES,
    WORDMARK_LINES,
    format_banner,
    get_version,
    print_banner,
    render_banner,
)

ANSI = re.compile(r"\033\[[0-9;]*m")

# sha256 of the reference picture and wordmark, lines joined with "\n".
HORSE_SHA256 = "d736cc5fa119d99b9cf5ab7903346dab4412060a31d184533a07604ec6a71d35"
WORDMARK_SEED = (
    "    __                    _",
    "   / /_  ____  __________(_)__  _____",
    "  / __ \\/ __ \\/ ___/ ___/ / _ \\/ ___/      v0.1.0",
    " / / / / /_/ / /  (__  ) /  __(__  )       distributed task queue",
    "/_/ /_/\\____/_/  /____/_/\\___/____/",
)
WORDMARK_SHA256 = "70176a33af8d8c1b31fc7d9805b399fe9d2ffd20200b29639bbe48e081aaebe1"


def _banner(**overrides: Any) -> str:
    values: dict[str, Any] = {
        "app_name": "Horsies",
        "role": "worker",
        "queue_mode": "CUSTOM",
        "queues": ["high", "normal", "low"],
        "broker": "postgresql+psycopg://postgres:****@localhost:5432/horsies",
        "tasks": ["normal_priority_compute", "high_priority_compute", "low_priority_compute"],
        "cluster_wide_cap": 50,
        "version": "0.1.0",
    }
    values.update(overrides)
    return format_banner(**values)


def test_horse_is_the_reference_picture_byte_for_byte() -> None:
    assert len(HORSE_LINES) == 14
    digest = hashlib.sha256("\n".join(HORSE_LINES).encode("utf-8")).hexdigest()
    assert digest == HORSE_SHA256


def test_wordmark_reference_is_pinned() -> None:
    assert hashlib.sha256("\n".join(WORDMARK_SEED).encode()).hexdigest() == WORDMARK_SHA256
    for base, seed in zip(WORDMARK_LINES, WORDMARK_SEED, strict=True):
        assert seed.startswith(base)


def test_layout_matches_the_reference_banner() -> None:
    lines = _banner().split("\n")
    assert lines[0] == ""
    assert tuple(lines[1:15]) == HORSE_LINES
    assert lines[15] == ""
    assert tuple(lines[16:21]) == WORDMARK_SEED
    assert lines[21:] == [
        "",
        "[config]",
        "  .> app:         Horsies",
        "  .> role:        worker",
        "  .> queue_mode:  CUSTOM",
        "  .> queues:      high, normal, low",
        "  .> broker:      postgresql+psycopg://postgres:****@localhost:5432/horsies",
        "  .> cap:         50 (cluster-wide)",
        "",
        "[tasks] (3 registered)",
        "  . high_priority_compute",
        "  . low_priority_compute",
        "  . normal_priority_compute",
        "",
    ]


def test_version_and_tagline_start_at_the_same_column() -> None:
    lines = _banner(version="12.3.4rc1").split("\n")
    assert lines[18].index("v12.3.4rc1") == 43
    assert lines[19].index("distributed task queue") == 43


def test_cap_and_prefetch_are_optional() -> None:
    text = _banner(cluster_wide_cap=None, prefetch_buffer=0)
    assert ".> cap:" not in text and ".> prefetch:" not in text
    text = _banner(cluster_wide_cap=None, prefetch_buffer=4)
    assert "  .> prefetch:    4" in text.split("\n")


def test_keys_are_padded_to_13_characters() -> None:
    for line in _banner(prefetch_buffer=2).split("\n"):
        if line.startswith("  .> "):
            key, value = line[5:18], line[18:]
            assert key.endswith((" ", ":"))
            assert not value.startswith(" ")


def test_no_tasks() -> None:
    lines = _banner(tasks=[]).split("\n")
    assert lines[-2:] == ["[tasks] (0 registered)", ""]


def test_no_colors_by_default_and_colors_when_enabled() -> None:
    assert "\033[" not in _banner()
    colored = _banner(use_colors=True)
    assert ANSI.sub("", colored) == _banner()
    assert f"\033[36m{HORSE_LINES[0]}\033[0m" in colored  # horse cyan
    assert f"\033[93;1m{WORDMARK_LINES[0]}\033[0m" in colored  # wordmark bright yellow bold
    assert "[\033[96;1mconfig\033[0m]" in colored  # section bright cyan bold
    assert "\033[2m.>\033[0m" in colored  # dim bullets
    assert "\033[37;1mapp:         \033[0m" in colored  # key white bold
    assert "\033[97mHorsies\033[0m" in colored  # value bright white
    assert "  \033[2m.\033[0m " in colored  # dim task bullet


def test_get_version_is_a_string() -> None:
    version = get_version()
    assert isinstance(version, str) and version


class Horsies:  # named like the real class: the banner shows the class name
    def __init__(self, config: Any, tasks: list[str], queues: list[str]) -> None:
        self.config = config
        self._tasks = tasks
        self._queues = queues

    def list_tasks(self) -> list[str]:
        return list(self._tasks)

    def get_valid_queue_names(self) -> list[str]:
        return list(self._queues)


def _fake_app(url: str | None = "postgresql://shop:s3cret@db.internal:5432/shop") -> Horsies:
    config = SimpleNamespace(
        queue_mode=SimpleNamespace(name="CUSTOM"),
        broker=SimpleNamespace(database_url=url, embedded_data_dir="/srv/pgdata"),
        cluster_wide_cap=9,
        prefetch_buffer=0,
    )
    return Horsies(config, ["b", "a"], ["payments", "mail", "exports"])


def test_render_banner_from_an_app_masks_the_password() -> None:
    text = render_banner(_fake_app(), "scheduler", version="1.0")
    assert "s3cret" not in text
    assert "  .> broker:      postgresql://shop:****@db.internal:5432/shop" in text
    assert "  .> role:        scheduler" in text
    assert "  .> app:         Horsies" in text
    assert "  .> queues:      payments, mail, exports" in text
    assert "  .> cap:         9 (cluster-wide)" in text
    assert "[tasks] (2 registered)\n  . a\n  . b\n" in text


def test_render_banner_served_queues_override() -> None:
    text = render_banner(_fake_app(), "worker", queues=["mail"], version="1.0")
    assert "  .> queues:      mail" in text


def test_render_banner_embedded_database() -> None:
    text = render_banner(_fake_app(url=None), "worker", version="1.0")
    assert "  .> broker:      embedded PostgreSQL (/srv/pgdata)" in text


@pytest.mark.parametrize("use_colors", [False, True])
def test_print_banner_writes_the_banner_and_a_newline(use_colors: bool) -> None:
    out = io.StringIO()
    print_banner(_fake_app(), "worker", file=out, use_colors=use_colors)
    text = ANSI.sub("", out.getvalue())
    assert text.startswith("\n" + HORSE_LINES[0])
    assert text.endswith("  . b\n\n")


def test_print_banner_colors_follow_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()  # not a terminal
    print_banner(_fake_app(), "worker", file=out)
    assert "\033[" not in out.getvalue()
    monkeypatch.setenv("HORSIES_FORCE_COLOR", "1")
    out = io.StringIO()
    print_banner(_fake_app(), "worker", file=out)
    assert "\033[36m" in out.getvalue()
