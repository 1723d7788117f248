// MathJax 3 settings for pymdownx.arithmatex (generic mode): typeset only the spans/divs it marks.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],  // $...$: the tutorials' Markdown cells (mkdocs-jupyter)
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-MarkdownOutput",
  },
};
