-- Workflow engine statements (workflows.md §12, §16, §17). Parameters use
-- psycopg's %(name)s style; ids travel as text and are cast to uuid here.
--
-- Every statement that changes an existing workflow runs in a transaction
-- that first locks the workflow rows (wf_lock*, in id order). The lock is FOR NO
-- KEY UPDATE, the strength an UPDATE that keeps the key takes itself: it
-- serializes the engine the same, and leaves the foreign-key checks of child
-- workflows and node rows (FOR KEY SHARE of the referenced workflow) free to
-- proceed while another transaction holds that workflow. Node status
-- changes are compare-and-set on the expected previous statuses, and each one
-- that makes nodes terminal lowers horsies_workflows.nodes_left in the same
-- statement, so the completion check never counts a workflow's nodes.

-- name: wf_insert
-- Start: the workflow row, RUNNING at once; nothing when the id exists. A child
-- (workflows.md §10.3) names its parent node and shares the parent's root.
INSERT INTO horsies_workflows (
    id, name, status, on_error, output_task_index, success_policy, definition_key,
    depth, root_workflow_id, parent_workflow_id, parent_task_index, sent_at, started_at,
    nodes_left
) VALUES (
    %(id)s::uuid, %(name)s, 'RUNNING', %(on_error)s, %(output_task_index)s,
    %(success_policy)s::jsonb, %(definition_key)s, %(depth)s,
    coalesce(%(root_id)s::uuid, %(id)s::uuid), %(parent_id)s::uuid, %(parent_index)s,
    %(sent_at)s, now(), %(nodes_left)s
)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: wf_name_get
-- The name of an existing workflow (a start with a taken id compares it).
SELECT name FROM horsies_workflows WHERE id = %(id)s::uuid;

-- name: wf_nodes_insert
-- Start: every node in one statement; roots READY, the others PENDING.
INSERT INTO horsies_workflow_tasks (
    id, workflow_id, task_index, node_id, task_name, task_kwargs, queue_name, priority,
    dependencies, dependents, ctx_indices, ctx_waiting, args_from, workflow_ctx_from,
    allow_failed_deps, join_type, min_success, task_options, status, skip_when, run_when,
    is_subworkflow, sub_workflow_name, sub_definition_key
)
SELECT gen_random_uuid(), %(workflow_id)s::uuid, n.task_index, n.node_id, n.task_name,
       n.task_kwargs, n.queue_name, n.priority, n.dependencies, n.dependents,
       n.ctx_indices, cardinality(n.ctx_indices), n.args_from, n.workflow_ctx_from,
       n.allow_failed_deps, n.join_type, n.min_success, n.task_options,
       CASE WHEN cardinality(n.dependencies) = 0 THEN 'READY' ELSE 'PENDING' END,
       n.skip_when, n.run_when, n.is_subworkflow, n.sub_workflow_name, n.sub_definition_key
FROM jsonb_to_recordset(%(nodes)s::jsonb) AS n(
    task_index INTEGER, node_id TEXT, task_name TEXT, task_kwargs TEXT, queue_name TEXT,
    priority INTEGER, dependencies INTEGER[], dependents INTEGER[], ctx_indices INTEGER[],
    args_from JSONB, workflow_ctx_from TEXT[], allow_failed_deps BOOLEAN, join_type TEXT,
    min_success INTEGER, task_options TEXT, skip_when TEXT, run_when TEXT,
    is_subworkflow BOOLEAN, sub_workflow_name TEXT, sub_definition_key TEXT
);

-- name: wf_lock
-- Lock workflows by id, in id order (every transaction that changes a workflow starts here).
SELECT id::text, status, on_error
FROM horsies_workflows
WHERE id = ANY(%(ids)s::uuid[])
ORDER BY id
FOR NO KEY UPDATE;

-- name: wf_lock_for_tasks
-- Lock the workflows that own these task rows, in id order.
SELECT w.id::text, w.status, w.on_error
FROM horsies_workflows AS w
WHERE w.id IN (SELECT wt.workflow_id FROM horsies_workflow_tasks AS wt
               WHERE wt.task_id = ANY(%(ids)s::uuid[]))
ORDER BY w.id
FOR NO KEY UPDATE OF w;

