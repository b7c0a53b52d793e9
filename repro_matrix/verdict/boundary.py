"""Explain each boundary of a verdict: what changed between the two releases in the package's own
functions on the reproduced stack, the changelog entries between them, and the project's links."""

from __future__ import annotations

import ast
import difflib
import email.parser
import keyword
import re
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.version import InvalidVersion, Version

from repro_matrix import pythons as py
from repro_matrix.model import CaseMeta, CellRecord
from repro_matrix.verdict.derive import Verdict

INTRODUCED = "introduced"
FIXED = "fixed"
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>[\w<>]+)')
_SITE = "site-packages/"
_CHANGELOG_STEMS = ("changes", "changelog", "history", "news", "releases", "release-notes")
_UNDERLINE = re.compile(r"^\s*([-=~^*+#\"'`])\1{2,}\s*$")
_VERSION_TOKEN = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+(?:(?:a|b|rc|\.post|\.dev)\d+)?)(?![\w])")
_BULLET = re.compile(r"^\s*[-*+]\s+")
# "#2926", ":issue:`2926`", ":pr:`3266`", ".../issues/2926", ".../pull/2926".
_ISSUE = re.compile(r"(?:#|:issue:`|:pr:`|/issues/|/pull/)(\d+)")
# Words too common in code to tie a changelog entry to a change.
_COMMON = {"self", "none", "true", "false", "return", "import", "from", "kwargs", "args",
           "options", "value", "name", "else", "elif"}


# ---- which boundaries, and which traceback explains each -----------------------------------


@dataclass(frozen=True)
class Pair:
    """Two neighbouring decided releases with different outcomes, and the cell whose traceback
    shows where the bug happens (the affected side)."""

    kind: str  # INTRODUCED: last unaffected -> introduced; FIXED: last affected -> first fixed
    before: str
    after: str
    cell: str

    @property
    def affected(self) -> str:
        return self.after if self.kind == INTRODUCED else self.before


def boundary_pairs(records: Sequence[CellRecord], verdict: Verdict) -> list[Pair]:
    """Every (last unaffected → introduced) and (last affected → first fixed) pair of every
    Python's ranges and branches; a pair that spans another of its kind is dropped (it only looks
    wider because releases in between could not be tested there)."""
    reproduced = {(r.cell.python, r.cell.version): r.cell.id for r in records
                  if r.status.affected}
    found: dict[tuple[str, str, str], str] = {}
    for scope in sorted(verdict.per_python, key=lambda s: py.sort_key(_python(s.name))):
        python = _python(scope.name)
        decided = sorted((r.cell.version for r in records
                          if r.cell.python == python and r.status.decisive), key=Version)
        edges: list[tuple[str, str, str]] = []
        for rng in scope.ranges:
            earlier = [v for v in decided if Version(v) < Version(rng.introduced)]
            if earlier:
                edges.append((INTRODUCED, earlier[-1], rng.introduced))
            if rng.fixed:
                edges.append((FIXED, rng.last_affected, rng.fixed))
        edges += [(FIXED, b.last_affected, b.fixed_in_series) for b in scope.branches
                  if b.fixed_in_series]
        for kind, before, after in edges:
            affected = after if kind == INTRODUCED else before
            cell = reproduced.get((python, affected))
            if cell and (kind, before, after) not in found:
                found[(kind, before, after)] = cell
    pairs = [Pair(kind, before, after, cell) for (kind, before, after), cell in found.items()]
    return sorted((p for p in pairs if not any(_spans(p, q) for q in pairs)),
                  key=lambda p: (Version(p.before), Version(p.after)))


def _python(scope_name: str) -> str:
    return scope_name.removeprefix("Python ")


def _spans(wide: Pair, narrow: Pair) -> bool:
    return (wide != narrow and wide.kind == narrow.kind
            and Version(wide.before) <= Version(narrow.before)
            and Version(narrow.after) <= Version(wide.after))


@dataclass(frozen=True)
class Frame:
    """A traceback line in an installed file: path relative to site-packages."""

    path: str
    line: int
    function: str


def site_frames(output: str) -> list[Frame]:
    """The traceback frames in installed packages, innermost last, without repeats."""
    frames: dict[tuple[str, str], Frame] = {}
    for match in _FRAME.finditer(output):
        path = match["path"]
        if _SITE not in path:
            continue
        relative = path.split(_SITE, 1)[1]
        frames.setdefault((relative, match["function"]),
                          Frame(relative, int(match["line"]), match["function"]))
    return list(frames.values())


# ---- distributions: a wheel or an sdist, read without unpacking -----------------------------


