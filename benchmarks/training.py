"""Training throughput: samples/s with 1 and 2 ranks in each parallelism mode, and how
closely each run's loss follows the single-process run.

Every run is the real workload (`torchyard workload train`, torch's elastic launcher,
gloo on CPU or NCCL on GPUs) started as local "pods" by torchyard.workloads.train.local,
on the same data, initial weights, seed and global batch. samples/s is the workload's
own figure (the training loop, without process start-up); the loss-parity column is the
largest difference, over all steps, from the 1-rank data run's loss. Each rank runs one
intra-op thread (--threads): the figures compare ranks, one core each, and on a machine
shared with other work more threads than free cores make OpenMP stall, not speed up.

    .venv/bin/python benchmarks/training.py                     # CPU, digits, small MLP
    .venv/bin/python benchmarks/training.py --samples 65536 --features 1024 \\
        --hidden 4096 4096 --batch 4096 --ranks 1             # GPU-sized (gpu_check.sh)

--resume-exact N measures bit-exact resume instead: per mode, on 2 "pods" of 1 rank
(--resume-layout), one uninterrupted run and N runs in which a random rank dies at a
random step after the first checkpoint (TORCHYARD_FAULT_RANK, TORCHYARD_FAULT_AT_STEP)
and the job is restarted in place, as the operator's gang restart does; it counts the
resumed artifacts whose digest equals the uninterrupted one's, and times the recovery
from the workers' logs: from the kill until every process of the attempt has ended, and
from the restart until the resumed job's first step (process start, rendezvous,
restore). All runs of a mode are the same job (TORCHYARD_JOB_UID): an artifact records
its job.

    .venv/bin/python benchmarks/training.py --resume-exact 5 --steps 40

With --recovery gang inPlace it also runs each mode with spec.recovery inPlace: the
killed rank stops its whole pod (TORCHYARD_FAULT_SCOPE=pod), only that pod is started
again while the others stay up and meet it at the elastic rendezvous, and the table
compares the time from the kill to the resumed job's next step.

--memory measures instead each rank's peak resident memory (VmHWM, polled from
/proc/<pid>/status of the rank processes while they run) in modes data and gradient on
1 pod of 2 ranks, in the same invocation: what sharding gradients and optimizer state
saves over a DDP replica. The figures include the Python/torch runtime every rank
carries; the difference between the modes is what matters. The ranks run with glibc's
MALLOC_MMAP_THRESHOLD_ fixed (MEMORY_ENV), so that freed tensors leave resident memory.

    .venv/bin/python benchmarks/training.py --memory --samples 2048 --features 1024 \\
        --hidden 2048 2048 --batch 64 --steps 5
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from torchyard.storage import local_path, read_manifest
from torchyard.workloads.artifacts import save_artifact
from torchyard.workloads.models import mlp
from torchyard.workloads.train.local import Replica, run_replicas

RUNS = [("data", 1), ("data", 2), ("gradient", 1), ("gradient", 2), ("model", 2)]


def initial_model(root: Path, features: int, hidden: list[int]) -> str:
    uri = f"file://{root}/initial"
    torch.manual_seed(0)
    kwargs = {"in_features": features, "hidden": hidden, "classes": 10}
    save_artifact(
        uri,
        mlp(**kwargs),
        base={"factory": "torchyard.workloads.models:mlp", "kwargs": kwargs},
    )
    return uri


def dataset(root: Path, samples: int | None, features: int) -> str:
    """builtin://digits, or a synthetic labelled set of the given size."""
    if samples is None:
        return "builtin://digits"
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(samples, features, generator=generator)
    # Labels a linear model can learn, so that the loss falls.
    labels = (data @ torch.randn(features, 10, generator=generator)).argmax(1)
    path = root / "data.pt"
    torch.save({"features": data, "labels": labels}, path)
    return f"file://{path}"


