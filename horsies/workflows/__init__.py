"""Workflows: DAGs of tasks that run as one unit (workflows.md).

`nodes` and `spec` build and validate a DAG; `context` holds what task bodies
receive; the engine (`engine`) moves a started workflow forward inside the
transactions that end its tasks; `handle` watches one.
"""