class Distribution:
    """The files of one released wheel or sdist, by path relative to the import root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, bytes] = {}
        if path.name.endswith(".whl") or path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if not name.endswith("/"):
                        self._files[name] = archive.read(name)
        else:
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    handle = archive.extractfile(member) if member.isfile() else None
                    if handle is not None:
                        self._files[member.name] = handle.read()

    def source(self, relative: str) -> str | None:
        """An installed file's text: exact in a wheel; in an sdist under its folder or src/."""
        for name in sorted(self._files, key=len):
            if name == relative or name.endswith("/" + relative):
                return self._files[name].decode("utf-8", "replace")
        return None

    def metadata(self) -> dict[str, list[str]]:
        """METADATA (wheel) or PKG-INFO (sdist) headers."""
        names = [n for n in self._files if n.endswith((".dist-info/METADATA", "PKG-INFO"))]
        if not names:
            return {}
        message = email.parser.HeaderParser().parsestr(
            self._files[min(names, key=len)].decode("utf-8", "replace"))
        headers: dict[str, list[str]] = {}
        for key, value in message.items():
            headers.setdefault(key, []).append(str(value))
        return headers

    def changelog(self) -> tuple[str, str] | None:
        """(file name, text) of the changelog it ships, the top-most one if several."""
        found = [n for n in self._files if PurePosixPath(n).stem.lower() in _CHANGELOG_STEMS
                 and PurePosixPath(n).suffix.lower() in ("", ".rst", ".md", ".txt")]
        if not found:
            return None
        name = min(found, key=lambda n: (n.count("/"), n))
        return PurePosixPath(name).name, self._files[name].decode("utf-8", "replace")


# ---- narrowing a diff to the functions on the stack -----------------------------------------


@dataclass(frozen=True)
class FunctionDiff:
    """What changed in one function on the stack (``diff`` empty: unchanged)."""

    path: str
    function: str
    diff: str


@dataclass(frozen=True)
class Span:
    """1-based first and last line of a function, and of its docstring if it has one."""

    first: int
    last: int
    docstring: tuple[int, int] | None = None

    def contains(self, line: int) -> bool:
        return self.first <= line <= self.last


def _docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int] | None:
    first = node.body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return first.lineno, first.end_lineno or first.lineno
    return None


def _spans_of(tree: ast.AST) -> dict[str, Span]:
    """Qualified name -> span of every function (decorators included, docstring apart)."""
    spans: dict[str, Span] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    spans.setdefault(name, Span(first, child.end_lineno or child.lineno,
                                                _docstring(child)))
                visit(child, name + ".")

    visit(tree, "")
    return spans


def _function_spans(text: str) -> dict[str, Span] | None:
    try:
        with warnings.catch_warnings():  # old releases' invalid escapes are not our concern
            warnings.simplefilter("ignore")
            return _spans_of(ast.parse(text))
    except (SyntaxError, ValueError):  # e.g. Python 2-only source: fall back to indentation
        return None


def _indent_span(lines: Sequence[str], function: str, near: int | None) -> Span | None:
    pattern = re.compile(rf"^(\s*)(async\s+)?def\s+{re.escape(function)}\b")
    starts = [i for i, line in enumerate(lines) if pattern.match(line)]
    if near is not None:
        starts = [i for i in starts if i < near] or starts
        starts = starts[-1:]
    if not starts:
        return None
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return Span(start + 1, end)


def locate(text: str, function: str, line: int | None = None,
           qualname: str | None = None) -> tuple[str, Span] | None:
    """(qualified name, 1-based line span) of ``function`` in ``text``: by qualified name when
    given, else the def of that name enclosing ``line``, else the only def of that name."""
    spans = _function_spans(text)
    if spans is None:
        span = _indent_span(text.splitlines(), function, line)
        return (qualname or function, span) if span else None
    if qualname and qualname in spans:
        return qualname, spans[qualname]
    named = {q: s for q, s in spans.items() if q.rsplit(".", 1)[-1] == function}
    if line is not None:
        enclosing = [(q, s) for q, s in named.items() if s.contains(line)]
        if enclosing:
            return min(enclosing, key=lambda item: item[1].last - item[1].first)
    if len(named) == 1:
        return next(iter(named.items()))
    return None


def _segment(text: str, span: Span) -> list[str]:
    """The function's lines without its docstring (prose changes say nothing about behaviour)."""
    lines = text.splitlines(keepends=True)
    skip = range(span.docstring[0], span.docstring[1] + 1) if span.docstring else range(0)
    return [lines[i - 1] for i in range(span.first, span.last + 1)
            if i not in skip and i <= len(lines)]


def _key(line: str) -> str:
    """A line as the comparison sees it: no indentation or quote-style differences."""
    return line.strip().replace("'", '"')


