"""A connection to an existing Dask cluster (the maintained scheduler, not a home-made one), or a
`ClusterError` that says in one line why there is none.

Why a handshake before `distributed.Client`: the client retries until its timeout and, pointed
at something that is not a Dask scheduler (the dashboard's port, a proxy), fails deep in its
reader (measured: a MemoryError for a 3 EiB frame) and leaves a half-made client whose clean-up
prints a traceback at exit. One `identity` message over Dask's own comm answers, within the
timeout, whether a scheduler is there.
Why the versions check: every worker computes features and scores with its own revbot, pandas,
numpy and LightGBM; the scores are the same as on one machine only if those are the same.
Dask is imported here only, when a command is asked to use a cluster: `revbot --help` and the
single-process path never load it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoring.errors import ClusterError

if TYPE_CHECKING:  # Dask is imported only where a cluster is used
    from distributed import Client

CONNECT_TIMEOUT = 5.0  # seconds: to reach the scheduler, and for a first worker to be there
INSTALL = "install the Dask extra: pip install 'revbot[dask]'"


@dataclass(frozen=True)
class Cluster:
    """A connected client and what it found (for the person waiting)."""

    client: Client
    address: str
    workers: int
    threads: int

    def __str__(self) -> str:
        return (
            f"the Dask cluster at {self.address} ({self.workers} workers, {self.threads} threads)"
        )


def versions() -> dict[str, str]:
    """What must be the same on the client and every worker for the scores to be the same."""
    import importlib.metadata

    import lightgbm
    import numpy
    import pandas

    from scoring.features import FEATURE_VERSION

    try:
        revbot = importlib.metadata.version("revbot")
    except importlib.metadata.PackageNotFoundError:  # a checkout on the path, not installed
        revbot = "unknown"
    return {
        "revbot": revbot,
        "features": str(FEATURE_VERSION),
        "lightgbm": lightgbm.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
    }


def _on_workers():
    """What each worker reports. Made here, not at module level, so that it is pickled by value
    and runs on a worker that lacks revbot (a module-level function is sent by name)."""

    def report() -> dict[str, str]:
        try:
            from scoring.cluster import versions as theirs
        except ImportError:
            return {"revbot": "not installed"}
        return theirs()

    return report


async def _hello(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await asyncio.wait_for(comm.read(), timeout)
    finally:
        comm.abort()


def _handshake(address: str, timeout: float) -> None:
    where = f"the Dask scheduler at {address}"
    try:
        answer = asyncio.run(_hello(address, timeout))
    except (TimeoutError, OSError):
        raise ClusterError(
            f"cannot reach {where} within {timeout:g} s: is `dask scheduler` running there, and "
            "is the address right ([dask] address in revbot.toml, or --dask)?"
        ) from None
    except Exception as exc:  # noqa: BLE001  (anything else: not a Dask peer; see the docstring)
        raise ClusterError(
            f"{address} did not answer as a Dask scheduler ({type(exc).__name__}): the "
            "scheduler's port is the one `dask scheduler` prints (8786 by default), not the "
            "dashboard's"
        ) from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise ClusterError(
            f"{address} is a Dask {kind or 'peer'}, not the scheduler: give the scheduler's "
            "address (`dask scheduler` prints it)"
        )


def check_versions(client: Client) -> None:
    """Raise if a worker runs another revbot, pandas, numpy or LightGBM than this process."""
    ours = versions()
    for worker, theirs in sorted(client.run(_on_workers()).items()):
        wrong = [f"{k} {theirs.get(k, 'missing')} (here {v})" for k, v in ours.items()
                 if theirs.get(k) != v]  # fmt: skip
        if wrong:
            raise ClusterError(
                f"Dask worker {worker} runs {', '.join(wrong)}: install the same revbot, with "
                "the same pandas, numpy and LightGBM, on every worker"
            )


@contextmanager
def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Iterator[Cluster]:
    """A client of the cluster at `address`, closed on leaving. Raises ClusterError (one line)
    when Dask is not installed, nothing answers, the answer is not a scheduler, no worker joins
    within `timeout`, or a worker's versions differ."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(f"Dask is not installed here: {INSTALL}") from None
    _handshake(address, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001  (the handshake passed: the scheduler went away)
        raise ClusterError(
            f"lost the Dask scheduler at {address} while connecting: {exc}"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise ClusterError(
                f"the Dask scheduler at {address} has no workers (none joined within "
                f"{timeout:g} s): start some with `dask worker {address}`"
            ) from None
        check_versions(client)
        info = client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(int(w.get("nthreads", 1)) for w in info.values())
        try:
            yield Cluster(client, address, len(info), threads)
        except _lost() as exc:
            raise ClusterError(
                f"the Dask cluster at {address} failed during the run ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); nothing was saved: "
                "check the workers' logs, then run the command again"
            ) from exc
    finally:
        client.close()


def _lost() -> tuple[type[BaseException], ...]:
    """The errors of a cluster that failed under a run (a worker killed or gone, the scheduler
    gone, a LightGBM worker's socket reset): not bugs of the run, so no traceback."""
    from distributed import CancelledError, TimeoutError
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker
    from lightgbm.basic import LightGBMError

    return (KilledWorker, FutureCancelledError, CancelledError, CommClosedError, TimeoutError,
            LightGBMError)  # fmt: skip
