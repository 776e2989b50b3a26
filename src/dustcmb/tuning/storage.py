"""Where a study lives: a journal file on one machine, a database shared by several machines.

- Default: ``<root>/mlruns/optuna.journal``, Optuna's journal file storage. Each process appends
  operations under a file lock and replays the others', so the worker processes of one machine share
  it (Optuna advises against sqlite there: one lock serialises every writer, and they time out).
- ``url``: an RDB URL (``postgresql://user:pw@host/db``, ``mysql://…``, ``sqlite:///path``) that
  ``dustcmb tune --storage URL`` on several machines shares.

Both send heartbeats: a trial RUNNING without one for two intervals belongs to a dead process and
is failed, then retried once with the same rates by the next process that looks. Optuna (5.0)
gives heartbeats to its RDB storage only, so :class:`HeartbeatJournalStorage` adds them to the
journal, as a trial system attribute.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from dustcmb import tracking
from dustcmb.errors import ConfigError

HEARTBEAT_S = 60  # a RUNNING trial without a heartbeat for two intervals belongs to a dead process
HEARTBEAT_KEY = "dustcmb:heartbeat"  # POSIX time of a trial's last heartbeat in the journal


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Journal file storage whose trials send heartbeats, like :class:`optuna.storages.RDBStorage`'s.

    Parameters
    ----------
    path : Path
        The journal file, created on first use.
    interval : int
        Seconds between a running trial's heartbeats; stale after ``2 · interval`` without one.
    stale_callback : callable, optional
        Called as ``stale_callback(study, trial)`` for each trial failed as stale.
    """

    def __init__(self, path: Path, interval: int,
                 stale_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None):
        super().__init__(JournalFileBackend(str(path)))
        self._interval, self._stale_callback = interval, stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, datetime.now().timestamp())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = datetime.now().timestamp()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - _last_sign_of_life(t) > 2 * self._interval]

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_callback


def _last_sign_of_life(trial: FrozenTrial) -> float:
    """POSIX time of the trial's last heartbeat or of its start, whichever is later.

    A retry inherits the stale trial's system attributes, its old heartbeat included, so the start
    counts too: a trial is alive from it until two intervals pass without a newer heartbeat.
    """
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(trial.system_attrs.get(HEARTBEAT_KEY, 0.0), started)


def journal_path(root: str | Path | None = None) -> Path:
    """The default study storage: a journal file next to the MLflow database."""
    mlruns = tracking.tracking_root(root) / "mlruns"
    mlruns.mkdir(parents=True, exist_ok=True)
    return mlruns / "optuna.journal"


def open_storage(root: str | Path | None = None, url: str | None = None) -> optuna.storages.BaseStorage:
    """The study storage with heartbeats: the journal file under ``root``, or the database at ``url``.

    A trial left RUNNING by a killed process is failed and retried once.
    """
    if url is not None and "://" not in url:
        raise ConfigError(f"--storage {url!r}: give a database URL, e.g. postgresql://user:pw@host/db")
    with warnings.catch_warnings():  # Optuna flags heartbeats experimental; tests/test_tuning.py covers our use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
        if url is None:
            return HeartbeatJournalStorage(journal_path(root), HEARTBEAT_S, retry)
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=2 * HEARTBEAT_S,
                                          heartbeat_stale_trial_callback=retry)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and re-enqueue once) the study's trials whose process stopped sending heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
