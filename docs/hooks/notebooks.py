"""MkDocs hook: the tutorials' notebooks (``tutorials/*.ipynb``, stored with their outputs) as pages of the site.

An equivalent of mkdocs-jupyter without its dependencies (it pulls mkdocs-material, whose ``requests`` pin conflicts
with torchattacks'). At build time every ``tutorials/NAME.ipynb`` becomes the virtual page ``tutorials/NAME.md``:

- Markdown cells as they are (their ``$...$`` / ``$$...$$`` maths is rendered by ``pymdownx.arithmatex`` and the
  offline MathJax of ``mathjax.py``); images attached to a cell (``attachment:NAME``) become files of the site;
- code cells as fenced ``python`` blocks (highlighted by Pygments at build time);
- stream, ``text/plain`` and error outputs as fenced ``text`` blocks, ANSI escape codes stripped, carriage-return
  progress lines collapsed, very long outputs cut in the middle;
- ``image/png`` / ``image/jpeg`` / ``image/svg+xml`` outputs as files next to the page (``tutorials/NAME_files/``),
  shown as Markdown images with an alt text naming the section they belong to;
- ``text/html`` (e.g. pandas tables), ``text/markdown`` and ``text/latex`` outputs passed through.

Each page starts with a note linking to the notebook (also copied into the site, so the link works offline) and
saying how to re-run it. :func:`notebook_to_markdown` is the pure conversion, tested in ``tests/test_docs.py``;
``on_files`` is the wiring (registered under ``hooks:`` in ``mkdocs.yml``; the pages are listed in its ``nav``).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import nbformat
from mkdocs.structure.files import File, Files

NOTEBOOK_DIR = "tutorials"  # relative to the folder of mkdocs.yml
PAGE_DIR = "tutorials"  # relative to docs_dir; the pages are PAGE_DIR/NAME.md
MAX_OUTPUT_LINES = 60  # longer text outputs keep their first HEAD_LINES and last TAIL_LINES lines
HEAD_LINES = 40
TAIL_LINES = 15

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", flags=re.M)
LIST_ITEM = re.compile(r"^[ \t]{0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
ATTACHMENT = re.compile(r"attachment:([^\s)\"'>]+)")
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
TEXT_TYPES = ("text/markdown", "text/latex")
CSS_PATH = "css/notebooks.css"
CSS = """/* outputs of the tutorials' notebooks (docs/hooks/notebooks.py), told apart from their code */
.nb-output, .nb-stderr, .nb-error { border-left: 3px solid #9aa5b1; margin-left: 1.5em; }
.nb-output pre, .nb-stderr pre, .nb-error pre { background: #fafafa; }
.nb-stderr pre { background: #fdf0f0; }
.nb-error pre { background: #fbe3e3; }
.nb-error { border-left-color: #c0392b; }
"""


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape codes (colours of tracebacks, cursor moves of progress bars).

    Example:
        >>> strip_ansi("\\x1b[0;31mValueError\\x1b[0m: bad")
        'ValueError: bad'
    """
    return ANSI.sub("", text)


def collapse_carriage_returns(text: str) -> str:
    """What a terminal shows of ``text``: on each line, only what follows its last carriage return.

    Example:
        >>> collapse_carriage_returns("10%\\r50%\\r100%\\ndone\\n")
        '100%\\ndone\\n'
    """
    text = text.replace("\r\n", "\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def trim_lines(text: str, max_lines: int = MAX_OUTPUT_LINES, head: int = HEAD_LINES, tail: int = TAIL_LINES) -> str:
    """``text`` with at most ``max_lines`` lines: a longer one keeps its ``head`` first and ``tail`` last lines.

    Example:
        >>> print(trim_lines("\\n".join(map(str, range(10))), max_lines=5, head=2, tail=1))
        0
        1
        [... 7 lines omitted ...]
        9
    """
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= max_lines:
        return "\n".join(lines)
    omitted = len(lines) - head - tail
    return "\n".join([*lines[:head], f"[... {omitted} lines omitted ...]", *lines[len(lines) - tail :]])


def fenced(text: str, language: str) -> str:
    """``text`` as a fenced code block whose fence is longer than any run of backticks inside it.

    Example:
        >>> print(fenced("print(1)", "python"))
        ```python
        print(1)
        ```
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _join(value: str | list[str]) -> str:
    """A notebook field stored as one string or as a list of lines (nbformat allows both)."""
    return value if isinstance(value, str) else "".join(value)


def _text_block(text: str, css_class: str = "nb-output") -> str:
    """A text output as a fenced block of class ``css_class`` (styled by :data:`CSS`)."""
    return fenced(trim_lines(collapse_carriage_returns(strip_ansi(text))), f"{{ .text .{css_class} }}")


def _stream_blocks(streams: list[tuple[str, str]]) -> list[str]:
    """Fenced blocks for ``(name, text)`` streams; stderr (warnings) gets its own class, as in Jupyter."""
    return [_text_block(text, "nb-stderr" if name == "stderr" else "nb-output") for name, text in streams
            if text.strip()]


def _markdown_cell(source: str) -> str:
    """A Markdown cell for Python-Markdown: Jupyter (CommonMark) lets a list start right after a paragraph line,
    Python-Markdown needs a blank line before it."""
    out: list[str] = []
    in_fence = False
    for line in source.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        previous = out[-1] if out else ""
        if (not in_fence and LIST_ITEM.match(line) and previous.strip() and not LIST_ITEM.match(previous)
                and not previous.startswith((" ", "\t"))):
            out.append("")
        out.append(line)
    return "\n".join(out)


def notebook_to_markdown(nb: nbformat.NotebookNode, image_dir_name: str) -> tuple[str, dict[str, bytes]]:
    """Markdown for one notebook, and the image files its outputs and attachments need.

    Args:
        nb: a notebook (``nbformat.read(path, as_version=4)``), stored with its outputs.
        image_dir_name: the folder, relative to the page, that will hold the images; the Markdown refers to
            ``image_dir_name/FILENAME``.

    Returns:
        The page's Markdown, and ``{FILENAME: bytes}`` for every image it shows (``cellNN_outputM.png`` for outputs,
        ``cellNN_NAME`` for attachments).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
        ...                                      nbformat.v4.new_code_cell("print(1)", outputs=[
        ...                                          nbformat.v4.new_output("stream", name="stdout", text="1\\n")])])
        >>> markdown, images = notebook_to_markdown(nb, "Title_files")
        >>> print(markdown)
        # Title
        <BLANKLINE>
        ```python
        print(1)
        ```
        <BLANKLINE>
        ```{ .text .nb-output }
        1
        ```
        <BLANKLINE>
        >>> images
        {}
    """
    blocks: list[str] = []
    images: dict[str, bytes] = {}
    section = "the notebook"

    def add_image(filename: str, data: str | list[str], mime: str, alt: str) -> None:
        payload = _join(data)
        images[filename] = payload.encode("utf-8") if mime == "image/svg+xml" else base64.b64decode(payload)
        blocks.append(f"![{alt}]({image_dir_name}/{filename})")

    for index, cell in enumerate(nb.cells):
        source = _join(cell.get("source", ""))
        if cell.cell_type == "markdown":
            for name, bundle in (cell.get("attachments") or {}).items():
                mime = next((m for m in IMAGE_TYPES if m in bundle), None)
                if mime is not None:
                    payload = _join(bundle[mime])
                    images[f"cell{index:02d}_{name}"] = (
                        payload.encode("utf-8") if mime == "image/svg+xml" else base64.b64decode(payload))
            source = ATTACHMENT.sub(lambda m, i=index: f"{image_dir_name}/cell{i:02d}_{m.group(1)}", source)
            blocks.append(_markdown_cell(source))
            headings = HEADING.findall(source)
            if headings:
                section = f"“{headings[-1].strip()}”"
            continue
        if cell.cell_type != "code":  # raw cells are not shown by Jupyter either
            continue
        if source.strip():
            blocks.append(fenced(source, "python"))
        streams: list[tuple[str, str]] = []  # consecutive outputs of one stream are shown as one block
        figure = 0
        for number, output in enumerate(cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                text = _join(output.get("text", ""))
                if streams and streams[-1][0] == output.get("name"):
                    streams[-1] = (streams[-1][0], streams[-1][1] + text)
                else:
                    streams.append((output.get("name", "stdout"), text))
                continue
            blocks.extend(_stream_blocks(streams))
            streams = []
            if kind == "error":
                traceback = "\n".join(output.get("traceback", []))
                blocks.append(_text_block(traceback or f"{output.get('ename')}: {output.get('evalue')}", "nb-error"))
            elif kind in ("display_data", "execute_result"):
                data = output.get("data", {})
                mime = next((m for m in ("text/html", *IMAGE_TYPES, *TEXT_TYPES, "text/plain") if m in data), None)
                if mime == "text/html":
                    blocks.append(f'<div class="nb-output">\n{_join(data[mime]).strip()}\n</div>')
                elif mime in IMAGE_TYPES:
                    figure += 1
                    alt = f"Figure {figure} output by cell {index} of the notebook (section {section})"
                    add_image(f"cell{index:02d}_output{number}.{IMAGE_TYPES[mime]}", data[mime], mime, alt)
                elif mime in TEXT_TYPES:
                    blocks.append(_join(data[mime]).strip())
                elif mime == "text/plain":
                    blocks.append(_text_block(_join(data[mime])))
        blocks.extend(_stream_blocks(streams))
    return "\n\n".join(blocks) + "\n", images


def _note(name: str, nb: nbformat.NotebookNode) -> str:
    """The note at the top of a page: where the notebook is, how to run it, when its outputs were produced."""
    stored = nb.metadata.get("captum_wsam", {})
    run = (f" The outputs below are from its stored run ({stored['executed_seconds']:.0f} s wall on "
           f"{stored['executed_on']})." if {"executed_seconds", "executed_on"} <= stored.keys() else "")
    return (
        f'!!! note "Notebook"\n'
        f"    This page is the notebook [`{NOTEBOOK_DIR}/{name}.ipynb`]({name}.ipynb) (download it from this link or "
        f"find it in the repository), rendered with its stored outputs.{run} Run it yourself in Jupyter after "
        f"`pip install -e '.[dev]'`, or re-execute it and store its outputs with "
        f"`python tutorials/execute_notebooks.py {name}`; `make test` re-executes every tutorial."
    )


def page_markdown(name: str, nb: nbformat.NotebookNode, image_dir_name: str) -> tuple[str, dict[str, bytes]]:
    """:func:`notebook_to_markdown` with the note inserted after the page's first-level title (or at the top)."""
    markdown, images = notebook_to_markdown(nb, image_dir_name)
    title = re.match(r"# [^\n]*\n", markdown)
    cut = title.end() if title else 0
    return f"{markdown[:cut]}\n{_note(name, nb)}\n\n{markdown[cut:]}", images


def on_config(config: Any) -> Any:
    """Add the style sheet of the notebooks' outputs to the site."""
    if CSS_PATH not in config.extra_css:
        config.extra_css.append(CSS_PATH)
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add, for every ``tutorials/NAME.ipynb``, the page ``tutorials/NAME.md``, its images and the notebook."""
    files.append(File.generated(config, CSS_PATH, content=CSS))
    notebook_dir = Path(config.config_file_path).resolve().parent / NOTEBOOK_DIR
    for path in sorted(notebook_dir.glob("*.ipynb")):
        name = path.stem
        markdown, images = page_markdown(name, nbformat.read(path, as_version=4), f"{name}_files")
        files.append(File.generated(config, f"{PAGE_DIR}/{name}.md", content=markdown))
        files.append(File.generated(config, f"{PAGE_DIR}/{name}.ipynb", abs_src_path=str(path)))
        for filename, content in images.items():
            files.append(File.generated(config, f"{PAGE_DIR}/{name}_files/{filename}", content=content))
    return files
