"""The training workload's parts that need no second process: data order, stage split,
launch arguments, failure reports, progress serving, checkpoint files."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import fsspec
import pytest
import torch

from tests.s3server import S3Server
from torchyard.api.training import TrainingJobSpec
from torchyard.workloads.report import PERMANENT, PermanentError
from torchyard.workloads.train.checkpoint import CheckpointStore
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.inputs import check_fit, load_data
from torchyard.workloads.train.launcher import failure_result, last_words, launch_from
from torchyard.workloads.train.local import free_port
from torchyard.workloads.train.modes.base import CheckpointState
from torchyard.workloads.train.modes.model import microbatches, partition
from torchyard.workloads.train.progress import serve_progress, write_progress
from torchyard.workloads.train.schedule import Schedule, rank_share
from torchyard.workloads.train.worker import record_permanent

# -- data order --------------------------------------------------------------------------


def test_every_step_has_the_global_batch_and_epochs_visit_each_sample_once():
    schedule = Schedule(samples=100, global_batch=32, epochs=3, seed=7)
    assert (schedule.steps_per_epoch, schedule.total_steps) == (3, 9)
    epoch = torch.cat([schedule.batch(step) for step in range(3)])
    assert len(epoch) == 96 and len(set(epoch.tolist())) == 96  # the last 4 are dropped
    assert not torch.equal(schedule.batch(0), schedule.batch(3))  # a new order per epoch
    assert Schedule(samples=100, global_batch=32, epochs=3, seed=7, max_steps=4).total_steps == 4


def test_a_resumed_job_sees_the_same_batches_as_an_uninterrupted_one():
    uninterrupted = Schedule(samples=1000, global_batch=64, epochs=5, seed=3)
    order = [uninterrupted.batch(step) for step in range(uninterrupted.total_steps)]
    resumed = Schedule(samples=1000, global_batch=64, epochs=5, seed=3)
    for step in (40, 17, 70):  # any step, in any order, without the ones before it
        assert torch.equal(resumed.batch(step), order[step])
    other_seed = Schedule(samples=1000, global_batch=64, epochs=5, seed=4)
    assert not torch.equal(other_seed.batch(0), order[0])


def test_ranks_split_the_global_batch_whatever_it_divides_by():
    batch = torch.arange(10)
    shares = [rank_share(batch, rank, 3) for rank in range(3)]
    assert torch.equal(torch.cat(shares), batch)
    assert [len(share) for share in shares] == [4, 3, 3]


def test_a_batch_larger_than_the_dataset_is_refused():
    with pytest.raises(PermanentError, match="globalBatchSize 64 is larger") as refused:
        Schedule(samples=50, global_batch=64, epochs=1, seed=0)
    assert refused.value.reason == "BatchLargerThanDataset"


# -- pipeline stages ---------------------------------------------------------------------


def test_stages_are_contiguous_non_empty_and_balanced():
    assert partition([4160, 0, 4160, 0, 650], 2) == [(0, 1), (1, 5)]
    assert partition([1, 1, 1, 1], 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert partition([10, 10, 10, 10, 10, 10], 3) == [(0, 2), (2, 4), (4, 6)]
    assert partition([100, 1, 1, 1], 2) == [(0, 1), (1, 4)]


def test_microbatches_are_equal_and_at_most_two_per_stage():
    assert microbatches(64, 2) == 4
    assert microbatches(60, 4) == 6
    assert microbatches(7, 2) == 1  # a prime batch is one microbatch, not unequal parts


# -- launch ------------------------------------------------------------------------------


def _spec(replicas: int, procs: int, **fields) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(
        {
            "parallelism": {"mode": "data", "replicas": replicas, "procsPerReplica": procs},
            "model": {"uri": "file:///m", "format": "torchyard"},
            "dataset": {"uri": "builtin://digits"},
            "output": {"uri": "file:///out"},
            **fields,
        }
    )


def test_the_operator_environment_becomes_torchrun_arguments():
    env = {
        "MASTER_ADDR": "job-worker-0.job.ns.svc",
        "MASTER_PORT": "29500",
        "WORLD_SIZE": "8",
        "NODE_RANK": "3",
        "NPROC_PER_NODE": "2",
    }
    args = launch_from(env, _spec(4, 2)).torchrun_args()
    assert args[:5] == [
        "--nnodes=4",
        "--nproc-per-node=2",
        "--node-rank=3",
        "--master-addr=job-worker-0.job.ns.svc",
        "--master-port=29500",
    ]
    assert "--rdzv-backend=static" in args and "--max-restarts=0" in args
    assert args[-2:] == ["--module", "torchyard.workloads.train.worker"]
    pet = {"PET_NNODES": "4", "PET_NPROC_PER_NODE": "2", "PET_NODE_RANK": "1"}
    assert launch_from(pet, _spec(4, 2)).node_rank == 1


def test_recovery_in_place_meets_at_an_elastic_rendezvous_hosted_by_replica_0():
    from torch.distributed.run import parse_args

    spec = _spec(4, 2, recovery="inPlace", backoffLimit=5)
    operator = {
        "MASTER_ADDR": "job-worker-0.job",
        "MASTER_PORT": "29500",
        "WORLD_SIZE": "8",
        "NPROC_PER_NODE": "2",
        "TORCHYARD_JOB_UID": "7a1e-uid",
        "TORCHYARD_RENDEZVOUS_TIMEOUT": "60",
    }
    hosts = {}
    for rank in (0, 1):
        env = {**operator, "NODE_RANK": str(rank), "TORCHYARD_NODE_ADDR": f"job-worker-{rank}.job"}
        args = launch_from(env, spec).torchrun_args()
        assert "--rdzv-backend=c10d" in args
        assert "--rdzv-endpoint=job-worker-0.job:29500" in args
        assert "--rdzv-id=7a1e-uid" in args  # one rendezvous per job
        assert f"--local-addr=job-worker-{rank}.job" in args
        assert "--max-restarts=5" in args
        # elastic: the rendezvous, not the launcher, orders the nodes
        assert not [a for a in args if a.startswith(("--node-rank", "--master-addr"))]
        assert "--rdzv-backend=static" not in args and "--max-restarts=0" not in args
        (conf,) = [a.removeprefix("--rdzv-conf=") for a in args if a.startswith("--rdzv-conf=")]
        settings = dict(item.split("=", 1) for item in conf.split(","))
        hosts[rank] = settings["is_host"]
        assert settings["join_timeout"] == "60"
        assert args[:2] == ["--nnodes=4", "--nproc-per-node=2"]
        assert args[-2:] == ["--module", "torchyard.workloads.train.worker"]
        parsed = parse_args(args)  # what torchrun is given, as it reads it
        assert (parsed.rdzv_backend, parsed.max_restarts) == ("c10d", 5)
        assert parsed.local_addr == f"job-worker-{rank}.job"
    assert hosts == {0: "true", 1: "false"}  # only replica 0 hosts the store
    # recovery gang (the default) keeps the static rendezvous and no restarts in the pod
    gang = launch_from({**operator, "NODE_RANK": "1"}, _spec(4, 2, backoffLimit=5))
    assert "--rdzv-backend=static" in gang.torchrun_args()
    assert "--max-restarts=0" in gang.torchrun_args()


def test_without_the_environment_one_replica_runs_locally():
    launch = launch_from({}, _spec(1, 2))
    assert (launch.nnodes, launch.nproc_per_node, launch.node_rank) == (1, 2, 0)
    assert launch.master_addr == "127.0.0.1"


def test_an_environment_that_contradicts_the_spec_is_refused():
    with pytest.raises(PermanentError, match="asks for 2 x 1"):
        launch_from({"WORLD_SIZE": "4", "NPROC_PER_NODE": "2"}, _spec(2, 1))
    with pytest.raises(PermanentError, match="NODE_RANK 2"):
        launch_from({"NODE_RANK": "2"}, _spec(2, 1))


# -- failures ----------------------------------------------------------------------------


def _failure(tmp_path, rank: int, exitcode: int, error_file: bool = False, local: int = -1):
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    path = tmp_path / f"error-{rank}.json"
    if not error_file:
        path.unlink(missing_ok=True)
    local_rank = rank if local < 0 else local
    return ProcessFailure(
        local_rank=local_rank, pid=1000 + rank, exitcode=exitcode, error_file=str(path)
    )


def test_a_permanent_failure_of_any_rank_makes_the_pod_fail_permanently(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(tmp_path / "error-1.json"))
    record_permanent(PermanentError("ModelUnavailable", "file:///m: not found"))
    code, result = failure_result(
        {0: _failure(tmp_path, 0, -15), 1: _failure(tmp_path, 1, PERMANENT, error_file=True)}
    )
    assert code == PERMANENT
    assert result == {"reason": "ModelUnavailable", "message": "file:///m: not found", "rank": 1}


def test_a_crash_names_the_rank_that_failed_first_hand(tmp_path):
    code, result = failure_result({0: _failure(tmp_path, 0, -15), 1: _failure(tmp_path, 1, 137)})
    assert code == 1
    assert result["reason"] == "WorkerFailed" and result["rank"] == 1
    assert result["message"].startswith("rank 1 ended with exit code 137")
    assert "rank 0 ended with signal SIGTERM" in result["message"]


def test_a_rank_killed_by_a_signal_is_described_by_its_last_words(tmp_path):
    """An abort in C++ leaves no error file: the end of the rank's stderr, which torchrun
    keeps under its log dir (--tee), says what happened."""
    launch = launch_from({"WORLD_SIZE": "4", "NODE_RANK": "1", "NPROC_PER_NODE": "2"}, _spec(2, 2))
    assert f"--log-dir={tmp_path}" in launch.torchrun_args(str(tmp_path))
    stderr = tmp_path / "none_abc" / "attempt_0" / "1" / "stderr.log"
    stderr.parent.mkdir(parents=True)
    said = "terminate called after throwing an instance of 'gloo::IoException'"
    stderr.write_text("\n".join([f"noise {n}" for n in range(20)] + [said, "  what(): closed"]))
    failures = {3: _failure(tmp_path, 3, -6, local=1)}  # global rank 3: local rank 1
    words = last_words(str(tmp_path), failures)
    assert words[3].endswith(f"{said}\n  what(): closed")
    code, result = failure_result(failures, words)
    assert code == 1
    assert result["message"].startswith("rank 3 ended with signal SIGABRT: ")
    assert "gloo::IoException" in result["message"] and "noise 0" not in result["message"]


# -- progress ----------------------------------------------------------------------------


def test_progress_is_served_once_reported(tmp_path):
    path = tmp_path / "progress.json"
    server = serve_progress(path, free_port())
    assert server is not None
    url = f"http://127.0.0.1:{server.server_address[1]}/progress"
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url, timeout=5)
        assert missing.value.code == 404
        write_progress(path, {"step": 3, "totalSteps": 10, "loss": 1.5})
        with urllib.request.urlopen(url, timeout=5) as reply:
            served = json.loads(reply.read())
    finally:
        server.shutdown()
    assert served["step"] == 3 and served["totalSteps"] == 10
    assert served["updateTime"].endswith("Z")
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no temporary left


def test_progress_serving_can_be_turned_off(tmp_path):
    assert serve_progress(tmp_path / "progress.json", 0) is None


# -- checkpoints -------------------------------------------------------------------------

ALONE = Rank(rank=0, world=1, local_rank=0, backend="gloo", device=torch.device("cpu"))


def _save(store: CheckpointStore, step: int) -> None:
    state = CheckpointState(shared={"w": torch.full((3,), float(step))}, own={"rng": step})
    store.save(step, state, {"layout": {"mode": "data"}, "loss": 1.0 / step})


class Place:
    """Where a test's checkpoints are, looked at and damaged without the code under test."""

    def __init__(self, uri: str, server: S3Server | None = None) -> None:
        self.uri = uri
        self.fs = server.filesystem() if server else fsspec.filesystem("file")
        self.root = uri.removeprefix("s3://").removeprefix("file://").rstrip("/")

    def steps(self) -> list[str]:
        return sorted({key[len(self.root) + 1 :].split("/")[0] for key in self.fs.find(self.root)})

    def put(self, step: str, name: str, data: bytes) -> None:
        self.fs.makedirs(f"{self.root}/{step}", exist_ok=True)
        self.fs.pipe_file(f"{self.root}/{step}/{name}", data)

    def get(self, step: str, name: str) -> bytes:
        return bytes(self.fs.cat_file(f"{self.root}/{step}/{name}"))


