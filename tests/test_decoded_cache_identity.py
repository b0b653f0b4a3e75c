"""The decoded cache hands each folder its own pixels, is built by one process at a time, and does
not keep a file left out for a read error (zoo.data.decoded_cache)."""

import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
from image_folders import write_images

from zoo.data.decoded_cache import decoded
from zoo.data.folder import list_folder
from zoo.data.image_files import Preprocess


def test_two_folders_alike_in_names_sizes_and_times_get_their_own_pixels(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dark, light = tmp_path / "dark", tmp_path / "light"
    write_images(dark, 4, size=(8, 8), mode="L", suffix=".bmp")
    light.mkdir()
    for path in sorted(dark.iterdir()):  # the same names, sizes and mtimes, other pixels (rsync -a)
        target = light / path.name
        shutil.copyfile(path, target)
        data = bytearray(target.read_bytes())
        data[-64:] = bytes(255 - b for b in data[-64:])
        target.write_bytes(bytes(data))
        os.utime(target, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    assert list_folder(dark).fingerprint == list_folder(light).fingerprint
    first = np.array(decoded(list_folder(dark), Preprocess()).images)
    second = np.array(decoded(list_folder(light), Preprocess()).images)
    assert not np.array_equal(first, second)


def test_two_processes_at_once_build_one_entry_and_share_it(tmp_path):
    write_images(tmp_path / "photos", 600, size=(24, 24))
    script = textwrap.dedent(
        """
        import os, sys, time
        from zoo.data.decoded_cache import decoded
        from zoo.data.folder import list_folder
        from zoo.data.image_files import Preprocess
        while not os.path.exists(sys.argv[2]):  # both start decoding at the same moment
            time.sleep(0.01)
        entry = decoded(list_folder(sys.argv[1]), Preprocess(), workers=1)
        print(os.stat(entry.path).st_ino)
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    both = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "photos"), str(tmp_path / "go")],
            env=env,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    time.sleep(2)
    (tmp_path / "go").touch()
    inodes = [p.communicate(timeout=120)[0].decode().strip() for p in both]
    assert all(p.returncode == 0 for p in both)
    assert inodes[0] == inodes[1]  # a second build would have renamed a new file over the first
    assert len(list((tmp_path / "cache" / "zoo" / "decoded").glob("*.npy"))) == 1


def test_a_file_left_out_for_a_read_error_is_read_again_next_time(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_images(tmp_path / "photos", 3, size=(8, 8))
    (tmp_path / "photos" / "late.png").symlink_to(tmp_path / "not-yet.png")  # a share not mounted yet
    first = decoded(list_folder(tmp_path / "photos"), Preprocess())
    assert [name for name, _ in first.left_out] == ["late.png"]
    write_images(tmp_path / "elsewhere", 1, size=(8, 8), seed=5)
    shutil.copyfile(tmp_path / "elsewhere" / "img0000.png", tmp_path / "not-yet.png")
    again = decoded(list_folder(tmp_path / "photos"), Preprocess())
    assert again.left_out == [] and len(again.usable) == 4
