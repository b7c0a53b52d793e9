"""Results are a record: merging by standing, meta of the union, the writer lock, file modes,
vanished cells, corrupt cache entries, and paths typed in another folder."""

from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from repro_matrix import store
from repro_matrix.cli import main, resolve_paths
from repro_matrix.containers import cache
from repro_matrix.containers.engine import LABEL, ImageInfo
from repro_matrix.errors import UsageError
from repro_matrix.model import Case, Cell, CellRecord, Claim, OutcomeRule, Status, VersionSelection
from repro_matrix.options import build_parser
from repro_matrix.report.render import render_results
from repro_matrix.run import results_lock
from repro_matrix.run.record import CaseRecorder
from repro_matrix.spec import plan
from repro_matrix.verdict.baseline import alert_changes, compare
from tests.factories import record

R, N, OF, CI, T, C, U = (Status.REPRODUCED, Status.NOT_REPRODUCED, Status.OTHER_FAILURE,
                       Status.CANNOT_INSTALL, Status.TIMEOUT, Status.CANNOT_TEST,
                       Status.UNAVAILABLE)


def rec(python: str, version: str, status: Status, key: str = "k") -> CellRecord:
    return record(python, version, status, f"was {status.value}",
                      input_key=key if status is not U else "")


# ---- standing order --------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "new", "replaces"), [
    (None, U, True),
    (R, N, True), (N, R, True),          # a decided cell changes with a decided outcome
    (R, OF, False), (N, T, False), (R, CI, False), (N, C, False),  # lower standing: kept
    (R, U, False), (OF, U, False), (CI, U, False),  # an outage never overwrites a real run
    (OF, R, True), (CI, N, True), (U, R, True), (U, CI, True), (U, U, True), (T, OF, True),
])
def test_a_record_gives_way_only_to_the_same_or_better_standing(
        stored: Status | None, new: Status, replaces: bool) -> None:
    old = None if stored is None else rec("3.9", "1.0", stored)
    assert store.supersedes(rec("3.9", "1.0", new), old) is replaces


def test_standing_orders_decided_over_real_runs_over_outages() -> None:
    assert {store.standing(s) for s in (R, N)} == {store.DECIDED}
    assert {store.standing(s) for s in (OF, CI, T, C)} == {store.RAN}
    assert store.standing(U) == store.OUTAGE
    assert store.DECIDED > store.RAN > store.OUTAGE


# ---- merging a run into the stored case ------------------------------------------------------


def _case(tmp_path: Path) -> Case:
    repro = tmp_path / "repro.py"
    repro.write_text("raise SystemExit(0)\n")
    return Case("demo", "pkg", "pkg", VersionSelection(), ("3.9", "3.11"), repro,
                OutcomeRule(("BOOM",)), Claim(first_fixed="1.1"))


def _plan(case: Case, pythons: tuple[str, ...], versions: tuple[str, ...]) -> plan.CasePlan:
    cells = tuple(Cell("demo", p, v) for p in pythons for v in versions)
    return plan.CasePlan(case=case, versions=versions, pythons=pythons, cells=cells)


FULL_META = {"case": "demo", "package": "pkg", "claim": {"first_fixed": "1.1"},
             "versions": ["1.0", "1.1", "2.0"], "pythons": ["3.9", "3.11"],
             "plan_cells": [f"demo/py{p}/{v}" for p in ("3.9", "3.11")
                            for v in ("1.0", "1.1", "2.0")],
             "release_dates": {"1.0": "2020-01-01", "1.1": "2020-02-01", "2.0": "2021-01-01"},
             "bases": {"3.9": {"provider": "debian"}, "3.11": {"provider": "debian"}}}
FULL = [rec("3.9", "1.0", R), rec("3.9", "1.1", N), rec("3.9", "2.0", N),
        rec("3.11", "1.0", R), rec("3.11", "1.1", N), rec("3.11", "2.0", N)]


def _stored_full(results: Path) -> None:
    store.write_cells(results, "demo", FULL, dict(FULL_META))


def _slice_meta(pythons: list[str], versions: list[str]) -> dict[str, object]:
    return {"case": "demo", "package": "pkg", "claim": {"first_fixed": "1.1"},
            "versions": versions, "pythons": pythons,
            "plan_cells": [f"demo/py{p}/{v}" for p in pythons for v in versions],
            "release_dates": {v: "2020-02-01" for v in versions},
            "bases": {p: {"provider": "debian"} for p in pythons}}


