"""Griffe extension: the reStructuredText constructs of our Google-style docstrings, turned into Markdown.

Our docstrings follow Kornia/PyTorch conventions: Google sections (``Args:``, ``Returns:``, ``Examples:``) with
reStructuredText inside them -- ``.. math::`` blocks, ``:math:`` / ``:class:`` / ``:func:`` roles and ``.. warning::``
directives. mkdocstrings renders Markdown, so without this extension the site shows them literally. The conversion:

- ``.. math:: f`` (one line, or an indented block) -> a ``$$ ... $$`` block, rendered by ``pymdownx.arithmatex``
  and MathJax (served from the site itself, see ``mathjax.py``);
- ``:math:`f``` -> ``\\(f\\)`` (inline maths);
- ``:class:`~pkg.mod.Name``` (also ``func``, ``meth``, ``attr``, ``data``, ``exc``, ``obj``, ``mod``) -> an optional
  cross-reference to the documented object (mkdocs-autorefs), shown as code: a link when the object is on the
  site, plain code text otherwise; names relative to the docstring's object are resolved the way Sphinx does
  (the object, then its parents);
- ``.. warning::`` / ``.. note::`` (any admonition directive) -> a ``!!! warning`` admonition.

Loaded by mkdocstrings-python through ``extensions: [docs/hooks/rst_to_markdown.py:RstToMarkdown]`` in
``mkdocs.yml``; :func:`rst_to_markdown` is the pure function, tested in ``tests/test_docs.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

try:  # only the pure function is needed by the tests; griffe is there whenever mkdocstrings is
    from griffe import Extension, Object
except ImportError:  # pragma: no cover
    Extension, Object = object, Any  # type: ignore[assignment, misc]

ROLE = re.compile(r":(?:py:)?(math|class|func|meth|attr|data|exc|obj|mod|const|ref):`([^`]+)`")
DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. (?P<name>[a-z-]+)::[ \t]*(?P<rest>.*)$")
ADMONITIONS = ("note", "warning", "tip", "important", "hint", "caution", "danger", "attention", "error", "seealso")

Resolver = Callable[[str], "str | None"]


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """Lines after ``start`` indented deeper than ``indent`` (blank lines included), and the index after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():  # trailing blank lines belong to what follows
        end -= 1
    return lines[start:end], end


def _dedent(lines: list[str]) -> list[str]:
    depth = min((_indent_of(line) for line in lines if line.strip()), default=0)
    return [line[depth:] if line.strip() else "" for line in lines]


def _directives(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        match = DIRECTIVE.match(lines[i])
        if match is None or match["name"] not in ("math", *ADMONITIONS):
            out.append(lines[i])
            i += 1
            continue
        pad, name = match["indent"], match["name"]
        body, i = _block(lines, i + 1, len(pad))
        body = [line for line in _dedent(body) if not re.match(r"^:[a-z-]+:", line)]  # drop directive options
        if match["rest"].strip():
            body = [match["rest"].strip(), *body]
        if name == "math":
            # one $$ block per blank-line-separated equation (a $$ block may not contain a blank line)
            equations: list[list[str]] = [[]]
            for line in body:
                if line.strip():
                    equations[-1].append(line)
                elif equations[-1]:
                    equations.append([])
            for equation in filter(None, equations):
                _blank_line(out)
                out += [f"{pad}$$", *(f"{pad}{line}" for line in equation), f"{pad}$$"]
        else:
            title = "See also" if name == "seealso" else name.capitalize()
            _blank_line(out)
            out += [f'{pad}!!! {"note" if name == "seealso" else name} "{title}"']
            out += [f"{pad}    {line}" if line else "" for line in body]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


def _blank_line(out: list[str]) -> None:
    """End the current Markdown block: one blank line unless there is one already (or nothing yet)."""
    if out and out[-1].strip():
        out.append("")


def _role(kind: str, content: str, resolve: Resolver) -> str:
    if kind == "math":
        return "\\(" + " ".join(content.split()) + "\\)"
    match = re.match(r"^(?P<title>.*?)\s*<(?P<target>[^>]+)>$", content, flags=re.S)  # `title <target>` form
    target = (match["target"] if match else content).strip()
    short = target.startswith("~")
    target = target.lstrip("~.")
    title = match["title"] if match else (target.rsplit(".", 1)[-1] if short else target)
    if kind in ("func", "meth") and not match:
        title += "()"
    if kind == "ref":
        return f"`{title}`"
    identifier = resolve(target) or target
    return f'<autoref identifier="{identifier}" optional>`{title}`</autoref>'


def rst_to_markdown(text: str, resolve: Resolver | None = None) -> str:
    """Convert the reStructuredText parts of a Google-style docstring to Markdown (see the module docstring).

    ``resolve`` maps a role's target (as written, without ``~``) to the identifier to link to, or ``None`` to keep
    the target as written.

    Examples:
        >>> text = "Sum.\\n\\n.. math:: y = \\\\sum_i x_i\\n\\nShape :math:`(B, C)`, see :class:`~a.B`."
        >>> print(rst_to_markdown(text))
        Sum.
        <BLANKLINE>
        $$
        y = \\sum_i x_i
        $$
        <BLANKLINE>
        Shape \\((B, C)\\), see <autoref identifier="a.B" optional>`B`</autoref>.
    """
    resolve = resolve or (lambda target: None)
    text = _directives(text)
    return ROLE.sub(lambda m: _role(m[1], m[2], resolve), text)


def _resolver(obj: Object) -> Resolver:
    """Sphinx-like lookup of a role target from ``obj``: absolute path, then ``obj`` and each of its parents."""

    def resolve(target: str) -> str | None:
        root = obj
        while root.parent is not None:
            root = root.parent
        scopes = [root] if target.split(".", 1)[0] == root.name else []
        scope: Any = obj
        while scope is not None:
            scopes.append(scope)
            scope = scope.parent
        for scope in scopes:
            relative = target.split(".", 1)[1] if scope is root and target.startswith(f"{root.name}.") else target
            try:
                found = scope[relative] if relative != root.name else scope
            except Exception:  # KeyError, or griffe's alias errors for outside packages
                continue
            return found.path
        return None

    return resolve


class RstToMarkdown(Extension):  # type: ignore[misc, valid-type]
    """Rewrite every docstring of the loaded package once the whole package is known (so relative roles resolve)."""

    def on_package(self, *, pkg: Object, **kwargs: Any) -> None:
        seen: set[int] = set()

        def visit(obj: Object) -> None:
            if id(obj) in seen or getattr(obj, "is_alias", False):
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value, _resolver(obj))
            for member in obj.members.values():
                visit(member)

        visit(pkg)