def run(
    mode: str, ranks: int, root: Path, common: dict[str, Any], repeat: int, threads: int
) -> dict[str, Any]:
    """The best of `repeat` runs: on a shared machine the fastest is the least disturbed."""
    runs = [
        run_once(mode, ranks, root / f"{mode}-{ranks}-{n}", common, threads) for n in range(repeat)
    ]
    return max(runs, key=lambda r: r["samplesPerSecond"])


def run_once(
    mode: str, ranks: int, workdir: Path, common: dict[str, Any], threads: int
) -> dict[str, Any]:
    spec = {
        **common,
        "parallelism": {"mode": mode, "replicas": 1, "procsPerReplica": ranks},
        "output": {"uri": f"file://{workdir}/model"},
    }
    began = time.monotonic()
    replicas = run_replicas(spec, workdir, env={"OMP_NUM_THREADS": str(threads)}, timeout=600)
    wall = time.monotonic() - began
    if replicas[0].returncode != 0:
        sys.exit(f"{mode} on {ranks} ranks failed:\n{replicas[0].log[-3000:]}")
    result = replicas[0].result()
    figures = read_manifest(local_path(spec["output"]["uri"]))["training"]
    return {
        "backend": figures["backend"],
        "mode": mode,
        "ranks": ranks,
        "samplesPerSecond": result["samplesPerSecond"],
        "finalLoss": result["finalLoss"],
        "history": figures["lossHistory"],
        "wall": wall,
    }


def resume_exact(
    mode: str,
    root: Path,
    common: dict[str, Any],
    args: argparse.Namespace,
    chaos: random.Random,
    recovery: str = "gang",
) -> dict[str, Any]:
    """One uninterrupted run of `mode` and args.resume_exact killed-and-resumed ones,
    recovered by a gang restart or in place (`recovery`)."""
    steps, every = args.steps, args.checkpoint_every
    replicas, procs = args.resume_layout
    job = {"TORCHYARD_JOB": f"TrainingJob/exact-{mode}", "TORCHYARD_JOB_UID": f"uid-{mode}"}
    env = {"OMP_NUM_THREADS": str(args.threads), **job}
    root = root / recovery

    def spec(workdir: Path) -> dict[str, Any]:
        return {
            **common,
            "parallelism": {"mode": mode, "replicas": replicas, "procsPerReplica": procs},
            "checkpoint": {"uri": f"file://{workdir}/checkpoints", "intervalSteps": every},
            "output": {"uri": f"file://{workdir}/model"},
            "recovery": recovery,
        }

    unplanned: list[str] = []

    def launch(
        workdir: Path, extra: dict[str, str] | None = None, recreate: int = 0
    ) -> list[Replica]:
        return run_replicas(
            spec(workdir), workdir, env={**env, **(extra or {})}, timeout=600, recreate=recreate
        )

    def finish(workdir: Path, extra: dict[str, str] | None = None) -> list[Replica]:
        """Run to success, with gang restarts as the operator would (up to 2): a
        failure nobody injected is counted and its logs shown, not hidden."""
        for _ in range(3):
            replicas = launch(workdir, extra)
            failed = [r for r in replicas if r.returncode != 0]
            if not failed:
                return replicas
            unplanned.append(workdir.name)
            for replica in failed:
                print(
                    f"{mode} {workdir.name}: replica {replica.index} failed unplanned "
                    f"(exit {replica.returncode}):\n{replica.log[-4000:]}",
                    file=sys.stderr,
                )
        sys.exit(f"{mode} {workdir.name}: failed 3 times")

    reference = finish(root / f"{mode}-uninterrupted")
    expected = reference[0].result()["artifact"]["digest"]
    runs = []
    for n in range(args.resume_exact):
        step = chaos.randrange(every, steps)
        # In place, replica 0 hosts the rendezvous: a rank of another pod dies.
        victim = chaos.randrange(procs if recovery == "inPlace" else 0, replicas * procs)
        pod = victim // procs  # ranks fill the pods in order
        workdir = root / f"{mode}-killed-{n}"
        fault = {"TORCHYARD_FAULT_AT_STEP": str(step), "TORCHYARD_FAULT_RANK": str(victim)}
        if recovery == "inPlace":
            fault["TORCHYARD_FAULT_SCOPE"] = "pod"
            resumed = launch(workdir, fault, recreate=1)
            crashed, exited, restarted = resumed, float("nan"), float("nan")
            if any(r.returncode for r in resumed):
                sys.exit(f"{mode}: recovery in place failed:\n{resumed[pod].log[-4000:]}")
        else:
            crashed = launch(workdir, fault)
            exited = time.time()
            if crashed[pod].returncode == 0:
                sys.exit(f"{mode}: rank {victim} was to die before step {step} but did not")
            restarted = time.time()
            resumed = finish(workdir, fault)  # the gang restart: same job, same place
        result = resumed[0].result()
        killed = log_time(crashed[pod].log, "exits abruptly")
        again = f"step {result['resumedFromStep'] + 1}/"
        # Replica 0's log holds that step twice when it stayed up: the resumed one is last.
        first = last_log_time(resumed[0].log, again) if recovery == "inPlace" else None
        first = first or log_time(resumed[0].log, again, r"step \d+/")
        runs.append(
            {
                "victim": victim,
                "step": step,
                "resumedFrom": result["resumedFromStep"],
                "identical": result["artifact"]["digest"] == expected,
                "digest": result["artifact"]["digest"],
                "exit": exited - killed,
                "restart": first - restarted,
                "next": first - killed,
            }
        )
    return {
        "mode": mode,
        "recovery": recovery,
        "expected": expected,
        "runs": runs,
        "unplanned": unplanned,
    }