@pytest.fixture(params=["file", "s3"])
def place(request: pytest.FixtureRequest, tmp_path) -> Place:
    """A checkpoint.uri on a volume (file://) and on s3 (moto_server)."""
    if request.param == "file":
        return Place(f"file://{tmp_path}")
    server: S3Server = request.getfixturevalue("s3_env")
    return Place(server.uri(f"checkpoints/{tmp_path.name}"), server)


def test_checkpoints_restore_the_latest_and_keep_two(place: Place):
    store = CheckpointStore(place.uri, ALONE)
    assert store.latest() is None
    for step in (5, 10, 15):
        _save(store, step)
    latest = store.latest()
    assert latest is not None and latest["step"] == 15
    shared, own = store.load(latest)
    assert shared is not None and torch.equal(shared["w"], torch.full((3,), 15.0))
    assert own == {"rng": 15}
    assert place.steps() == ["step-000000010", "step-000000015"]


def test_a_checkpoint_is_not_there_until_committed(place: Place):
    store = CheckpointStore(place.uri, ALONE)
    _save(store, 5)
    # A crash while step 10 was written: its files exist, its manifest does not.
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    place.put("step-000000010", "shared.pt", buffer.getvalue())
    assert store.latest()["step"] == 5
    _save(store, 10)  # the next attempt replaces the half-written directory
    assert store.latest()["step"] == 10


