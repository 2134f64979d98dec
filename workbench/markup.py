"""Data shown through Streamlit's markdown: names, record text and model output escaped so they read as
text, never as a link, an image, emphasis, math, an emoji or a colour (`[x](url)`, `![x](url)`, `$x$`, `:red[x]`).
"""

from __future__ import annotations

import re

# Every ASCII punctuation character: CommonMark lets each be backslash-escaped (and then shows it as itself),
# and escaping them all also covers Streamlit's own directives (`:material/icon:`, `:red[...]`) and math.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(value: object) -> str:
    """`value` as markdown that renders as exactly its text: `escape_markdown("[x](http://a)")` shows
    `[x](http://a)`, not a link. For labels, captions and messages a page builds from data (st.markdown,
    st.caption, st.metric, st.expander, st.tabs, st.success/error/info/warning, button labels);
    a bare URL stays a URL (GFM makes it a link that shows its own address)."""
    return _PUNCTUATION.sub(r"\\\1", str(value))