def test_a_slice_merges_into_the_stored_case_and_keeps_every_other_record(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    render_results(results)
    verdict_before = (results / "demo" / "verdict.json").read_text()
    recorder = CaseRecorder(_plan(_case(tmp_path), ("3.9",), ("1.1",)), results,
                             _slice_meta(["3.9"], ["1.1"]), {})
    recorder.add(rec("3.9", "1.1", N, key="new"))
    recorder.flush()
    meta, records = store.read_cells(results / "demo" / "cells.json")
    assert [r.cell.id for r in records] == [r.cell.id for r in FULL]
    assert {r.cell.id: r.input_key for r in records}["demo/py3.9/1.1"] == "new"
    # The meta describes the union, so tables, shards and merges see every stored cell.
    assert meta["versions"] == FULL_META["versions"] and meta["pythons"] == ["3.9", "3.11"]
    assert meta["plan_cells"] == FULL_META["plan_cells"]
    assert meta["release_dates"]["2.0"] == "2021-01-01"
    assert set(meta["bases"]) == {"3.9", "3.11"}
    render_results(results)
    assert (results / "demo" / "verdict.json").read_text() == verdict_before


def test_an_outage_keeps_the_decided_record_and_says_so(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    recorder = CaseRecorder(_plan(_case(tmp_path), ("3.11",), ("1.0", "1.1")), results,
                             _slice_meta(["3.11"], ["1.0", "1.1"]), {})
    recorder.add(rec("3.11", "1.0", U))
    recorder.add(rec("3.11", "1.1", U))
    recorder.flush()
    _, records = store.read_cells(results / "demo" / "cells.json")
    assert [r.status for r in records] == [r.status for r in FULL]
    line = recorder.kept_line()
    assert line is not None and line.startswith("demo: kept 2 stored record(s) over an "
                                                "infrastructure outage of this run (2 unavailable)")


def test_a_cell_decided_again_the_same_way_keeps_its_record_and_changes_nothing(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    recorder = CaseRecorder(_plan(_case(tmp_path), ("3.9",), ("1.0", "1.1")), results,
                             {**FULL_META}, {})
    stored = recorder.records["demo/py3.9/1.0"]
    # Decided without a run (e.g. not for this Python): a new record, only its time differs.
    recorder.add(replace(stored, finished_at="2099-01-01T00:00:00Z"))
    assert recorder.records["demo/py3.9/1.0"] == stored and recorder.unchanged()
    recorder.add(replace(recorder.records["demo/py3.9/1.1"], status=R, reason="new"))
    assert not recorder.unchanged()
    # The case run another way (another matrix file) is a change too, with the same records.
    other = CaseRecorder(_plan(_case(tmp_path), ("3.9",), ("1.0",)), results,
                         {**FULL_META, "matrix_digest": "other"}, {})
    assert not other.unchanged()

def test_replace_starts_over(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    recorder = CaseRecorder(_plan(_case(tmp_path), ("3.9",), ("1.0",)), results,
                             _slice_meta(["3.9"], ["1.0"]), {}, start_over=True)
    assert recorder.discarded == len(FULL)
    recorder.add(rec("3.9", "1.0", U))
    recorder.flush()
    meta, records = store.read_cells(results / "demo" / "cells.json")
    assert [(r.cell.id, r.status) for r in records] == [("demo/py3.9/1.0", U)]
    assert meta["versions"] == ["1.0"]


def test_an_unreadable_stored_case_is_refused_not_overwritten(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    cells = results / "demo" / "cells.json"
    cells.write_text(cells.read_text().replace('"schema_version": 1', '"schema_version": 99'))
    before = cells.read_text()
    with pytest.raises(UsageError) as refused:
        CaseRecorder(_plan(_case(tmp_path), ("3.9",), ("1.0",)), results, {}, {})
    assert "schema 99" in refused.value.one_line() and "--replace" in refused.value.one_line()
    assert cells.read_text() == before


def test_top_level_reports_cover_every_case_folder(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    other = [record("3.9", "1.0", N, "", case="other")]
    store.write_cells(results, "other", other, {"case": "other", "claim": {}})
    render_results(results)
    other_verdict = (results / "other" / "verdict.json").stat().st_mtime_ns
    verdicts = render_results(results, ["demo"])
    assert [case for case, _ in verdicts] == ["demo"]
    report = (results / "report.md").read_text()
    assert "### demo" in report or "demo" in report.split("\n", 5)[-1]
    assert "other" in report and "other" in (results / "report.html").read_text()
    assert (results / "other" / "verdict.json").stat().st_mtime_ns == other_verdict


# ---- baseline: vanished and undecided --------------------------------------------------------


def test_baseline_reports_vanished_cells_and_decided_to_undecided() -> None:
    before = {r.cell.id: r for r in FULL}
    now = [rec("3.9", "1.0", R), rec("3.9", "1.1", CI), *FULL[3:]]
    changes = compare("demo", True, True, now, before)
    assert changes.alert
    assert changes.vanished == ("demo/py3.9/2.0: vanished (was not reproduced)",)
    assert changes.undecided == ("demo/py3.9/1.1: not reproduced → cannot install "
                                 "(no longer decided)",)


def test_baseline_reports_a_vanished_case(tmp_path: Path) -> None:
    baseline, results = tmp_path / "baseline", tmp_path / "results"
    _stored_full(baseline)
    store.write_cells(baseline, "gone", [record("3.9", "1.0", N, "", case="gone")],
                      {"case": "gone", "claim": {}})
    render_results(baseline)
    _stored_full(results)
    render_results(results)
    assert alert_changes(results, baseline) == [
        f"gone: vanished (in the baseline, not in {results})"]


# ---- files follow the umask; the folder is checked before any cell ---------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_results_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        path = tmp_path / "out.json"
        store.write_atomic(path, "{}\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


_CHECK_WRITABLE = """
import sys
from pathlib import Path
from repro_matrix import store
from repro_matrix.errors import UsageError
try:
    store.check_writable(Path(sys.argv[1]))
except UsageError as exc:
    print(exc.one_line())
    sys.exit(2)
"""


def _as_root_without_dac_override() -> None:
    """In the child, before it starts Python: root drops the capabilities that let it write
    through permission bits, from the bounding set (so the exec'd Python has none of them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_an_unwritable_results_folder_is_one_usage_error(tmp_path: Path) -> None:
    """A folder without write permission, checked in a child process; as root (CI) the child
    has lost the capability to write through permission bits, so the folder is read-only to
    it as it is to any user."""
    tmp_path.chmod(0o500)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHECK_WRITABLE, str(tmp_path / "results")],
            capture_output=True, text=True, timeout=60, check=False,
            preexec_fn=_as_root_without_dac_override if os.geteuid() == 0 else None)
    finally:
        tmp_path.chmod(0o700)
    assert child.returncode == 2, child.stdout + child.stderr
    assert "results folder not writable (Permission denied)" in child.stdout
    assert not (tmp_path / "results").exists()


def test_a_read_only_results_folder_is_one_usage_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(UsageError, match="results folder not writable"):
        store.check_writable(tmp_path / "results")


# ---- one writer per results folder -----------------------------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from repro_matrix.run import results_lock
with results_lock.hold(Path(sys.argv[1]), "python -m repro_matrix run --slow", print):
    print("holding", flush=True)
    time.sleep(60)
"""


def _holder(results: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(results)], text=True,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_writer_is_refused_naming_the_first(tmp_path: Path) -> None:
    results = tmp_path / "results"
    holder = _holder(results)
    try:
        with pytest.raises(UsageError) as refused, results_lock.hold(results, "second", print):
            pass
        line = refused.value.one_line()
        assert f"pid {holder.pid}" in line and "run --slow" in line
        assert "\n" not in line
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    results = tmp_path / "results"
    holder = _holder(results)
    holder.kill()  # SIGKILL: the kernel drops the flock, the file still names the holder
    holder.wait()
    said: list[str] = []
    with results_lock.hold(results, "next", said.append):
        holder_now = json.loads((results / ".lock").read_text())
        assert holder_now["pid"] == os.getpid() and holder_now["command"] == "next"
    assert said == [f"previous run (pid {holder.pid}) ended without releasing "
                    f"{results / '.lock'}; continuing"]
    assert (results / ".lock").read_text() == ""  # released in order


def test_report_refuses_while_a_run_holds_the_folder(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    _stored_full(results)
    holder = _holder(results)
    try:
        assert main(["report", "--results", str(results)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"pid {holder.pid}" in err


# ---- caches ----------------------------------------------------------------------------------


def test_a_corrupt_or_foreign_index_cache_entry_is_a_miss(tmp_path: Path) -> None:
    from repro_matrix.resolve.index import IndexClient

    client = IndexClient(tmp_path, index_url="https://index.invalid/simple/")
    other = IndexClient(tmp_path, index_url="https://other.invalid/simple/")
    assert client.cache_dir != other.cache_dir  # keyed by the index URL
    fetched: list[str] = []

    def fetch(name: str) -> dict[str, object]:
        fetched.append(name)
        return {"files": []}

    client._fetch = fetch  # type: ignore[method-assign]
    client._payload("pkg")
    client._payload("pkg")
    assert fetched == ["pkg"]  # a hit the second time
    (client.cache_dir / "pkg.json").write_text("{not json")
    assert client._payload("pkg") == {"files": []}
    assert fetched == ["pkg", "pkg"]


def test_index_cache_lifetime_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from repro_matrix.resolve.index import IndexClient

    monkeypatch.setenv("REPRO_MATRIX_INDEX_TTL", "0")
    assert IndexClient(tmp_path, index_url="x/").ttl_s == 0
    monkeypatch.setenv("REPRO_MATRIX_INDEX_TTL", "soon")
    with pytest.raises(UsageError, match="REPRO_MATRIX_INDEX_TTL"):
        IndexClient(tmp_path, index_url="x/")


def test_corrupt_lock_and_build_failure_entries_are_misses(tmp_path: Path) -> None:
    from repro_matrix.containers.build import _remembered
    from repro_matrix.resolve.lock import _read_lock

    broken = tmp_path / "entry.json"
    for text in ("{oops", "[]", '{"lock": {"cutoff": 1}}', '{"format": 99, "lock": {}}'):
        broken.write_text(text)
        assert _read_lock(broken) is None
        assert _remembered(broken) is None
    broken.write_text(json.dumps({"ok": False, "image_ref": "t", "image_id": "",
                                  "log_excerpt": "x", "failed_step": "install"}))
    remembered = _remembered(broken)  # written before formats had a field: format 1
    assert remembered is not None and not remembered.ok


def _image(tag: str, kind: str | None, case: str | None = None, dangling: bool = False,
           size: int = 10, parent: str = "") -> ImageInfo:
    labels = {f"{LABEL}.managed": "1"}
    if kind:
        labels[f"{LABEL}.kind"] = kind
    if case:
        labels[f"{LABEL}.case"] = case
    return ImageInfo(id=f"sha256:{tag}", tags=(f"repro-matrix/{tag}:x",) if tag[0] != "-"
                     else (), labels=labels, size=size, parent=parent, dangling=dangling)


def test_cache_clean_removes_only_unreferenced_cell_images_in_scope() -> None:
    base = _image("base", None, size=100)
    kept = _image("cellkept", "cell", "demo", size=130, parent="sha256:base")
    gone = _image("cellgone", "cell", "demo", size=120, parent="sha256:base")
    other_case = _image("cellother", "cell", "other", size=120, parent="sha256:base")
    layer = _image("-layer", None, dangling=True, size=110, parent="sha256:base")
    images = [base, kept, gone, other_case, layer]
    referenced = {"sha256:cellkept"}
    assert cache.removable(images, referenced, ["demo"]) == [gone]
    assert cache.removable(images, referenced, []) == [gone, other_case, layer]
    assert sum(cache.own_sizes(images).values()) == 100 + 30 + 20 + 20 + 10
    assert [cache.image_group(i) for i in images] == ["base", "cell", "cell", "cell",
                                                      "dangling"]


def test_cache_sizes_attribute_a_cell_its_own_build_layers_not_shared_ones() -> None:
    base = _image("base", None, size=100)
    tools = _image("-tools", None, size=110, parent="sha256:base")  # shared by two cells
    install_a = _image("-install-a", None, size=150, parent="sha256:-tools")
    cell_a = _image("cella", "cell", "demo", size=150, parent="sha256:-install-a")
    cell_b = _image("cellb", "cell", "demo", size=170, parent="sha256:-tools")
    groups = cache.attributed_groups([base, tools, install_a, cell_a, cell_b])
    assert {g: [i.id[7:] for i in members] for g, members in groups.items()} == {
        "base": ["base"], "layer": ["-tools"], "cell": ["-install-a", "cella", "cellb"]}
    lines = cache.image_lines([base, tools, install_a, cell_a, cell_b])
    assert any(line.split()[1:4] == ["cell", "2", "images"] and line.endswith("100 B")
               for line in lines), lines


def test_cache_clean_refuses_a_results_folder_without_records(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no cells\.json there"):
        cache.referenced_images([tmp_path])


def test_cache_show_and_clean_file_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         ) -> None:
    cache_dir = tmp_path / "scratch-cache"
    (cache_dir / "locks").mkdir(parents=True)
    (cache_dir / "locks" / "a.json").write_text("{}")
    (cache_dir / "wheelhouse").mkdir()
    (cache_dir / "wheelhouse" / "w.whl").write_bytes(b"x" * 2048)
    assert main(["cache", "--cache-dir", str(cache_dir), "--kind", "locks,wheelhouse"]) == 0
    out = capsys.readouterr().out
    assert "locks" in out and "1 files" in out and "2.0 KiB" in out
    assert main(["cache", "clean", "--cache-dir", str(cache_dir), "--kind", "locks"]) == 0
    assert not (cache_dir / "locks").exists() and (cache_dir / "wheelhouse" / "w.whl").exists()
    assert main(["cache", "--kind", "nope"]) == 2


# ---- paths typed in another folder -----------------------------------------------------------


def test_typed_paths_resolve_against_invoked_from_and_defaults_stay(tmp_path: Path) -> None:
    args = build_parser().parse_args(["run", "--invoked-from", str(tmp_path), "--matrix",
                                      "m.yaml", "--cache-dir", "/abs/cache", "--cost-from",
                                      "old"])
    resolve_paths(args)
    assert args.matrix == tmp_path / "m.yaml"
    assert args.cache_dir == Path("/abs/cache")
    assert args.cost_from == tmp_path / "old"
    assert args.results == Path("results")  # not typed: relative to the current folder
    rep = build_parser().parse_args(["report", "--invoked-from", str(tmp_path), "--merge",
                                     "a", "b", "--baseline", "base", "--results", "out"])
    resolve_paths(rep)
    assert rep.merge == [tmp_path / "a", tmp_path / "b"]
    assert (rep.baseline, rep.results) == (tmp_path / "base", tmp_path / "out")


def test_noxfile_passes_the_folder_nox_was_started_in() -> None:
    noxfile = (Path(__file__).resolve().parents[3] / "noxfile.py").read_text()
    assert '"--invoked-from",\n                str(session.invoked_from)' in noxfile
    for command in ("run", "report", "plan", "cache"):
        assert f'_harness(session, "{command}")' in noxfile


def test_merging_shards_into_a_folder_keeps_its_other_records(tmp_path: Path) -> None:
    from repro_matrix.run.shard import merge_results

    results, shard = tmp_path / "results", tmp_path / "shard-1"
    _stored_full(results)
    meta = {**_slice_meta(["3.9"], ["1.0"]), "matrix_digest": "d"}
    store.write_cells(shard, "demo", [rec("3.9", "1.0", N, key="shard")], meta)
    merge_results([shard], results)
    _, records = store.read_cells(results / "demo" / "cells.json")
    assert [r.cell.id for r in records] == [r.cell.id for r in FULL]
    assert {r.cell.id: r.status for r in records}["demo/py3.9/1.0"] is N


def test_merged_meta_describes_the_union_and_the_case_as_it_runs_now() -> None:
    stored = {**FULL_META, "command": ["pytest"], "env": {"A": "1"}, "repro": "old.py",
              "bisect": {"3.9": {"cells_run": 3}}}
    new = {**_slice_meta(["3.13"], ["3.0"]), "repro": "new.py", "bisect": {"3.13": {}}}
    merged = store.merge_meta(stored, new)
    assert merged["pythons"] == ["3.9", "3.11", "3.13"]
    assert merged["versions"] == ["1.0", "1.1", "2.0", "3.0"]
    assert merged["plan_cells"][-1] == "demo/py3.13/3.0" and len(merged["plan_cells"]) == 7
    assert set(merged["bisect"]) == {"3.9", "3.13"}
    assert merged["repro"] == "new.py" and "command" not in merged and "env" not in merged
