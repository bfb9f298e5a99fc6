# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""Files fireredasr-hf writes get the permissions of any file the user creates (0644 / 0755 under the usual umask).

Some writers create private files: safetensors 0.8 writes its files with mode 0600 (`save_file`, and so
`save_pretrained`), `tempfile.mkstemp` and `mkdtemp` use 0600 / 0700. A converted model or a transcript that other
users of a shared machine (or a server running as another user) cannot read would be a surprise, so every output
is given the mode the umask implies once written.
"""

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (`os.umask` can only be read by setting
    it, which briefly affects files other threads create)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def make_readable(path: str | os.PathLike) -> None:
    """Gives `path`, and everything inside it if it is a folder, the default mode for new files (0666) and folders
    (0777) minus the umask. Symbolic links are left alone (they may point outside)."""
    umask = current_umask()
    path = Path(path)
    paths = [path] if not path.is_dir() or path.is_symlink() else [path, *path.rglob("*")]
    for item in paths:
        if item.is_symlink():
            continue
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~umask)


__all__ = ["current_umask", "make_readable"]
