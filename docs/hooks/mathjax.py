"""MkDocs hook: serve MathJax from the site itself, so that the docs build and read offline (no CDN).

MathJax 3 comes from the ``django-static-mathjax`` wheel (MathJax's own files, no Django needed; in the ``docs``
and ``dev`` extras). Its single-file ``tex-svg-full.js`` bundle (TeX input with every extension, SVG output with the
fonts inside) is added to the site as ``assets/mathjax/tex-svg-full.js``; ``javascripts/mathjax-config.js`` points
MathJax at the ``arithmatex`` spans written by ``pymdownx.arithmatex`` (generic mode).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

BUNDLE = "tex-svg-full.js"
SITE_PATH = f"assets/mathjax/{BUNDLE}"


def mathjax_bundle() -> Path:
    """Path of MathJax's ``tex-svg-full.js`` in the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "static" / "mathjax" / "es5" / BUNDLE
        if path.is_file():
            return path
    raise RuntimeError(
        "MathJax not found: the docs serve it offline from the django-static-mathjax package; "
        "install it with `pip install -e '.[docs]'` (or `make docs`)"
    )


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(mathjax_bundle())))
    return files
