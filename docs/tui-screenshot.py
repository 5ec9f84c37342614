#!/usr/bin/env python3
"""Render a tmux pane captured with escapes (`tmux capture-pane -e -p`) to an HTML page of
coloured spans, for a headless browser to screenshot (docs/tui-demo.png in the README).

usage: tui-screenshot.py CAPTURE.txt OUT.html
"""
import html
import re
import sys

# The 16 basic colours as a dark terminal theme draws them.
BASIC = ["#1d1f21", "#cc6666", "#b5bd68", "#f0c674", "#81a2be", "#b294bb", "#8abeb7", "#c5c8c6",
         "#666666", "#d54e53", "#b9ca4a", "#e7c547", "#7aa6da", "#c397d8", "#70c0b1", "#eaeaea"]
FG, BG = "#d8d8d8", "#16181c"


def xterm256(n):
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


def sgr(params, st):
    p = [int(x) if x else 0 for x in params.split(";")] if params else [0]
    i = 0
    while i < len(p):
        c = p[i]
        if c == 0:
            st.clear()
        elif c == 1:
            st["bold"] = True
        elif c == 4:
            st["underline"] = True
        elif c == 7:
            st["reverse"] = True
        elif c == 22:
            st.pop("bold", None)
        elif c == 24:
            st.pop("underline", None)
        elif c == 27:
            st.pop("reverse", None)
        elif 30 <= c <= 37:
            st["fg"] = BASIC[c - 30]
        elif 90 <= c <= 97:
            st["fg"] = BASIC[c - 90 + 8]
        elif 40 <= c <= 47:
            st["bg"] = BASIC[c - 40]
        elif 100 <= c <= 107:
            st["bg"] = BASIC[c - 100 + 8]
        elif c == 39:
            st.pop("fg", None)
        elif c == 49:
            st.pop("bg", None)
        elif c in (38, 48) and i + 1 < len(p):
            key = "fg" if c == 38 else "bg"
            if p[i + 1] == 5 and i + 2 < len(p):
                st[key] = xterm256(p[i + 2])
                i += 2
            elif p[i + 1] == 2 and i + 4 < len(p):
                st[key] = "#%02x%02x%02x" % tuple(p[i + 2:i + 5])
                i += 4
        i += 1


def style(st):
    fg, bg = st.get("fg", FG), st.get("bg", BG)
    if st.get("reverse"):
        fg, bg = bg, fg
    css = ["color:%s" % fg, "background:%s" % bg]
    if st.get("bold"):
        css.append("font-weight:bold")
    if st.get("underline"):
        css.append("text-decoration:underline")
    return ";".join(css)


def main():
    text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
    out, st = [], {}
    for line in text.split("\n"):
        parts = re.split(r"\x1b\[([0-9;]*)m", line)
        row = []
        for j, chunk in enumerate(parts):
            if j % 2:
                sgr(chunk, st)
            elif chunk:
                row.append('<span style="%s">%s</span>' % (style(st), html.escape(chunk)))
        out.append("".join(row))
    page = """<!doctype html><meta charset="utf-8"><style>
body{margin:0;background:%s}
pre{margin:0;padding:14px 16px;font:15px/1.25 'DejaVu Sans Mono','Noto Sans Mono',monospace;
color:%s;background:%s;display:inline-block}
</style><pre>%s</pre>""" % (BG, FG, BG, "\n".join(out))
    open(sys.argv[2], "w", encoding="utf-8").write(page)


if __name__ == "__main__":
    main()