def log_time(log: str, text: str, pattern: str | None = None) -> float:
    """The wall-clock time of the first log line containing `text` (or, failing that,
    matching `pattern`), from the workers' logging timestamps."""
    lines = log.splitlines()
    found = next((line for line in lines if text in line), None)
    if found is None and pattern is not None:
        found = next((line for line in lines if re.search(pattern, line)), None)
    if found is None:
        sys.exit(f"no log line with {text!r} in:\n{log[-3000:]}")
    # torchrun's --tee puts "[default<local rank>]:" before a worker's lines.
    stamp = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", found)
    if stamp is None:
        sys.exit(f"no timestamp in the log line {found!r}")
    return datetime.strptime(stamp.group(), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def last_log_time(log: str, text: str) -> float | None:
    """The time of the last log line containing `text`, None if none does."""
    found = [line for line in log.splitlines() if text in line]
    return log_time(found[-1], text) if found else None


def print_resume_exact(results: list[dict[str, Any]], args: argparse.Namespace, seed: int) -> None:
    print(
        f"\ntorch {torch.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        f"{args.resume_layout[0]} pods x {args.resume_layout[1]} ranks, {args.steps} steps, "
        f"checkpoint every {args.checkpoint_every}, "
        f"global batch {args.batch}; kills drawn with --chaos-seed {seed}\n"
    )
    for result in results:
        runs = result["runs"]
        same = sum(run["identical"] for run in runs)
        expected = result["expected"]
        name = f"{result['mode']}, recovery {result['recovery']}"
        print(f"{name}: {same}/{len(runs)} artifacts bit-identical ({expected})")
        if result["unplanned"]:
            print(f"  unplanned failures (restarted): {', '.join(result['unplanned'])}")
    header = ("mode", "recovery", "run", "killed rank", "before step", "resumed from")
    header += ("identical", "kill→all exited s", "restart→first step s", "kill→next step s")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if i > 1 else ":---" for i in range(len(header))) + "|")
    for result in results:
        for n, run in enumerate(result["runs"]):
            row = (
                result["mode"],
                result["recovery"],
                n,
                run["victim"],
                run["step"],
                run["resumedFrom"],
                "yes" if run["identical"] else f"NO {run['digest'][:19]}",
                f"{run['exit']:.1f}",
                f"{run['restart']:.1f}",
                f"{run['next']:.1f}",
            )
            print("| " + " | ".join(map(str, row)).replace("nan", "-") + " |")
    print(
        "\ngang: kill→all exited: from the killed rank's exit until every process of the "
        "attempt had ended (the launchers notice and stop the other ranks); restart→first "
        "step: from starting the same pods again until the resumed job's first step "
        "(process start, rendezvous, loading the checkpoint). A cluster adds the "
        "operator's gang restart (deleting and scheduling every pod) between the two. "
        "inPlace: the killed rank stops its pod, which is started again at once while the "
        "other pods stay up (a cluster adds recreating that one pod). kill→next step: "
        "from the kill until the resumed job's first step, in both."
    )