def code_diff(old: Sequence[str], new: Sequence[str], old_label: str, new_label: str,
              context: int = 2) -> str:
    """A unified diff that ignores re-indentation, quote style and blank-line-only hunks (a
    reformatting is not the change a reader is looking for); lines printed as released."""
    matcher = difflib.SequenceMatcher(None, [_key(x) for x in old], [_key(x) for x in new],
                                      autojunk=False)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(context):
        changed = [line for tag, i1, i2, j1, j2 in group if tag != "equal"
                   for line in (*old[i1:i2], *new[j1:j2])]
        if not any(line.strip() for line in changed):
            continue
        first, last = group[0], group[-1]
        out.append(f"@@ -{first[1] + 1},{last[2] - first[1]} "
                   f"+{first[3] + 1},{last[4] - first[3]} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in old[i1:i2]]
                continue
            out += ["-" + line for line in old[i1:i2]]
            out += ["+" + line for line in new[j1:j2]]
    if not out:
        return ""
    return "".join(_terminated([f"--- {old_label}\n", f"+++ {new_label}\n", *out]))


def function_diff(frame: Frame, affected_text: str, other_text: str | None,
                  before_label: str, after_label: str, affected_is_after: bool) -> FunctionDiff:
    """The diff of the frame's function between the two releases' texts."""
    found = locate(affected_text, frame.function, frame.line)
    if found is None:
        return FunctionDiff(frame.path, frame.function, "")
    qualname, span = found
    affected = _segment(affected_text, span)
    other: list[str] = []
    if other_text is not None:
        other_found = locate(other_text, frame.function, None, qualname)
        other = _segment(other_text, other_found[1]) if other_found else []
    old, new = (other, affected) if affected_is_after else (affected, other)
    return FunctionDiff(frame.path, qualname,
                        code_diff(old, new, f"{frame.path} ({before_label})",
                                  f"{frame.path} ({after_label})"))


def _terminated(lines: Sequence[str]) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in lines]


# ---- the changelog --------------------------------------------------------------------------


def changelog_sections(text: str) -> list[tuple[str, str]]:
    """(version, section text) for each heading that names a version (reST underlines or
    markdown #), in file order."""
    lines = text.splitlines()
    heads: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        underlined = i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]) and line.strip()
        if not (underlined or line.lstrip().startswith("#")):
            continue
        match = _VERSION_TOKEN.search(line)
        if match:
            try:
                heads.append((i, str(Version(match[1]))))
            except InvalidVersion:
                continue
    sections = []
    for k, (start, version) in enumerate(heads):
        end = heads[k + 1][0] if k + 1 < len(heads) else len(lines)
        sections.append((version, "\n".join(lines[start:end]).strip()))
    return sections


def entries_between(text: str, before: str, after: str) -> list[tuple[str, str]]:
    """(version, section) of the releases after ``before`` up to and including ``after``."""
    low, high = Version(before), Version(after)
    return [(v, s) for v, s in changelog_sections(text) if low < Version(v) <= high]


def bullet_entries(section: str) -> list[str]:
    """The bullet items of a section, each with its continuation lines (reST directives and
    link targets end an item and are left out)."""
    entries: list[list[str]] = []
    indent: int | None = None
    for line in section.splitlines():
        depth = len(line) - len(line.lstrip())
        if _BULLET.match(line) and (indent is None or depth <= indent):
            indent = depth
            entries.append([line.strip()])
        elif line.lstrip().startswith(".. "):
            indent = None
        elif indent is not None and line.strip():
            entries[-1].append(line.strip())
    return [" ".join(entry) for entry in entries]


def changed_words(diffs: Sequence[FunctionDiff]) -> set[str]:
    """Identifiers on the changed lines of the diffs (the words a related entry would use)."""
    words: set[str] = set()
    for item in diffs:
        for line in item.diff.splitlines():
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
                words.update(w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]{3,}", line)
                             if not keyword.iskeyword(w))
    return words - _COMMON


def related(entries: Sequence[str], words: set[str], functions: set[str],
            issues: set[str]) -> list[str]:
    """The entries that name an issue of the case, a function on the stack or a word of the
    changed code, the most related first (issue, then function, then shared words)."""
    scored = []
    for position, entry in enumerate(entries):
        said = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", entry)}
        score = (bool(set(_ISSUE.findall(entry)) & issues), len(said & (functions | words)))
        if any(score):
            scored.append((score, -position, entry))
    return [entry for *_, entry in sorted(scored, reverse=True)]


# ---- one explained boundary -----------------------------------------------------------------


@dataclass(frozen=True)
class Explained:
    """A boundary with what changed across it (stored in results/<case>/boundaries.json)."""

    kind: str
    before: str
    after: str
    cell: str
    functions: tuple[FunctionDiff, ...] = ()
    changelog_file: str = ""
    changelog: tuple[tuple[str, str], ...] = ()  # (version, section text)
    related_entries: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (label, url) from the metadata
    files: tuple[str, ...] = ()  # the distributions read
    missing: str = ""  # what could not be read, when something could not

    @property
    def complete(self) -> bool:
        return not self.missing


