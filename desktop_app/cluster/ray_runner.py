"""``batch --ray``: the lines spread over Ray actors, each holding one loaded engine.

One actor per GPU where the cluster has GPUs (``num_gpus=1``), else CPU actors of
``--ray-cpus-per-actor`` CPUs each (``local:N``: N of them in a private runtime on this machine).
Work goes out by voice in batches of ``--batch-size`` lines; each voice's clips go into the object
store once. An actor keeps at most two batches in hand, so a fast one takes more. A dead actor is
restarted by Ray and its batch retried there (``max_restarts``, ``max_task_retries``); a batch
whose actor is gone for good goes to another. Tasks run at least once, so a line may come back
twice: the driver writes each line once. Results come back as they finish and the driver writes
them (files, history, manifest); the actors never touch the output folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from desktop_app.batch.work import LineJob, MadeLine
from desktop_app.errors import RequestError
from desktop_app.session.models import ModelSpec

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # batches an actor holds at once
RESTARTS = 4  # an actor's restarts, and retries of its tasks, before its work goes elsewhere
HOW_TO_GET = (
    "--ray needs Ray, the cluster extra: pip install '.[cluster]' in the app's folder (or "
    "pip install 'ray[default]>=2.40'); the bundle does not carry it"
)


def check_ray() -> Any:
    """This module, once Ray is importable.

    Raises:
        RequestError: Ray is not installed (how to get it).
    """
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RequestError(HOW_TO_GET) from None
    import sys

    return sys.modules[__name__]


class SpeakerActor:
    """One engine on one GPU (or some CPUs); makes batches of one voice's lines."""

    def __init__(self, spec: ModelSpec, cpus: int, name: str) -> None:
        import torch

        from desktop_app.session.models import load_models
        from desktop_app.session.say import checker_for

        if spec.device != "cuda" and not torch.cuda.is_available():
            torch.set_num_threads(max(1, cpus))
        self.name = name
        models = load_models(spec)
        self.engine = models.engine
        self.checker = checker_for(models, "full" if spec.check else "off")

    def pid(self) -> int:
        return os.getpid()

    def make(self, jobs: Sequence[LineJob], voice: Any, candidates: int) -> list[MadeLine]:
        """Make ``jobs`` with ``voice``: their (reference clips, trained adapter or None), sent
        once per voice rather than with every line."""
        from desktop_app.batch.work import safe_make_lines

        jobs = [
            dataclasses.replace(
                j,
                request=dataclasses.replace(j.request, references=voice[0], adapter=voice[1]),
            )
            for j in jobs
        ]
        return safe_make_lines(
            self.engine, jobs, checker=self.checker, candidates=candidates, worker=self.name
        )


def parse_address(address: str) -> tuple[str, int | None]:
    """``local[:N]`` -> ("local", N or None); anything else -> (address, None)."""
    if address == "local" or address.startswith("local:"):
        count = address.partition(":")[2]
        if count and (not count.isdigit() or int(count) < 1):
            raise RequestError(f"--ray local:N needs a whole number of actors, not {count!r}")
        return "local", int(count) if count else None
    return address, None


def connect(address: str, cpus_per_actor: int) -> tuple[Any, int, bool]:
    """Start or join Ray; the module, the number of actors and whether they get GPUs.

    Raises:
        RequestError: the cluster cannot be reached, or has no room for one actor.
    """
    where, count = parse_address(address)
    if where == "local":
        loopback_only()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if cpus_per_actor < 1:
        raise RequestError("--ray-cpus-per-actor must be at least 1")
    quiet: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    try:
        if where == "local":
            actors = count or max(1, (os.cpu_count() or 1) // cpus_per_actor)
            ray.init(
                num_cpus=actors * cpus_per_actor,
                object_store_memory=78_643_200 * 2,
                _temp_dir=tempfile.mkdtemp(prefix="csm-ray-"),
                **quiet,
            )
        else:
            _check_reachable(where)
            ray.init(address=where, **quiet)
    except RequestError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError: Ray's words for "no cluster"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RequestError(
            f"cannot reach the Ray cluster at {address}: {first}; start it with "
            "`ray start --head` (see the README) or use --ray local"
        ) from None
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if where == "local":
        return ray, actors, False
    if gpus:
        return ray, gpus, True
    actors = int(resources.get("CPU", 0)) // cpus_per_actor
    if actors < 1:
        ray.shutdown()
        raise RequestError(
            f"the Ray cluster at {address} has {resources.get('CPU', 0):g} CPUs: too few for "
            f"an actor of {cpus_per_actor}"
        )
    return ray, actors, False


LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> None:
    """Make the private runtime of ``--ray local`` listen on this machine only.

    Ray's gRPC servers (GCS, raylet, workers, the driver) bind to every interface, and
    ``ray.init(_node_ip_address="127.0.0.1")`` is turned back into the machine's outside address.
    Ray's own switch for a single-machine runtime (set to 0, the value it has on macOS and
    Windows) makes the node's address the loopback, and then every server binds to it alone
    (checked by listing the runtime's sockets: tests/cluster). Set in the environment, so Ray's
    processes inherit it, and in Ray's constants in case Ray was imported already.
    """
    os.environ[LOOPBACK_SWITCH] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def _check_reachable(address: str) -> None:
    """A host:port that answers nothing is an error at once (Ray would wait for minutes)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RequestError(f"--ray {address}: give local[:N], auto or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise RequestError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` (see the README) or use --ray local"
        ) from None


@contextlib.contextmanager
def connected(address: str, cpus_per_actor: int) -> Iterator[tuple[Any, int, bool]]:
    """:func:`connect`, and Ray shut down afterwards."""
    ray, count, gpus = connect(address, cpus_per_actor)
    try:
        yield ray, count, gpus
    finally:
        ray.shutdown()


def run(
    address: str,
    cpus_per_actor: int,
    spec: ModelSpec,
    jobs: dict[str | None, list[LineJob]],
    batch_size: int,
    candidates: int,
    finished: Callable[[MadeLine], None],
    started: Callable[[], None] = lambda: None,
) -> None:
    """Make every job on the cluster; ``finished`` gets each line as it comes back;
    ``started`` once every actor has loaded its engine.

    Raises:
        RequestError: no cluster, or every actor failed to start (the first reason).
    """
    if not jobs:
        return
    with connected(address, cpus_per_actor) as (ray, count, gpus):
        from ray.exceptions import RayActorError, RayTaskError

        options: dict[str, Any] = {"max_restarts": RESTARTS, "max_task_retries": RESTARTS}
        options |= {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": cpus_per_actor}
        actor_class = ray.remote(**options)(SpeakerActor)
        device_spec = dataclasses.replace(spec, device="cuda") if gpus else spec
        actors = [
            actor_class.remote(device_spec, cpus_per_actor, f"actor-{i + 1}") for i in range(count)
        ]
        try:  # every engine loaded (a missing model is one clear error, not a failure per line)
            ray.get([actor.pid.remote() for actor in actors])
        except RayActorError as exc:
            cause = getattr(exc, "cause", None) or exc
            message = str(cause).strip().splitlines()[-1] if str(cause).strip() else str(exc)
            raise RequestError(f"the Ray actors could not load the model: {message}") from None
        started()
        # each voice's clips once in the object store; the batches refer to them
        clips = {
            voice: ray.put((group[0].request.references, group[0].request.adapter))
            for voice, group in jobs.items()
        }
        work: deque[tuple[str | None, list[LineJob], int]] = deque()
        for voice, group in jobs.items():
            stripped = [_without_references(job) for job in group]
            for start in range(0, len(stripped), batch_size):
                work.append((voice, stripped[start : start + batch_size], 0))
        pending: dict[Any, tuple[int, tuple[str | None, list[LineJob], int]]] = {}
        alive = set(range(count))
        first_error: list[str] = []

        def feed(index: int) -> None:
            while work and sum(1 for a, _ in pending.values() if a == index) < IN_FLIGHT:
                item = work.popleft()
                voice, batch, _ = item
                ref = actors[index].make.remote(batch, clips[voice], candidates)
                pending[ref] = (index, item)

        for index in range(count):
            feed(index)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, (voice, batch, tries) = pending.pop(ref)
            try:
                made = ray.get(ref)
            except (RayActorError, RayTaskError) as exc:
                reason = (
                    str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                )
                log.warning("actor-%d lost a batch (%s); it goes to another", index + 1, reason)
                first_error.append(reason)
                if isinstance(exc, RayActorError):
                    alive.discard(index)
                if tries + 1 >= RESTARTS or not alive:
                    for job in batch:
                        finished(
                            MadeLine(job.number, None, error=f"failed on the cluster: {reason}")
                        )
                else:
                    work.appendleft((voice, batch, tries + 1))
            else:
                for line in made:
                    finished(line)
            for other in sorted(alive):
                feed(other)
        for _, batch, _ in work:  # left over when every actor is gone
            for job in batch:
                finished(MadeLine(job.number, None, error="no Ray actor was left to make it"))
        if not alive and first_error:
            raise RequestError(f"no Ray actor could make the lines: {first_error[0]}")


def _without_references(job: LineJob) -> LineJob:
    """The job without its voice (clips and adapter), which travels once per voice."""
    request = dataclasses.replace(job.request, references=(), adapter=None)
    return dataclasses.replace(job, request=request)