def test_a_damaged_checkpoint_is_refused(place: Place):
    store = CheckpointStore(place.uri, ALONE)
    _save(store, 5)
    place.put("step-000000005", "shared.pt", place.get("step-000000005", "shared.pt")[:-10])
    with pytest.raises(PermanentError, match="does not match the digest") as refused:
        store.load(store.latest())
    assert refused.value.reason == "CheckpointCorrupt"
    assert f"{place.uri}/step-000000005/shared.pt" in str(refused.value)


# -- inputs ------------------------------------------------------------------------------


def _spec_for(tmp_path, features: torch.Tensor, labels: torch.Tensor | None, mode: str = "data"):
    tensors = {"features": features} if labels is None else {"features": features, "labels": labels}
    torch.save(tensors, tmp_path / "data.pt")
    return TrainingJobSpec.model_validate(
        {
            "parallelism": {"mode": mode, "replicas": 2},
            "model": {"uri": "file:///m", "format": "torchyard"},
            "dataset": {"uri": f"file://{tmp_path}/data.pt"},
            "hyperparameters": {"globalBatchSize": 4},
            "output": {"uri": "file:///out"},
        }
    )


def test_data_without_labels_is_refused(tmp_path):
    spec = _spec_for(tmp_path, torch.randn(8, 4), None)
    with pytest.raises(PermanentError, match="every sample needs one") as refused:
        load_data(spec)
    assert refused.value.reason == "DatasetUnlabelled"


def test_a_model_that_does_not_fit_the_data_is_refused(tmp_path):
    spec = _spec_for(tmp_path, torch.randn(8, 4), torch.arange(8) % 3)
    inputs = load_data(spec)
    with pytest.raises(PermanentError, match="logits of shape") as refused:
        check_fit(spec, torch.nn.Linear(4, 2), inputs, world=2)  # 2 logits for 3 classes
    assert refused.value.reason == "ModelDoesNotFitData"
    check_fit(spec, torch.nn.Linear(4, 3), inputs, world=2)


def test_mode_model_needs_a_sequential_with_a_layer_per_rank(tmp_path):
    spec = _spec_for(tmp_path, torch.randn(8, 4), torch.arange(8) % 3, mode="model")
    inputs = load_data(spec)
    with pytest.raises(PermanentError, match="needs at least one layer per rank"):
        check_fit(spec, torch.nn.Sequential(torch.nn.Linear(4, 3)), inputs, world=2)
    with pytest.raises(PermanentError, match=r"splits an nn\.Sequential"):
        check_fit(spec, torch.nn.Linear(4, 3), inputs, world=2)
