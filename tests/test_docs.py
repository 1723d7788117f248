"""The documentation site builds without a warning and renders (no raw reStructuredText, maths served offline), and
every Python snippet of the README runs as written."""

from __future__ import annotations

import doctest
import html
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


NUMBER = re.compile(r"-?\d+\.\d+")


def expected_output(snippet: str) -> list[str]:
    """The lines of a snippet's closing ``# Output:`` comment block (what the README says it prints)."""
    lines = snippet.rstrip().splitlines()
    if "# Output:" not in lines:
        return []
    return [line[2:] for line in lines[lines.index("# Output:") + 1:]]


def same_printout(printed: str, expected: str) -> bool:
    """Equal text; decimals equal within 0.03 or 5 % (BLAS and thread counts differ between machines)."""
    if NUMBER.sub("#", printed) != NUMBER.sub("#", expected):
        return False
    return all(abs(float(a) - float(b)) <= max(0.03, 0.05 * abs(float(b)))
               for a, b in zip(NUMBER.findall(printed), NUMBER.findall(expected)))


def test_same_printout_tolerates_last_digits_only() -> None:
    assert same_printout("test accuracy: 0.80", "test accuracy: 0.81")
    assert not same_printout("test accuracy: 0.45", "test accuracy: 0.81")
    assert not same_printout("torch.Size([2, 1, 8, 8])", "torch.Size([2, 1, 4, 4])")


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_snippet_runs_and_prints_what_it_shows(snippet: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Every Python snippet of the README runs as written, and prints what its ``# Output:`` block shows."""
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.rstrip().splitlines()
    expected = expected_output(snippet)
    if "print(" in snippet:
        assert expected, "a README snippet that prints must show its output under '# Output:'"
    assert len(printed) == len(expected), (printed, expected)
    for got, want in zip(printed, expected):
        assert same_printout(got, want), (got, want)


# --- the tutorials' notebooks rendered as pages (docs/hooks/notebooks.py) ---------------------------------------------

NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".svg": None}


