"""Helpers shared by the scripts/bench-*.py benchmark scripts."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "BENCHMARKS.md")


def die(tool, msg):
    print(f"{tool}: {msg}", file=sys.stderr)
    sys.exit(1)


def last_json(text, key):
    """The last line of TEXT that is a JSON object mentioning KEY, parsed; None if none."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and key in line:
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def pct(x):
    """A ratio as a signed percentage change: 1.023 -> '+2.3 %'."""
    return f"{(x - 1) * 100:+.1f} %"


def build_release(tool, no_build, examples=("workload",)):
    """Builds the lxprof binary and EXAMPLES in release mode (unless NO_BUILD)
    under CARGO_TARGET_DIR (else <repo>/target); returns their paths, lxprof
    first. Dies (prefix TOOL) if the build fails or a binary is missing."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    if not no_build:
        cmd = ["cargo", "build", "--release", "-p", "lxprof", "--bin", "lxprof"]
        for name in examples:
            cmd += ["--example", name]
        print("+", " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            die(tool, "cargo build failed")
    paths = [os.path.join(target, "release", "lxprof")]
    paths += [os.path.join(target, "release", "examples", name) for name in examples]
    for path in paths:
        if not os.access(path, os.X_OK):
            die(tool, f"{path} missing: build it (drop --no-build) or set CARGO_TARGET_DIR")
    return tuple(paths)


def write_doc_section(section_title, section_text):
    """Replaces the section SECTION_TITLE of DOC (up to the next "## " heading)
    with SECTION_TEXT, or appends it; creates DOC with a header if missing.
    Written to DOC.tmp, then renamed over DOC."""
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    try:
        with open(DOC) as f:
            text = f.read()
    except FileNotFoundError:
        text = ("# Benchmarks\n\nOne section per benchmark; each gives its exact command, "
                "the machine and load it ran on, and its numbers.\n\n")
    start = text.find(section_title)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section_text
    else:
        nxt = text.find("\n## ", start + len(section_title))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + section_text + ("\n" + text[end:] if nxt >= 0 else "")
    tmp = DOC + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, DOC)