# glibc serves large blocks from the heap once its adaptive mmap threshold has grown, and
# a freed heap block stays resident: the peak RSS would then count memory torch freed
# long ago. A fixed threshold maps every tensor over 128 KiB on its own and unmaps it when
# freed, so that resident memory follows the live tensors.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def rank_processes() -> dict[int, int]:
    """{pid: rank} of this process's descendants that are torch ranks (RANK set)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    ranks: dict[int, int] = {}
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                ranks[pid] = int(item[5:])
    return ranks


def peak_memory(mode: str, root: Path, common: dict[str, Any], threads: int) -> dict[int, int]:
    """Each rank's peak resident set (bytes) in a run of `mode` on 1 pod of 2 ranks."""
    spec = {
        **common,
        "parallelism": {"mode": mode, "replicas": 1, "procsPerReplica": 2},
        "output": {"uri": f"file://{root}/{mode}-memory/model"},
    }
    replicas: list[Replica] = []
    runner = threading.Thread(
        target=lambda: replicas.extend(
            run_replicas(
                spec,
                root / f"{mode}-memory",
                env=MEMORY_ENV | {"OMP_NUM_THREADS": str(threads)},
                timeout=600,
            )
        )
    )
    runner.start()
    peaks: dict[int, int] = {}
    while runner.is_alive():
        for pid, rank in rank_processes().items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if found:  # the high-water mark only grows: the last reading is the peak
                peaks[rank] = max(peaks.get(rank, 0), int(found.group(1)) * 1024)
        time.sleep(0.02)
    runner.join()
    if not replicas or replicas[0].returncode != 0:
        sys.exit(f"{mode} memory run failed:\n{replicas[0].log[-3000:] if replicas else ''}")
    if sorted(peaks) != [0, 1]:
        sys.exit(f"{mode}: saw ranks {sorted(peaks)} only; were the steps too quick to poll?")
    return peaks


