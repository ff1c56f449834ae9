"""Uses of `task.node(...)(...)` that a type checker must reject.
tests/unit/test_typed_builder_types.py type-checks it (mypy --strict) and expects
exactly the errors marked `# expect: <mypy error code>`, on those lines."""

from __future__ import annotations

from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskNode, TaskResult

app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u:p@localhost/db")))


@app.task("download_feed")
def download_feed(feed_url: str, timeout_s: float = 10.0) -> TaskResult[str, TaskError]:
    return TaskResult(ok=feed_url)


def build() -> None:
    download_feed.node()(feed_url=42)  # expect: arg-type
    download_feed.node()(feed_url="u", retries=3)  # expect: call-arg
    download_feed.node()(timeout_s=1.0)  # expect: call-arg
    download_feed.node(priority="high")  # expect: arg-type
    download_feed.node(join="some")  # expect: arg-type
    download_feed.node(node="x")  # expect: call-arg


def wrong_node_type() -> TaskNode[int]:
    return download_feed.node()(feed_url="u")  # expect: return-value
