"""Build data/python-stdlib/ from the running CPython's standard library.

Run once (already done for the committed files); the output is committed so
that runs never depend on the local interpreter:

    python data/build_python_corpus.py            # CPython 3.11.7 was used

Selection: every ``*.py`` file of the standard library, excluding test
packages (``test/``, ``tests/``, ``idle_test/``) and ``site-packages``, at
least 200 bytes, exact duplicates removed (first path in sorted order kept),
decoded as UTF-8. Split by file: sha256(relative path) decides test (10%) or
train. Test files sharing any 128-byte window with the train text (licence
headers, copied helpers) are dropped, so the held-out text shares no
128-byte span with the training text. Documents are joined with a NUL byte
(never present in the sources) and xz-compressed.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import sys
import sysconfig
from pathlib import Path

OUT = Path(__file__).resolve().parent / "python-stdlib"
WINDOW = 128
SEP = "\x00"


def collect(stdlib: Path) -> list[tuple[str, str]]:
    seen: set[str] = set()
    docs = []
    for root, dirs, files in os.walk(stdlib):
        rel_root = Path(root).relative_to(stdlib)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in ("site-packages", "__pycache__", "test", "tests", "idle_test")
        )
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            raw = (Path(root) / name).read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if len(raw) < 200 or digest in seen:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if SEP in text:
                continue
            seen.add(digest)
            docs.append((str(rel_root / name), text))
    return docs


def is_test(path: str) -> bool:
    return int(hashlib.sha256(path.encode()).hexdigest(), 16) % 10 == 0


def main() -> None:
    stdlib = Path(sysconfig.get_path("stdlib"))
    docs = collect(stdlib)
    train = [(p, t) for p, t in docs if not is_test(p)]
    test = [(p, t) for p, t in docs if is_test(p)]
    windows = set()
    for _, t in test:
        b = t.encode()
        windows.update(hash(b[i : i + WINDOW]) for i in range(max(0, len(b) - WINDOW + 1)))
    shared = set()
    for _, t in train:
        b = t.encode()
        for i in range(max(0, len(b) - WINDOW + 1)):
            h = hash(b[i : i + WINDOW])
            if h in windows:
                shared.add(b[i : i + WINDOW])
    dropped = [p for p, t in test if any(s in t.encode() for s in shared)]
    test = [(p, t) for p, t in test if p not in set(dropped)]
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {
        "source": f"CPython {sys.version.split()[0]} standard library ({stdlib})",
        "licence": "Python Software Foundation License Version 2 (see data/README.md)",
        "separator": "NUL byte between documents",
        "window_check_bytes": WINDOW,
        "dropped_test_files_sharing_text": dropped,
    }
    for split, items in (("train", train), ("test", test)):
        text = SEP.join(t for _, t in items)
        data = lzma.compress(text.encode(), preset=9)
        (OUT / f"{split}.txt.xz").write_bytes(data)
        manifest[split] = {
            "files": [p for p, _ in items],
            "documents": len(items),
            "bytes": len(text.encode()),
            "sha256_xz": hashlib.sha256(data).hexdigest(),
        }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: v for k, v in manifest.items() if k in ("source",)}, indent=1))
    for split in ("train", "test"):
        m = manifest[split]
        print(split, m["documents"], "documents", m["bytes"], "bytes")
    print("dropped", len(dropped), "test files sharing text with train")


if __name__ == "__main__":
    main()
