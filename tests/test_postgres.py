"""autotune workers sharing one study on a real PostgreSQL server; one is killed mid-trial.

The fixture starts a throw-away PostgreSQL server on loopback (as the `postgres`
user when run as root). Without the server binaries the test fails under CI
(CI=true; .ci/run installs Debian's postgresql package) and is skipped elsewhere.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_tune_worker.py"


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    bindir = _pg_bindir()
    if bindir is None:
        msg = "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's `postgresql` package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    root = tempfile.mkdtemp(prefix="ciss_pg_")
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()

    def run(*cmd):
        subprocess.run(as_user + [os.path.join(bindir, cmd[0]), *cmd[1:]], check=True, capture_output=True, timeout=60)

    try:
        run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run("pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "30", "start", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "tuning")
        yield f"postgresql://postgres@127.0.0.1:{port}/tuning"
    finally:
        subprocess.run(as_user + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _start(url, study, n_trials, out, log):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(WORKER), url, study, str(n_trials), str(out), "1", "3"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE.parent)


def _finished(log_path):
    return {int(n) for n in re.findall(r"Trial (\d+) finished with value", Path(log_path).read_text())}


def test_postgres_two_workers_share_a_study_and_retry_a_killed_workers_trial(postgres_url, tmp_path):
    # The kill races with the victim's own progress; a scenario whose timing went wrong is run again on a new study.
    for attempt in range(3):
        folder = tmp_path / f"attempt{attempt}"
        folder.mkdir()
        try:
            return _scenario(postgres_url, folder, f"two_workers_{attempt}")
        except AssertionError:
            if attempt == 2:
                raise


def _scenario(postgres_url, tmp_path, study_name):
    logs = {k: open(tmp_path / f"{k}.log", "w") for k in ("a", "b")}
    survivor = _start(postgres_url, study_name, 20, tmp_path / "a.parquet", logs["a"])
    victim = _start(postgres_url, study_name, 8, tmp_path / "b.parquet", logs["b"])
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        killed = None
        deadline = time.time() + 40
        while killed is None and time.time() < deadline and victim.poll() is None:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name=study_name, storage=storage)
            except KeyError:  # not created yet
                continue
            for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                mine = t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
                # kill it after it finished a trial, mid-trial: once this trial has reported its first error, so all
                # its parameters are stored (killed between creating the trial and sampling them, the retry could
                # not copy them)
                if mine and t.intermediate_values and _finished(tmp_path / "b.log"):
                    victim.send_signal(signal.SIGSTOP)  # freeze first, then make sure the trial is still running
                    time.sleep(0.5)  # let any write already on its way reach the server
                    if storage.get_trial(t._trial_id).state == optuna.trial.TrialState.RUNNING:
                        victim.send_signal(signal.SIGKILL)
                        killed = t.number
                    else:
                        victim.send_signal(signal.SIGCONT)
                    break
        victim.wait(30)
        assert killed is not None, "the victim worker never ran a trial: " + (tmp_path / "b.log").read_text()[-3000:]
        assert survivor.wait(60) == 0, (tmp_path / "a.log").read_text()[-3000:]
    finally:
        for p in (survivor, victim):
            if p.poll() is None:
                p.kill()
        for f in logs.values():
            f.close()

    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = {t.number: t for t in study.trials}
    finished_a, finished_b = _finished(tmp_path / "a.log"), _finished(tmp_path / "b.log")
    print(f"\nkilled trial {killed}; survivor finished {sorted(finished_a)}, victim finished {sorted(finished_b)}")
    print(pd.DataFrame([(t.number, t.state.name, t.value, t.user_attrs.get("worker"), t.system_attrs.get("failed_trial"))
                        for t in study.trials], columns=["trial", "state", "value", "worker", "retry_of"]).to_string())
    # Every finished trial is in the study, COMPLETE, and was run by one worker only.
    assert len(finished_a) == 20 and not finished_a & finished_b
    assert all(trials[n].state == optuna.trial.TrialState.COMPLETE for n in finished_a | finished_b)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert {t.number for t in complete} == finished_a | finished_b
    assert len({t.user_attrs["trial_seed"] for t in complete}) == len(complete)
    # The killed worker's trial went stale, was failed, and was run again by the survivor.
    assert trials[killed].state == optuna.trial.TrialState.FAIL
    retries = [t for t in complete if t.system_attrs.get("failed_trial") == killed]  # RetryHeartbeatStaleTrialCallback
    assert len(retries) == 1 and retries[0].params == trials[killed].params
    # The best trial's recorded arguments rebuild the survivor's best table exactly.
    sys.path.insert(0, str(HERE))
    from _tune_worker import dataset

    from ciss_vae.pipeline import run_cissvae

    ds = dataset()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rebuilt, model, history = run_cissvae(ds.schema.original, clusters=ds.clusters, device="cpu",
                                              return_history=True, **study.best_trial.user_attrs["run_cissvae_kwargs"])
    finally:
        torch.set_num_threads(n)
    assert history.loc[history.selected, "imputation_error"].item() == study.best_value
    pd.testing.assert_frame_equal(rebuilt, pd.read_parquet(tmp_path / "a.parquet"))
    storage.engine.dispose()
