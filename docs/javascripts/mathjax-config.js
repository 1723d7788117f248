// MathJax 3 settings for pymdownx.arithmatex (generic mode): typeset only the spans/divs it marks. Docstrings and the
// tutorials' Markdown cells (docs/hooks/notebooks.py) both go through arithmatex, which writes \(...\) and \[...\].
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};