def _load_notebook_hook():
    spec = importlib.util.spec_from_file_location("notebooks_hook", ROOT / "docs" / "hooks" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page_body(page: Path) -> str:
    text = page.read_text()
    return text[text.index('<div role="main"') : text.index("<footer")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_rendered_as_a_page(site: Path, notebook: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    from PIL import Image

    nb = nbformat.read(notebook, as_version=4)
    page = site / "tutorials" / notebook.stem / "index.html"
    assert page.is_file(), f"no page for {notebook.name}"
    body = _page_body(page)
    assert "cell_type" not in body and '"outputs":' not in body  # no raw notebook JSON
    assert "\x1b" not in body and "[0;31m" not in body  # no ANSI escape code
    # every figure of the notebook is on the page, as a file of the site that is a valid image of its type
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type in ("display_data", "execute_result") and "text/html" not in o.data
               and any(m in o.data for m in ("image/png", "image/jpeg", "image/svg+xml"))]
    sources = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', body)
    assert len(figures) >= 1 and len(sources) == len(figures), (notebook.name, len(figures), sources)
    for alt, src in sources:
        assert src.startswith(f"../{notebook.stem}_files/") and alt.startswith("Figure"), (alt, src)
        image = (page.parent / src).resolve()
        assert image.is_file() and image.is_relative_to(site), src
        if IMAGE_FORMATS[image.suffix] is not None:
            with Image.open(image) as opened:
                assert opened.format == IMAGE_FORMATS[image.suffix], src
                opened.verify()
    # the code of every code cell, highlighted; the text printed by the first one that prints
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    markdown_fences = sum(c.source.count("```") // 2 for c in nb.cells if c.cell_type == "markdown")
    assert body.count('<div class="codehilite">') == len(code_cells) + markdown_fences
    printed = next(o.text for c in code_cells for o in c.outputs if o.output_type == "stream" and o.text.strip())
    assert html.escape(printed.strip().splitlines()[0].strip(), quote=False) in body
    # the note at the top links to the notebook, which the site serves as it is in the repository
    assert f'href="../{notebook.stem}.ipynb"' in body and f"execute_notebooks.py {notebook.stem}" in body
    assert (site / "tutorials" / notebook.name).read_bytes() == notebook.read_bytes()
    # the page is in the navigation and on the overview page
    assert f'href="tutorials/{notebook.stem}/"' in (site / "index.html").read_text()
    assert f'href="{notebook.stem}/"' in _page_body(site / "tutorials" / "index.html")


def test_notebook_maths_is_rendered(site: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    checked = 0
    for notebook in NOTEBOOKS:
        nb = nbformat.read(notebook, as_version=4)
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        inline = re.findall(r"(?<![$\\])\$([^$\n]+)\$(?!\$)", markdown)
        if not inline:
            continue
        body = _page_body(site / "tutorials" / notebook.stem / "index.html")
        for formula in inline:  # each one as an arithmatex span that the offline MathJax typesets
            assert f'<span class="arithmatex">\\({html.escape(formula, quote=False)}\\)</span>' in body, formula
        assert "$" not in re.sub(r'<div class="[^"]*codehilite">.*?</div>', "", body, flags=re.S), notebook.name
        checked += 1
    assert checked >= 2  # LRP_alpha_beta, ParameterSaliency, SAM_WSAM and SAT_LPA3 have maths
    assert "assets/mathjax/tex-svg-full.js" in (site / "tutorials" / "SAM_WSAM" / "index.html").read_text()


def test_notebook_to_markdown_on_a_small_notebook() -> None:
    nbformat = pytest.importorskip("nbformat")
    import base64
    import io

    import markdown as python_markdown
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buffer, format="PNG")
    png = buffer.getvalue()
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# Small\n\nThe loss $\\mathcal{L}(x) = x^2$ is\n- convex\n- smooth"),
        v4.new_code_cell("for i in range(3):\n    print(i)", outputs=[
            v4.new_output("stream", name="stdout", text="0\n1\n"),
            v4.new_output("stream", name="stdout", text="2\n"),  # one stream, one block
            v4.new_output("stream", name="stderr", text="\x1b[33mUserWarning\x1b[0m: careful\n"),
            v4.new_output("stream", name="stdout", text="10%\r50%\r100%\n"),
        ]),
        v4.new_raw_cell("not shown"),
        v4.new_code_cell("plt.show()", outputs=[
            v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode(),
                                                "text/plain": "<Figure size 4x3 with 1 Axes>"}),
            v4.new_output("execute_result", data={"text/plain": "```tensor(1.)```"}, execution_count=2),
            v4.new_output("display_data", data={"text/html": "<table><tr><td>7</td></tr></table>",
                                                "text/plain": "table"}),
        ]),
        v4.new_code_cell("print(*range(100), sep='\\n')", outputs=[
            v4.new_output("stream", name="stdout", text="".join(f"line {i}\n" for i in range(100)))]),
        v4.new_code_cell("1 / 0", outputs=[v4.new_output(
            "error", ename="ZeroDivisionError", evalue="division by zero",
            traceback=["\x1b[0;31m---------\x1b[0m", "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"])]),
    ]
    nb = v4.new_notebook(cells=cells)
    nbformat.validate(nb)
    module = _load_notebook_hook()
    assert doctest.testmod(module).failed == 0
    markdown, images = module.notebook_to_markdown(nb, "Small_files")

    assert images == {"cell03_output0.png": png}  # the PNG's bytes, unchanged
    assert '![Figure 1 output by cell 3 of the notebook (section “Small”)](Small_files/cell03_output0.png)' in markdown
    assert "<Figure size" not in markdown  # the figure's text/plain stand-in is not shown
    assert "```python\nfor i in range(3):\n    print(i)\n```" in markdown
    assert "```{ .text .nb-output }\n0\n1\n2\n```" in markdown  # consecutive stdout outputs as one block
    assert "```{ .text .nb-stderr }\nUserWarning: careful\n```" in markdown  # ANSI codes stripped
    assert "```{ .text .nb-output }\n100%\n```" in markdown  # a progress line as the terminal shows it
    assert "````{ .text .nb-output }\n```tensor(1.)```\n````" in markdown  # the fence is longer than the text's
    assert '<div class="nb-output">\n<table><tr><td>7</td></tr></table>\n</div>' in markdown
    assert "line 39\n[... 45 lines omitted ...]\nline 85" in markdown and "line 40" not in markdown
    assert "```{ .text .nb-error }\n---------\nZeroDivisionError: division by zero\n```" in markdown
    assert "\x1b" not in markdown and "not shown" not in markdown

    html_page = python_markdown.markdown(markdown, extensions=[
        "fenced_code", "codehilite", "tables", "pymdownx.arithmatex"], extension_configs={
        "pymdownx.arithmatex": {"generic": True}})
    assert '<span class="arithmatex">\\(\\mathcal{L}(x) = x^2\\)</span>' in html_page
    assert "<ul>\n<li>convex</li>" in html_page  # a list right after a paragraph line, as Jupyter shows it
    assert '<img alt="Figure 1' in html_page and 'src="Small_files/cell03_output0.png"' in html_page
    assert '<div class="nb-error codehilite">' in html_page and "<table><tr><td>7</td></tr></table>" in html_page