def print_memory(
    peaks: dict[str, dict[int, int]], parameters: int, features: int, args: argparse.Namespace
) -> None:
    mib = 1024 * 1024
    print(
        f"\ntorch {torch.__version__}, {os.cpu_count()} cores; MLP "
        f"{features}-{'-'.join(map(str, args.hidden))}-10 ({parameters:,} parameters, "
        f"{parameters * 4 / mib:.1f} MiB fp32), AdamW, global batch {args.batch}, "
        f"{args.steps} steps, 1 pod x 2 ranks\n"
    )
    print("| mode | rank | peak RSS MiB | vs data MiB |")
    print("|:---|---:|---:|---:|")
    for mode, per_rank in peaks.items():
        for rank, peak in sorted(per_rank.items()):
            delta = (peak - peaks["data"][rank]) / mib if "data" in peaks else 0.0
            print(f"| {mode} | {rank} | {peak / mib:.1f} | {delta:+.1f} |")
    print(
        "\npeak RSS: the rank process's VmHWM, runtime included. A DDP replica (data) "
        "holds the full gradients, DDP's buckets and Adam's two moments for every "
        "parameter; mode gradient holds 1/N of the gradients and of the moments."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256, help="global batch size")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--features", type=int, default=64, help="with --samples")
    parser.add_argument("--samples", type=int, help="synthetic data of this size")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to run")
    parser.add_argument("--modes", nargs="+", default=["data", "gradient", "model"])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    parser.add_argument("--repeat", type=int, default=2, help="runs per row; the best counts")
    parser.add_argument(
        "--resume-exact",
        type=int,
        metavar="N",
        help="instead: N killed-and-resumed runs per mode against one uninterrupted run",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="instead: each rank's peak memory in modes data and gradient, 2 ranks",
    )
    parser.add_argument("--checkpoint-every", type=int, default=10, help="with --resume-exact")
    parser.add_argument(
        "--resume-layout",
        type=int,
        nargs=2,
        default=[2, 1],
        metavar=("REPLICAS", "PROCS"),
        help="with --resume-exact: pods and processes per pod (GPUs: 1 pod, a process per GPU)",
    )
    parser.add_argument(
        "--chaos-seed", type=int, help="with --resume-exact: seed of the kills' ranks and steps"
    )
    parser.add_argument(
        "--recovery",
        nargs="+",
        choices=["gang", "inPlace"],
        default=["gang"],
        help="with --resume-exact: how a killed job recovers (spec.recovery); both compare",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="torchyard-bench-") as scratch:
        root = Path(scratch)
        features = args.features if args.samples else 64
        common = {
            "model": {"uri": initial_model(root, features, args.hidden), "format": "torchyard"},
            "dataset": {"uri": dataset(root, args.samples, features)},
            "hyperparameters": {
                "epochs": 100_000,
                "maxSteps": args.steps,
                "globalBatchSize": args.batch,
                "learningRate": 0.001,
                "seed": 1,
            },
        }
        if args.resume_exact:
            seed = args.chaos_seed
            if seed is None:
                seed = random.SystemRandom().randrange(2**32)
            chaos = random.Random(seed)
            exact = [
                resume_exact(mode, root, common, args, chaos, recovery)
                for recovery in args.recovery
                for mode in args.modes
            ]
            print_resume_exact(exact, args, seed)
            return
        if args.memory:
            peaks = {
                mode: peak_memory(mode, root, common, args.threads)
                for mode in ("data", "gradient")
                if mode in args.modes
            }
            parameters = sum(p.numel() for p in mlp(features, args.hidden, 10).parameters())
            print_memory(peaks, parameters, features, args)
            return
        runs = [(mode, ranks) for mode, ranks in RUNS if mode in args.modes and ranks in args.ranks]
        # The parity reference is always the 1-rank data run.
        if ("data", 1) not in runs:
            runs.insert(0, ("data", 1))
        results = [run(m, n, root, common, args.repeat, args.threads) for m, n in runs]

    reference = {step: loss for step, loss in results[0]["history"]}
    device = f"cuda x{torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    print(
        f"\ntorch {torch.__version__}, {device}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}; MLP {features}-{'-'.join(map(str, args.hidden))}-10, "
        f"global batch {args.batch}, {args.steps} steps, AdamW, "
        f"{args.threads} thread(s) per rank, best of {args.repeat}\n"
    )
    header = (
        "mode",
        "ranks",
        "backend",
        "samples/s",
        "vs 1 rank",
        "final loss",
        "max |Δloss|",
        "wall s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if i else ":---" for i in range(len(header))) + "|")
    single = {r["mode"]: r["samplesPerSecond"] for r in results if r["ranks"] == 1}
    base = single.get("data", results[0]["samplesPerSecond"])
    for result in results:
        parity = max(abs(loss - reference[step]) for step, loss in result["history"])
        own = single.get(result["mode"], base)
        row = (
            result["mode"],
            result["ranks"],
            result["backend"],
            f"{result['samplesPerSecond']:.0f}",
            f"{result['samplesPerSecond'] / own:.2f}x",
            f"{result['finalLoss']:.5f}",
            f"{parity:.1e}",
            f"{result['wall']:.1f}",
        )
        print("| " + " | ".join(map(str, row)) + " |")
    print(
        "\nmax |Δloss|: largest difference from the 1-rank data run's loss over all steps. "
        "mode model has no 1-rank run (it needs 2 ranks); its 'vs 1 rank' is against data."
    )


if __name__ == "__main__":
    main()
