"""A typed use of `task.node(...)(...)` and `from_node` that a type checker must
accept. tests/unit/test_typed_builder_types.py type-checks it (mypy --strict) and
also builds its spec at run time."""

from __future__ import annotations

from horsies import (
    AppConfig,
    Horsies,
    PostgresConfig,
    TaskError,
    TaskNode,
    TaskResult,
    WorkflowSpec,
    from_node,
)

app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u:p@localhost/db")))


@app.task("download_feed")
def download_feed(feed_url: str, timeout_s: float = 10.0) -> TaskResult[str, TaskError]:
    return TaskResult(ok=feed_url)


@app.task("parse_rates")
def parse_rates(raw: TaskResult[str, TaskError], currency: str) -> TaskResult[int, TaskError]:
    return TaskResult(ok=len(currency))


@app.task("publish_rates")
def publish_rates(
    rates: TaskResult[int, TaskError] | None = None, channel: str = "web"
) -> TaskResult[None, TaskError]:
    return TaskResult(ok=None)


def build() -> WorkflowSpec[int]:
    fetch: TaskNode[str] = download_feed.node(node_id="fetch")(
        feed_url="https://feeds.example.org/rates.xml"
    )
    parse: TaskNode[int] = parse_rates.node(node_id="parse", priority=5)(
        raw=from_node(fetch), currency="EUR"
    )
    publish: TaskNode[None] = publish_rates.node(
        waits_for=[parse], args_from={"rates": parse}, join="any", node_id="publish"
    )(channel="email")
    return app.workflow(
        name="rates", tasks=[fetch, parse, publish], output=parse, definition_key="rates.v1"
    )
