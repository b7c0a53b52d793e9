"""README.md and docs/: every relative link and #anchor resolves, and README stays short."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250  # issue 21: a pitch, a quick start and links; the manual lives in docs/

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
# `](target)` and `](<target> "title")`: found by their closing half, so a link around an
# image, `[![alt](img.svg)](page.md)`, yields both targets.
MD_LINK = re.compile(r"\]\(\s*(?:<([^>]*)>|([^)\s]*))(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^>\s]+)>?")
HTML_TARGET = re.compile(
    r"""<(?:a|img|source)\b[^>]*?\b(?:href|src|srcset)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"""<a\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, …: not checked here
# A path into the package or the tests named in prose, code or a diagram: `run/loop.py`,
# repro_matrix/schemas/, tests/integration/test_faults.py. Bare module names are not checked.
PACKAGE_PATH = re.compile(
    r"(?<![\w./-])((?:repro_matrix/)?(?:spec|advisories|resolve|containers|run|verdict|report"
    r"|schemas)/|tests/(?:unit|integration)/)((?:[\w-]+/)*(?:[\w.]*\w\.(?:py|json)\b|[\w-]*\w/?)?)")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def where(self, root: Path) -> str:
        return f"{self.source.relative_to(root)}:{self.line}: {self.target}"


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for each line outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lowercased, punctuation dropped
    (letters, digits, `_` and `-` stay), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text, not its target
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: heading slugs (repeats get -1, -2, … as on GitHub)
    and explicit `<a id=…>` / `<a name=…>`."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[Link]:
    for number, raw in prose_lines(path.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub("``", raw)  # `[x](y)` in code is text, not a link
        targets = [angled or bare for angled, bare in MD_LINK.findall(line)]
        targets += REF_DEFINITION.findall(line) + HTML_TARGET.findall(line)
        for target in targets:
            if target and not SCHEME.match(target):
                yield Link(path, number, target)


def problem(link: Link, root: Path) -> str | None:
    """Why a relative link does not resolve, or None when it does."""
    address, _, anchor = link.target.partition("#")
    target = (link.source.parent / address).resolve() if address else link.source
    if not target.is_relative_to(root):
        return "points outside the repository"
    if not target.exists():
        return "no such file"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading or anchor '#{anchor}' in {target.relative_to(root)}"
    return None


def broken(files: list[Path], root: Path) -> list[str]:
    return [f"{link.where(root)}: {why}" for path in files for link in links(path)
            if (why := problem(link, root)) is not None]


def missing_paths(path: Path, root: Path) -> list[str]:
    """Package and test paths a page names that do not exist (fenced code and diagrams too)."""
    missing = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for folder, rest in PACKAGE_PATH.findall(line):
            named = folder + rest
            qualified = named.startswith(("tests/", "repro_matrix/"))
            if not (root / (named if qualified else f"repro_matrix/{named}")).exists():
                missing.append(f"{path.relative_to(root)}:{number}: {named}")
    return missing


def documents() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_every_relative_link_and_anchor_in_readme_and_docs_resolves() -> None:
    assert DOCS.is_dir(), "docs/ is missing"
    assert broken(documents(), ROOT) == []


def test_every_module_and_test_file_the_docs_name_exists() -> None:
    """Docs name modules by path (`run/loop.py`); a move or rename must update them."""
    assert [m for page in documents() for m in missing_paths(page, ROOT)] == []


def test_every_test_the_docs_cite_exists() -> None:
    """Reliability's "covered by" column names tests; a renamed or removed test must update it."""
    defined = {name for path in (ROOT / "tests").rglob("test_*.py")
               for name in re.findall(r"^\s*def (test_\w+)", path.read_text(encoding="utf-8"),
                                      re.MULTILINE)}
    cited = {name for page in documents()
             for name in re.findall(r"`(test_\w+)`", page.read_text(encoding="utf-8"))}
    assert sorted(cited - defined) == []


def test_readme_is_at_most_250_lines() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_every_page_in_docs_is_linked_from_readme_or_the_docs_index() -> None:
    linked = {(link.source.parent / link.target.partition("#")[0]).resolve()
              for page in (README, DOCS / "README.md") for link in links(page)}
    orphans = [str(p.relative_to(ROOT)) for p in sorted(DOCS.rglob("*.md"))
               if p.resolve() not in linked and p != DOCS / "README.md"]
    assert orphans == []


def test_readme_keeps_the_command_ci_runs() -> None:
    """.ci/run runs README's test command; both must name the same one."""
    assert "nox -s tests" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    assert "## Development" in text and "$ nox -s tests " in text


@pytest.mark.parametrize(("heading", "expected"), [
    ("The Flask #2926 case", "the-flask-2926-case"),
    ("`--fail-on` and exit codes", "--fail-on-and-exit-codes"),
    ("Machines without a registry or Docker", "machines-without-a-registry-or-docker"),
    ("What a run does (config → plan → report)", "what-a-run-does-config--plan--report"),
    ("See [the cache](cache.md)", "see-the-cache"),
    ("snake_case names", "snake_case-names"),
])
def test_slugs_follow_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_the_checker_finds_a_missing_file_a_missing_anchor_and_a_way_out(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# A page\n\n## Two words\n\n## With `--code`\n\n<a id=\"kept\"></a>\n", encoding="utf-8")
    (tmp_path / "pic.svg").write_text("<svg/>", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Top\n\n"
        "[ok](docs/page.md#two-words) [ok](#top) ![ok](pic.svg) [ok](docs/page.md#kept)\n"
        "[web](https://example.org/missing.md) `[in code](nowhere.md)`\n"
        "[ok](docs/page.md#with---code)\n"
        "```\n[in a fence](nowhere.md)\n```\n"
        "[gone](docs/gone.md) [bad anchor](docs/page.md#three-words) [self](#nope)\n"
        "[![badge](missing.png)](docs/page.md) <img src=\"docs/img/none.png\">\n"
        "[out](../elsewhere.md)\n",
        encoding="utf-8")
    root = tmp_path.resolve()
    found = broken([readme.resolve()], root)
    expected = [
        ("docs/gone.md", "no such file"),
        ("docs/page.md#three-words", "no heading or anchor '#three-words'"),
        ("#nope", "no heading or anchor '#nope'"),
        ("missing.png", "no such file"),
        ("docs/img/none.png", "no such file"),
        ("../elsewhere.md", "points outside the repository"),
    ]
    assert len(found) == len(expected), found
    for (target, why), report in zip(expected, found):
        assert f": {target}: {why}" in report


def test_the_checker_finds_a_module_path_that_moved(tmp_path: Path) -> None:
    (tmp_path / "repro_matrix" / "run").mkdir(parents=True)
    (tmp_path / "repro_matrix" / "run" / "loop.py").write_text("", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("`run/loop.py` and `run/pipeline.py`; results/report.md is a file\n"
                    "```text\nrun  run/loop.py, containers/engine.py\n```\n", encoding="utf-8")
    assert missing_paths(page, tmp_path) == ["page.md:1: run/pipeline.py",
                                             "page.md:3: containers/engine.py"]
