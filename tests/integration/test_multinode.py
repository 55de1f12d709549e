"""A sweep across a real two-node Ray cluster on loopback, reached by its address.

The cluster (a head and one more node, one CPU each) is started by Ray's own test utilities in a
separate process, so that it cannot disturb the session's local Ray used by the other tests. The
submission's code reaches the workers inside the jobs, not through a shared folder: it is loaded
from a folder that is deleted before the sweep starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SCRIPT = textwrap.dedent(
    """\
    import json, shutil, sys
    from pathlib import Path

    from ray.cluster_utils import Cluster

    from medarena.arena import Arena, ArenaConfig

    catalogue, state, folder = (Path(a) for a in sys.argv[1:4])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    arena = Arena(ArenaConfig(
        catalogue_dir=catalogue, cache_dir=state / "cache",
        db_url=f"sqlite:///{state / 'leaderboard.db'}", study_url=f"sqlite:///{state / 'st.db'}",
        tracking_uri=f"sqlite:///{state / 'mlflow.db'}", ray_address=cluster.address,
    ))
    stages = []

    def on_stage(text):
        stages.append(text)
        if text == "sweep":  # the code now only exists inside the jobs
            shutil.rmtree(folder)

    try:
        result = arena.submit(folder, "tiny-ct", trials=4, on_stage=on_stage)
        pool = arena.tasks.pools[0]
        print(json.dumps({
            "nodes": sorted(n.node_id for n in cluster.list_all_nodes()),
            "pool_nodes": sorted(pool.node_ids),
            "trial_nodes": [t.node_id for t in result.trials],
            "states": [t.state for t in result.trials],
            "auc": result.scores["auc"].value,
            "workers": result.workers,
        }))
    finally:
        arena.close()
        cluster.shutdown()
    """
)


def test_a_sweep_runs_across_a_two_node_cluster(
    catalogue: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    folder = copy_baseline("logistic-regression")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(catalogue), str(tmp_path / "state"), str(folder)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-5000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["nodes"]) == 2 and report["workers"] == 2
    assert report["pool_nodes"] == report["nodes"]  # one worker on each node
    assert set(report["trial_nodes"]) == set(report["nodes"])  # trials ran on both
    assert report["states"] == ["complete"] * 4 and report["auc"] > 0.5
    assert not folder.exists()