-- name: wf_nodes_of_tasks
-- Nodes still waiting on these task rows, with how their tasks ended (terminal ones only).
-- The nodes are found by task id alone (materialized): combined with the status index,
-- which matches most nodes of a large running workflow, the lookup would grow with it.
WITH nodes AS MATERIALIZED (
    SELECT workflow_id, task_index, task_id, status
    FROM horsies_workflow_tasks
    WHERE task_id = ANY(%(ids)s::uuid[])
)
SELECT wt.workflow_id::text, wt.task_index, t.id::text, t.status, t.result
FROM nodes AS wt
JOIN horsies_tasks AS t ON t.id = wt.task_id
WHERE wt.status IN ('ENQUEUED', 'RUNNING')
  AND t.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');

-- name: wf_nodes_settle
-- Make nodes terminal (COMPLETED, FAILED or SKIPPED) from any of the expected statuses
-- (`error` records why a condition skipped a node);
-- lowers nodes_left by what changed and returns the changed nodes with their dependents.
WITH wanted AS (
    SELECT * FROM unnest(%(wf)s::uuid[], %(idx)s::int[], %(status)s::text[], %(result)s::text[],
                         %(error)s::text[])
        AS s(workflow_id, task_index, status, result, error)
), done AS (
    UPDATE horsies_workflow_tasks AS wt
    SET status = wanted.status, result = wanted.result, error = wanted.error,
        completed_at = now()
    FROM wanted
    WHERE wt.workflow_id = wanted.workflow_id AND wt.task_index = wanted.task_index
      AND wt.status = ANY(%(expected)s::text[])
    RETURNING wt.workflow_id, wt.task_index, wt.status, wt.dependents
), counted AS (
    UPDATE horsies_workflows AS w
    SET nodes_left = w.nodes_left - c.n, updated_at = now()
    FROM (SELECT workflow_id, count(*) AS n FROM done GROUP BY workflow_id) AS c
    WHERE w.id = c.workflow_id
)
SELECT workflow_id::text, task_index, status, dependents FROM done;

-- name: wf_error_set
-- on_error "fail": a failed node's TaskError becomes the workflow's error while it runs.
UPDATE horsies_workflows AS w
SET error = e.error, updated_at = now()
FROM unnest(%(wf)s::uuid[], %(error)s::text[]) AS e(workflow_id, error)
WHERE w.id = e.workflow_id AND w.status = 'RUNNING';

-- name: wf_pause_on_error
-- on_error "pause": RUNNING -> PAUSED with the failed node's error (the trigger notifies).
UPDATE horsies_workflows AS w
SET status = 'PAUSED', error = e.error, updated_at = now()
FROM unnest(%(wf)s::uuid[], %(error)s::text[]) AS e(workflow_id, error)
WHERE w.id = e.workflow_id AND w.status = 'RUNNING';

-- name: wf_bump_dependents
-- Count finished dependencies into their dependents (one row per dependency edge that
-- just ended) and return what the readiness rule reads of each dependent.
WITH edges AS (
    SELECT * FROM unnest(%(wf)s::uuid[], %(target)s::int[], %(source)s::int[],
                         %(status)s::text[])
        AS e(workflow_id, target, source, status)
), sums AS (
    SELECT workflow_id, target,
           count(*) FILTER (WHERE status = 'COMPLETED') AS c,
           count(*) FILTER (WHERE status = 'FAILED') AS f,
           count(*) FILTER (WHERE status = 'SKIPPED') AS s,
           array_agg(source) AS sources
    FROM edges GROUP BY workflow_id, target
)
UPDATE horsies_workflow_tasks AS wt
SET deps_completed = wt.deps_completed + sums.c,
    deps_failed = wt.deps_failed + sums.f,
    deps_skipped = wt.deps_skipped + sums.s,
    ctx_waiting = wt.ctx_waiting
        - cardinality(ARRAY(SELECT unnest(wt.ctx_indices) INTERSECT SELECT unnest(sums.sources)))
FROM sums
WHERE wt.workflow_id = sums.workflow_id AND wt.task_index = sums.target
RETURNING wt.workflow_id::text, wt.task_index, wt.status, wt.join_type,
          coalesce(wt.min_success, 0), wt.allow_failed_deps, cardinality(wt.dependencies),
          wt.deps_completed, wt.deps_failed, wt.deps_skipped, wt.ctx_waiting,
          wt.skip_when, wt.run_when;

