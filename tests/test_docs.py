"""The documentation site builds without a warning and renders (no raw reStructuredText, maths served offline), and
every Python snippet of the README runs as written."""

from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
RAW_RST = re.compile(r"\.\. (math|warning|note)::|:(math|class|func|meth|attr|data|mod|exc|obj):`?")


def _load_converter_module():
    spec = importlib.util.spec_from_file_location("rst_to_markdown", ROOT / "docs" / "hooks" / "rst_to_markdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def test_docs_build_strict(site: Path) -> None:
    assert (site / "index.html").is_file()


def test_api_pages_have_no_raw_rst_and_render_maths(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    api_pages = [p for p in pages if "api" in p.parts]
    assert len(api_pages) >= 8
    for page in pages:
        text = page.read_text()
        match = RAW_RST.search(text)
        context = text[match.start() - 80 : match.end() + 80] if match else ""
        assert match is None, f"{page.relative_to(site)} shows raw reStructuredText: {context!r}"
    for page in api_pages:
        text = page.read_text()
        if "api/models" not in str(page):  # every other API page has display maths
            assert '<div class="arithmatex">\\[' in text, page
        assert '<span class="arithmatex">\\(' in text, page
        assert "][captum_wsam." not in text, page  # no cross-reference left as Markdown
    attr = (site / "api" / "attr" / "index.html").read_text()
    assert 'href="../augment/#captum_wsam.augment.StyleAugment"' in attr  # :class:`~captum_wsam.augment.StyleAugment`


def test_maths_served_offline(site: Path) -> None:
    bundle = site / "assets" / "mathjax" / "tex-svg-full.js"
    assert bundle.stat().st_size > 1_000_000  # MathJax 3, from the django-static-mathjax package
    page = (site / "api" / "attr" / "index.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any(s.endswith("assets/mathjax/tex-svg-full.js") for s in scripts), scripts
    assert not [s for s in scripts if re.match(r"(https?:)?//", s)], scripts  # nothing from a CDN
    assert scripts.index(next(s for s in scripts if s.endswith("mathjax-config.js"))) < scripts.index(
        next(s for s in scripts if s.endswith("tex-svg-full.js")))  # the configuration is read first


def test_rst_converter_on_a_google_docstring() -> None:
    module = _load_converter_module()
    assert doctest.testmod(module).failed == 0
    convert = module.rst_to_markdown
    docstring = (
        "Summary :math:`f(x)`.\n\n"
        ".. math:: a = b\n    + c\n\n"
        "Args:\n"
        "    x: input :math:`(B,\n        C)`, see :class:`~pkg.mod.Name` and :func:`pkg.f`.\n"
        "        .. math::\n\n            y = 1\n\n            z = 2\n\n"
        "    y: the :meth:`Other.method <pkg.Other.method>`.\n\n"
        ".. warning::\n    **Careful.**\n"
    )
    out = convert(docstring, lambda target: {"pkg.mod.Name": "pkg.Name"}.get(target))
    assert RAW_RST.search(out) is None, out
    assert "Summary \\(f(x)\\)." in out
    assert "$$\na = b\n+ c\n$$" in out  # the directive's continuation lines join its block
    assert "input \\((B, C)\\)" in out  # a role across a line break becomes one line of inline maths
    assert '<autoref identifier="pkg.Name" optional>`Name`</autoref>' in out  # resolved, short title
    assert '<autoref identifier="pkg.f" optional>`pkg.f()`</autoref>' in out  # unresolved: kept as written
    assert '<autoref identifier="pkg.Other.method" optional>`Other.method`</autoref>' in out
    # the block inside an Args item keeps its indentation (the Google parser keeps it in the item), one $$ per
    # equation, and the next item follows
    assert "        $$\n        y = 1\n        $$\n\n        $$\n        z = 2\n        $$\n\n    y: the" in out
    assert '\n!!! warning "Warning"\n    **Careful.**' in out
    assert out.index("    y: the") > out.index("z = 2")


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_snippet_runs(snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {"__name__": "__readme__"})
