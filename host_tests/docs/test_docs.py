"""The documentation holds together: every relative link in the project's Markdown resolves
(file and #anchor), no doc or the Makefile names a file outside the project, the README stays
a short front door, and its example is the file it says it is."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_DIRS = {".venv", ".git", "build", ".pytest_cache", ".ruff_cache", ".frozen", "node_modules", ".mypy_cache"}

# Names of files that live beside the project (the team's shared folder), never in it: a user's
# clone has none of them.
OUTSIDE = re.compile(r"\.\./shared|shared/(reference|upstream|thirdparty|vectors)|\breference/[\w-]+\.md|DESIGN\.md"
                     r"|bumble-peer\.md|real-nimble\.md|micropython-ble-security\.md|smp-feature-matrix\.md"
                     r"|micropython-runtimes\.md|/work/")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def markdown_files():
    out = []
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
        out += [os.path.join(d, f) for f in sorted(files) if f.endswith(".md")]
    return out


def slug(heading):
    """GitHub's anchor for a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    seen, out = {}, set()
    for m in re.finditer(r"^#{1,6} (.+)$", text, re.M):
        a = slug(m.group(1))
        n = seen.get(a, 0)
        seen[a] = n + 1
        out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


def rel(path):
    return os.path.relpath(path, ROOT)


MD = markdown_files()


def test_the_docs_exist():
    names = {rel(p) for p in MD}
    for page in ("README.md", "SECURITY.md", "docs/security-manager.md", "docs/bond-store.md",
                 "docs/private-addresses.md", "docs/crypto.md", "docs/memory-and-deployment.md",
                 "docs/simulator.md", "docs/testing.md", "docs/design.md", "examples/README.md"):
        assert page in names


@pytest.mark.parametrize("path", MD, ids=rel)
def test_relative_links_resolve(path):
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not dest.startswith(ROOT + os.sep) and dest != ROOT:
            bad.append("%s (outside the project)" % target)
        elif not os.path.exists(dest):
            bad.append("%s (no such file)" % target)
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            bad.append("%s (no such heading in %s)" % (target, rel(dest)))
    assert not bad, "%s: broken links: %s" % (rel(path), ", ".join(bad))


@pytest.mark.parametrize("path", MD + [os.path.join(ROOT, "Makefile")], ids=rel)
def test_no_doc_names_a_file_outside_the_project(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    hits = ["line %d: %s" % (i + 1, ln.strip()) for i, ln in enumerate(lines) if OUTSIDE.search(ln)]
    assert not hits, "%s names files outside the project:\n%s" % (rel(path), "\n".join(hits))


def test_readme_is_a_front_door():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        n = len(f.read().split("\n"))
    assert n <= 250, "README.md has %d lines; the manual goes to docs/" % n


def test_readme_example_is_examples_peripheral():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(ROOT, "examples", "peripheral.py"), encoding="utf-8") as f:
        example = f.read()
    assert "```python\n" + example.rstrip() + "\n```" in readme


def test_the_checker_catches_what_it_should(tmp_path):
    assert OUTSIDE.search("see `shared/reference/real-nimble.md`")
    assert OUTSIDE.search("`reference/micropython-ble-security.md`")
    assert OUTSIDE.search("# Every gate of DESIGN.md")
    assert not OUTSIDE.search("docs/design.md and docs/simulator.md")
    assert slug("What stock firmware cannot do (and what the manager does instead)") == \
        "what-stock-firmware-cannot-do-and-what-the-manager-does-instead"
    assert slug("SecurityManager (`blesmp.manager`, `blesmp.agents`)") == "securitymanager-blesmpmanager-blesmpagents"
    assert LINK.findall("[a](b.md#c) ![img](x.png) [d](https://e)") == ["b.md#c", "https://e"]