-- name: wf_nodes_enqueue
-- PENDING/READY -> ENQUEUED while the workflow runs; returns what the task row (or, for
-- a subworkflow node, the child's build) needs.
UPDATE horsies_workflow_tasks AS wt
SET status = 'ENQUEUED', started_at = now()
FROM unnest(%(wf)s::uuid[], %(idx)s::int[]) AS t(workflow_id, task_index),
     horsies_workflows AS w
WHERE wt.workflow_id = t.workflow_id AND wt.task_index = t.task_index
  AND wt.status IN ('PENDING', 'READY')
  AND w.id = wt.workflow_id AND w.status = 'RUNNING'
RETURNING wt.workflow_id::text, wt.task_index, wt.node_id, wt.task_name, wt.queue_name,
          wt.priority, wt.task_kwargs, wt.task_options, wt.args_from, wt.ctx_indices,
          wt.dependencies, wt.is_subworkflow, wt.sub_definition_key, w.depth,
          w.root_workflow_id::text;

-- name: wf_node_results
-- Status, id and stored result of the given nodes (inputs of nodes being enqueued).
SELECT wt.workflow_id::text, wt.task_index, wt.node_id, wt.status, wt.result
FROM horsies_workflow_tasks AS wt
JOIN unnest(%(wf)s::uuid[], %(idx)s::int[]) AS t(workflow_id, task_index)
  ON wt.workflow_id = t.workflow_id AND wt.task_index = t.task_index;

-- name: wf_tasks_insert
-- T1 for enqueued nodes: their task rows, each linked to its node; one wake-up per queue.
WITH rows AS (
    SELECT * FROM unnest(
        %(ids)s::uuid[], %(wf)s::uuid[], %(idx)s::int[], %(names)s::text[],
        %(queues)s::text[], %(priorities)s::int[], %(kwargs)s::text[],
        %(good_until)s::timestamptz[], %(options)s::text[], %(max_retries)s::int[],
        %(shas)s::text[]
    ) AS r(id, workflow_id, task_index, task_name, queue_name, priority, kwargs, good_until,
           task_options, max_retries, enqueue_sha)
), inserted AS (
    INSERT INTO horsies_tasks (
        id, task_name, queue_name, priority, kwargs, status, sent_at, enqueued_at,
        good_until, task_options, max_retries, enqueue_sha
    )
    SELECT id, task_name, queue_name, priority, kwargs, 'PENDING', now(), now(),
           good_until, task_options, max_retries, enqueue_sha
    FROM rows
    RETURNING queue_name
), linked AS (
    UPDATE horsies_workflow_tasks AS wt
    SET task_id = rows.id
    FROM rows
    WHERE wt.workflow_id = rows.workflow_id AND wt.task_index = rows.task_index
)
SELECT count(pg_notify('task_queue_' || q.queue_name, 'batch:' || q.n))
FROM (SELECT queue_name, count(*) AS n FROM inserted GROUP BY queue_name) AS q;

-- name: wf_nodes_started
-- A worker started these tasks: their nodes ENQUEUED -> RUNNING while the workflow runs.
UPDATE horsies_workflow_tasks AS wt
SET status = 'RUNNING', started_at = now()
FROM horsies_workflows AS w
WHERE wt.task_id = ANY(%(ids)s::uuid[]) AND wt.status = 'ENQUEUED'
  AND w.id = wt.workflow_id AND w.status = 'RUNNING';

-- name: wf_finishable
-- Of these workflows, the RUNNING ones with every node terminal.
SELECT id::text FROM horsies_workflows
WHERE id = ANY(%(ids)s::uuid[]) AND status = 'RUNNING' AND nodes_left = 0
  AND completed_at IS NULL;

-- name: wf_outcome_inputs
-- What the completion check reads of one workflow: node statuses by index, its policy
-- and output, whether an error is stored.
SELECT w.output_task_index, w.success_policy, w.error IS NOT NULL,
       array_agg(wt.status ORDER BY wt.task_index)
FROM horsies_workflows AS w
JOIN horsies_workflow_tasks AS wt ON wt.workflow_id = w.id
WHERE w.id = %(id)s::uuid
GROUP BY w.id;

-- name: wf_result_nodes
-- Results the workflow result is made of: the output node, or every sink.
SELECT task_index, node_id, status, result
FROM horsies_workflow_tasks
WHERE workflow_id = %(id)s::uuid
  AND (task_index = %(output)s OR (%(output)s IS NULL AND cardinality(dependents) = 0))
ORDER BY task_index;

-- name: wf_finish
-- RUNNING -> COMPLETED/FAILED with the outcome (the trigger notifies workflow_done);
-- says whether a parent waits for it.
UPDATE horsies_workflows
SET status = %(status)s, result = %(result)s, error = coalesce(%(error)s, error),
    completed_at = now(), updated_at = now()
WHERE id = %(id)s::uuid AND status = 'RUNNING'
RETURNING parent_workflow_id IS NOT NULL;

-- name: wf_status_get
-- A handle's status read.
SELECT status FROM horsies_workflows WHERE id = %(id)s::uuid;

-- name: wf_outcome_get
-- A handle's get(): status, stored result and error.
SELECT status, result, error FROM horsies_workflows WHERE id = %(id)s::uuid;

-- name: wf_node_result_get
-- A handle's result_for(): whether the workflow exists, and the node's stored result.
SELECT w.id IS NOT NULL, wt.status, wt.result
FROM (SELECT %(id)s::uuid AS id) AS q
LEFT JOIN horsies_workflows AS w ON w.id = q.id
LEFT JOIN horsies_workflow_tasks AS wt ON wt.workflow_id = q.id AND wt.node_id = %(node_id)s;

-- name: wf_tasks_get
-- A handle's tasks() and results(): every node of a workflow, by index.
SELECT wt.node_id, wt.task_index, wt.task_name, wt.status, wt.result, wt.started_at,
       wt.completed_at, wt.sub_workflow_id::text, wt.sub_workflow_summary
FROM horsies_workflow_tasks AS wt
WHERE wt.workflow_id = %(id)s::uuid
ORDER BY wt.task_index;

-- name: wf_exists
-- Whether a workflow row exists.
SELECT EXISTS (SELECT 1 FROM horsies_workflows WHERE id = %(id)s::uuid);

-- name: wf_recover_pending
-- Recovery 1: PENDING nodes of RUNNING workflows whose dependencies are all terminal.
SELECT wt.workflow_id::text, wt.task_index, wt.status, wt.join_type,
       coalesce(wt.min_success, 0), wt.allow_failed_deps, cardinality(wt.dependencies),
       wt.deps_completed, wt.deps_failed, wt.deps_skipped, wt.ctx_waiting,
       wt.skip_when, wt.run_when
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS w ON w.id = wt.workflow_id AND w.status = 'RUNNING'
WHERE wt.status = 'PENDING'
  AND wt.deps_completed + wt.deps_failed + wt.deps_skipped >= cardinality(wt.dependencies)
LIMIT %(limit)s;

-- name: wf_recover_ready
-- Recovery 2 and 3: READY nodes of RUNNING workflows with no task row or child yet.
SELECT wt.workflow_id::text, wt.task_index
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS w ON w.id = wt.workflow_id AND w.status = 'RUNNING'
WHERE wt.status = 'READY' AND wt.task_id IS NULL AND wt.sub_workflow_id IS NULL
LIMIT %(limit)s;

-- name: wf_recover_tasks
-- Recovery 5: nodes of RUNNING workflows whose task row ended while the node did not.
SELECT wt.task_id::text
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS w ON w.id = wt.workflow_id AND w.status = 'RUNNING'
JOIN horsies_tasks AS t ON t.id = wt.task_id
WHERE wt.status IN ('ENQUEUED', 'RUNNING')
  AND t.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')
LIMIT %(limit)s;

-- name: wf_recover_finished
-- Recovery 6: RUNNING workflows whose nodes are all terminal, never finalized.
SELECT id::text FROM horsies_workflows
WHERE status = 'RUNNING' AND nodes_left = 0 AND completed_at IS NULL
LIMIT %(limit)s;

-- name: wf_recover_children
-- Recovery 4: child workflows that ended while their parent node still waits, in a
-- parent that is RUNNING, PAUSED or CANCELLED (a cancelled parent's node still records
-- how its child ended). Found from the waiting subworkflow nodes, which are few.
SELECT c.id::text
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS c ON c.id = wt.sub_workflow_id
JOIN horsies_workflows AS p ON p.id = wt.workflow_id
WHERE wt.status IN ('ENQUEUED', 'RUNNING') AND wt.sub_workflow_id IS NOT NULL
  AND c.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
  AND p.status IN ('RUNNING', 'PAUSED', 'CANCELLED')
  AND (%(ids)s::uuid[] IS NULL OR p.id = ANY(%(ids)s::uuid[]))
LIMIT %(limit)s;

-- name: wf_child_link
-- A started child: its parent node links it and becomes RUNNING (§10.3 step 5).
UPDATE horsies_workflow_tasks AS wt
SET sub_workflow_id = l.child_id, status = 'RUNNING', started_at = now()
FROM unnest(%(wf)s::uuid[], %(idx)s::int[], %(child)s::uuid[]) AS l(workflow_id, task_index,
                                                                    child_id)
WHERE wt.workflow_id = l.workflow_id AND wt.task_index = l.task_index
  AND wt.status = 'ENQUEUED';

-- name: wf_child_outcome
-- A child that ended, for its parent node (§10.1, §10.4): where it hangs, how it ended,
-- and how its nodes ended.
SELECT c.parent_workflow_id::text, c.parent_task_index, c.status, c.result, c.error,
       count(wt.*), count(wt.*) FILTER (WHERE wt.status = 'COMPLETED'),
       count(wt.*) FILTER (WHERE wt.status = 'FAILED'),
       count(wt.*) FILTER (WHERE wt.status = 'SKIPPED'), c.output_task_index IS NOT NULL
FROM horsies_workflows AS c
LEFT JOIN horsies_workflow_tasks AS wt ON wt.workflow_id = c.id
WHERE c.id = %(id)s::uuid AND c.parent_workflow_id IS NOT NULL
GROUP BY c.id;

-- name: wf_lock_parent
-- The parent of a child that just ended, without waiting: the parent's lock comes after
-- the child's here, the reverse of every other order, so a parent held elsewhere is left
-- to the next pass of recovery (case 4) instead of risking a deadlock.
SELECT id::text, status, on_error
FROM horsies_workflows
WHERE id = %(id)s::uuid
FOR NO KEY UPDATE SKIP LOCKED;

-- name: wf_node_summary_set
-- The child's summary on its parent node (§10.4).
UPDATE horsies_workflow_tasks
SET sub_workflow_summary = %(summary)s
WHERE workflow_id = %(wf)s::uuid AND task_index = %(idx)s;

-- name: wf_condition_inputs
-- What a node's conditions read (§7): its context nodes, or every dependency.
SELECT wt.workflow_id::text, wt.task_index, wt.task_name,
       CASE WHEN cardinality(wt.ctx_indices) > 0 THEN wt.ctx_indices ELSE wt.dependencies END
FROM horsies_workflow_tasks AS wt
JOIN unnest(%(wf)s::uuid[], %(idx)s::int[]) AS t(workflow_id, task_index)
  ON wt.workflow_id = t.workflow_id AND wt.task_index = t.task_index;

-- name: wf_tree
-- A workflow and every descendant (§10.6), with their statuses.
WITH RECURSIVE tree(id) AS (
    SELECT id FROM horsies_workflows WHERE id = %(id)s::uuid
    UNION ALL
    SELECT w.id FROM horsies_workflows AS w JOIN tree ON w.parent_workflow_id = tree.id
)
SELECT id::text FROM tree;

-- name: wf_set_status
-- Pause, resume and cancel: these workflows from one of the expected statuses to a new
-- one (the trigger notifies workflow_done for PAUSED and CANCELLED).
UPDATE horsies_workflows
SET status = %(status)s, updated_at = now()
WHERE id = ANY(%(ids)s::uuid[]) AND status = ANY(%(expected)s::text[])
RETURNING id::text;

-- name: wf_stop_tasks
-- T10 for nodes of stopped workflows whose task has not started (PENDING or CLAIMED):
-- the task row CANCELLED, the node back to READY without task (paused) or SKIPPED
-- (cancelled). Rows another transaction holds are skipped, not waited for: a claim
-- that holds one starts it (a started task runs to its end), and a cycle writing a
-- retry for one moves it itself once it holds the workflow (tasks_ended).
WITH nodes AS (
    SELECT wt.workflow_id, wt.task_index, wt.task_id
    FROM horsies_workflow_tasks AS wt
    WHERE wt.workflow_id = ANY(%(wf)s::uuid[]) AND wt.status IN ('ENQUEUED', 'RUNNING')
      AND wt.task_id IS NOT NULL
      AND (%(tasks)s::uuid[] IS NULL OR wt.task_id = ANY(%(tasks)s::uuid[]))
), stopped AS (
    UPDATE horsies_tasks AS t
    SET status = 'CANCELLED', claimed = FALSE, claimed_at = NULL,
        claimed_by_worker_id = NULL, claim_expires_at = NULL, updated_at = now()
    WHERE t.id IN (SELECT c.id FROM horsies_tasks AS c JOIN nodes ON c.id = nodes.task_id
                   WHERE c.status IN ('PENDING', 'CLAIMED')
                   FOR UPDATE OF c SKIP LOCKED)
    RETURNING t.id
), moved AS (
    UPDATE horsies_workflow_tasks AS wt
    SET status = %(node_status)s,
        task_id = CASE WHEN %(node_status)s = 'READY' THEN NULL ELSE wt.task_id END,
        started_at = CASE WHEN %(node_status)s = 'READY' THEN NULL ELSE wt.started_at END,
        completed_at = CASE WHEN %(node_status)s = 'READY' THEN NULL ELSE now() END
    FROM stopped
    WHERE wt.task_id = stopped.id
    RETURNING wt.workflow_id, wt.status
), counted AS (
    UPDATE horsies_workflows AS w
    SET nodes_left = w.nodes_left - c.n
    FROM (SELECT workflow_id, count(*) AS n FROM moved WHERE status = 'SKIPPED'
          GROUP BY workflow_id) AS c
    WHERE w.id = c.workflow_id
)
SELECT count(*) FROM moved;

-- name: wf_skip_open_nodes
-- Cancel: nodes that never started (PENDING, READY) become SKIPPED.
WITH skipped AS (
    UPDATE horsies_workflow_tasks AS wt
    SET status = 'SKIPPED', completed_at = now()
    WHERE wt.workflow_id = ANY(%(wf)s::uuid[]) AND wt.status IN ('PENDING', 'READY')
    RETURNING wt.workflow_id
)
UPDATE horsies_workflows AS w
SET nodes_left = w.nodes_left - c.n
FROM (SELECT workflow_id, count(*) AS n FROM skipped GROUP BY workflow_id) AS c
WHERE w.id = c.workflow_id;

-- name: wf_recount_pending
-- Resume: the counters of PENDING nodes counted again from their dependencies' statuses
-- (nodes that ended while the workflow was paused did not count themselves in).
UPDATE horsies_workflow_tasks AS wt
SET deps_completed = c.completed, deps_failed = c.failed, deps_skipped = c.skipped,
    ctx_waiting = c.ctx_waiting
FROM (
    SELECT p.workflow_id, p.task_index,
           count(*) FILTER (WHERE d.status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE d.status = 'FAILED') AS failed,
           count(*) FILTER (WHERE d.status = 'SKIPPED') AS skipped,
           (SELECT count(*) FROM horsies_workflow_tasks AS x
            WHERE x.workflow_id = p.workflow_id AND x.task_index = ANY(p.ctx_indices)
              AND x.status NOT IN ('COMPLETED', 'FAILED', 'SKIPPED')) AS ctx_waiting
    FROM horsies_workflow_tasks AS p
    LEFT JOIN horsies_workflow_tasks AS d
      ON d.workflow_id = p.workflow_id AND d.task_index = ANY(p.dependencies)
    WHERE p.workflow_id = ANY(%(wf)s::uuid[]) AND p.status = 'PENDING'
    GROUP BY p.workflow_id, p.task_index, p.ctx_indices
) AS c
WHERE wt.workflow_id = c.workflow_id AND wt.task_index = c.task_index
RETURNING wt.workflow_id::text, wt.task_index, wt.status, wt.join_type,
          coalesce(wt.min_success, 0), wt.allow_failed_deps, cardinality(wt.dependencies),
          wt.deps_completed, wt.deps_failed, wt.deps_skipped, wt.ctx_waiting,
          wt.skip_when, wt.run_when;

-- name: wf_ready_of
-- Resume: READY nodes of these workflows with no task row or child yet.
SELECT wt.workflow_id::text, wt.task_index
FROM horsies_workflow_tasks AS wt
WHERE wt.workflow_id = ANY(%(wf)s::uuid[]) AND wt.status = 'READY'
  AND wt.task_id IS NULL AND wt.sub_workflow_id IS NULL;

-- name: wf_tasks_stranded
-- Node tasks that went back to PENDING (a retry, a run given back) in workflows that
-- are paused or cancelled: they must not start (§13.5, §13.7).
SELECT wt.task_id::text
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS w ON w.id = wt.workflow_id
JOIN horsies_tasks AS t ON t.id = wt.task_id
WHERE wt.task_id = ANY(%(ids)s::uuid[]) AND w.status IN ('PAUSED', 'CANCELLED')
  AND t.status IN ('PENDING', 'CLAIMED');