# A damaged archive explains nothing, but must not stop the report.
_UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError)
# Finds a release's distribution: (project, version, prefer_sdist) -> file or None.
Locate = Callable[[str, str, bool], "Path | None"]


def explain(pair: Pair, output: str, project: str, issues: set[str], find: Locate) -> Explained:
    """Diff the package's own functions on ``output``'s stack between the pair's releases."""
    paths = {v: find(project, v, False) for v in (pair.before, pair.after)}
    missing = [v for v, p in paths.items() if p is None]
    if missing:
        return Explained(pair.kind, pair.before, pair.after, pair.cell,
                         missing=f"no distribution of {project} {', '.join(missing)} at hand")
    try:
        dists = {v: Distribution(p) for v, p in paths.items() if p is not None}
    except _UNREADABLE as exc:
        return Explained(pair.kind, pair.before, pair.after, pair.cell,
                         missing=f"a distribution of {project} is unreadable ({exc})")
    affected, other = pair.affected, (pair.after if pair.affected == pair.before else pair.before)
    diffs = []
    for frame in site_frames(output):
        text = dists[affected].source(frame.path)
        if text is None or not frame.path.endswith(".py"):
            continue  # another package's file: not this distribution's own
        diffs.append(function_diff(frame, text, dists[other].source(frame.path), pair.before,
                                   pair.after, affected == pair.after))
    sdist_path = find(project, pair.after, True)
    notes = dists[pair.after]
    if sdist_path:
        try:
            notes = Distribution(sdist_path)
        except _UNREADABLE:
            sdist_path = None  # the changelog is a bonus: the diff stands without it
    log = notes.changelog()
    sections = tuple(entries_between(log[1], pair.before, pair.after)) if log else ()
    entries = [e for _, text in sections for e in bullet_entries(text)]
    return Explained(
        pair.kind, pair.before, pair.after, pair.cell, functions=tuple(diffs),
        changelog_file=log[0] if log else "", changelog=sections,
        related_entries=tuple(related(entries, changed_words(diffs),
                                      {f.function.rsplit(".", 1)[-1].lower() for f in diffs
                                       if f.diff}, issues)),
        links=_links(dists[pair.after].metadata()),
        files=tuple(sorted({p.name for p in (*paths.values(), sdist_path) if p})))


def _links(headers: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    links = [("Home page", url) for url in headers.get("Home-page", []) if url != "UNKNOWN"]
    for value in headers.get("Project-URL", []):
        label, _, url = value.partition(",")
        if url.strip():
            links.append((label.strip(), url.strip()))
    return tuple(dict.fromkeys(links))


def case_issues(description: str) -> set[str]:
    """Issue numbers the case's description names (#2926 → "2926")."""
    return set(_ISSUE.findall(description))


def explain_case(meta: dict[str, Any], records: Sequence[CellRecord], verdict: Verdict,
                 find: Locate | None, stored: Sequence[Explained]) -> list[Explained]:
    """Every boundary of a case explained: computed when the distributions are at hand, else
    what an earlier render stored for the same boundary and cell."""
    by_id = {r.cell.id: r for r in records}
    kept = {(e.kind, e.before, e.after, e.cell): e for e in stored}
    result = []
    run = CaseMeta.from_json(meta)
    project = run.package
    issues = case_issues(run.description)
    for pair in boundary_pairs(records, verdict):
        old = kept.get((pair.kind, pair.before, pair.after, pair.cell))
        fresh = (explain(pair, by_id[pair.cell].output_excerpt, project, issues, find)
                 if find is not None and project else None)
        if fresh is not None and (fresh.complete or old is None):
            result.append(fresh)
        elif old is not None:
            result.append(old)
        else:
            result.append(Explained(pair.kind, pair.before, pair.after, pair.cell,
                                    missing="the distributions were not at hand when the "
                                            "report was rendered"))
    return result


# ---- boundaries.json ------------------------------------------------------------------------


def to_json(explained: Sequence[Explained]) -> dict[str, Any]:
    return {"schema_version": 1, "boundaries": [asdict(e) for e in explained]}


def from_json(data: Any) -> list[Explained]:
    """The stored boundaries; anything unreadable counts as none stored."""
    try:
        items = data["boundaries"]
        return [Explained(
            kind=i["kind"], before=i["before"], after=i["after"], cell=i["cell"],
            functions=tuple(FunctionDiff(**f) for f in i.get("functions", ())),
            changelog_file=i.get("changelog_file", ""),
            changelog=tuple((v, s) for v, s in i.get("changelog", ())),
            related_entries=tuple(i.get("related_entries", ())),
            links=tuple((label, url) for label, url in i.get("links", ())),
            files=tuple(i.get("files", ())), missing=i.get("missing", ""))
            for i in items]
    except (KeyError, TypeError, ValueError):
        return []
